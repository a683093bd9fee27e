"""InMemorySessionStore: sessions in a dict, for tests and development; gone on exit."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from ..ids import validate_session_id
from ..messages import Message
from ..models import SessionMetadata, StoredSession, most_recent_first
from ._codec import check_save_args, decode_session, encode_save

__all__ = ["InMemorySessionStore"]


class InMemorySessionStore:
    """A non-persistent ``SessionStore`` (with ``forks``) holding each session's serialized bytes.

    Keeping bytes rather than objects means nothing a caller mutates after ``save`` or
    ``load`` leaks in or out, and it rejects exactly what the file store rejects.
    Each method runs without yielding to the event loop, so a save's read-merge-write is
    never interleaved with another.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, bytes] = {}

    def _decode(self, session_id: str, data: bytes) -> StoredSession:
        return decode_session(session_id, data, f"id {session_id!r}")

    async def list(self) -> builtins.list[SessionMetadata]:
        """Metadata of every session, most recently updated first."""
        return most_recent_first([self._decode(key, data).metadata for key, data in self._sessions.items()])

    async def load(self, id: str) -> StoredSession | None:
        """The session, decoded afresh from its bytes, or ``None`` when absent."""
        validate_session_id(id)
        data = self._sessions.get(id)
        return None if data is None else self._decode(id, data)

    async def save(
        self, id: str, messages: Sequence[Message], metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Replace the messages and merge the metadata; the old bytes stay on any error."""
        check_save_args(id, metadata)
        previous = self._sessions.get(id)
        existing = None if previous is None else self._decode(id, previous).metadata
        _, data = encode_save(id, existing, messages, metadata)
        self._sessions[id] = data

    async def delete(self, id: str) -> bool:
        """Remove the session; ``True`` when it existed."""
        validate_session_id(id)
        return self._sessions.pop(id, None) is not None

    async def forks(self, id: str) -> builtins.list[SessionMetadata]:
        """Metadata of the sessions whose ``parent_id`` is ``id``, most recent first."""
        validate_session_id(id)
        return [meta for meta in await self.list() if meta.parent_id == id]
