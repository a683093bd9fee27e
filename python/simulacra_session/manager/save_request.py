"""What a session writer writes: a ``SaveRequest`` (a snapshot of the session, its metadata
and who waits for the outcome), and the stores' rule for metadata, which a failed auto-save's
metadata must pass to go with the next write."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import SessionError
from ..messages import Message
from ..models import merge_metadata

__all__ = ["SaveRequest", "acceptable", "check_metadata"]


@dataclass(slots=True)
class SaveRequest:
    """A snapshot to write: the session's own messages, its full history and metadata to merge.

    The history is ``source[:end]``, its own messages ``source[start:end]``; ``source`` is
    a snapshot, or a list that is only ever appended to (so taking it costs nothing).
    ``background`` requests (auto-saves) report failures as events; explicit ones have
    ``waiters`` that receive the outcome. ``carry`` is the metadata of its background parts
    (``metadata`` without what explicit saves folded in gave): what goes with the next write
    should this one fail. Neither dict is changed in place (they may be one).
    """

    session_id: str
    source: Sequence[Message]
    start: int
    end: int
    metadata: dict[str, Any]
    background: bool
    full: bool = False
    waiters: tuple[asyncio.Future[None], ...] = ()
    carry: dict[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> list[Message]:
        """The session's own messages (those after the inherited ones)."""
        return list(self.source[self.start : self.end])

    @property
    def history(self) -> Sequence[Message]:
        """The whole history, as a tuple."""
        source = self.source
        return tuple(source) if self.end == len(source) else tuple(source[: self.end])

    def absorb(self, newer: SaveRequest) -> None:
        """Fold a newer request for the same session into this one."""
        self.source, self.start, self.end = newer.source, newer.start, newer.end
        self.metadata = {**self.metadata, **newer.metadata}
        if newer.carry:
            self.carry = {**self.carry, **newer.carry}
        self.background = self.background or newer.background
        self.full = self.full or newer.full
        self.waiters += newer.waiters


def check_metadata(session_id: str, metadata: dict[str, Any]) -> None:
    """Raise what a store's save of ``metadata`` would (the rule of ``merge_metadata``):
    ``InvalidMetadataError`` or ``SerializationError`` naming the key or value at fault."""
    merge_metadata(session_id, None, 0, metadata)


def acceptable(session_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``metadata`` a store accepts (see ``check_metadata``), each on its own."""
    kept = {}
    for key, value in metadata.items():
        try:
            check_metadata(session_id, {key: value})
        except SessionError:
            continue
        kept[key] = value
    return kept
