"""What a SessionManager saves of its conversation: a snapshot of the history, the part an
attached fork inherits, and the label an auto-save derives.

An ``AppendOnlyConversation``'s history view and its length are the snapshot, taken at no
cost however long the conversation; other conversations' ``messages`` are copied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from .._backend import derive_slug
from ..errors import SessionError
from ..messages import Message
from ..protocols import AppendOnlyConversation, Conversation
from .writer import SaveRequest

__all__ = ["Inheritance", "Snapshots"]


@dataclass(slots=True)
class Inheritance:
    """What the current session inherits as an attached fork: the conversation's first
    ``count`` messages, and the history view of an ``AppendOnlyConversation`` they were put
    in (``None`` for other conversations)."""

    count: int = 0
    view: Sequence[Message] | None = None

    def held_by(self, history: Sequence[Message]) -> bool:
        """Whether ``history`` still begins with the inherited messages.

        Not after a ``clear()``, or a ``load()`` of other messages, made on the conversation
        directly. Those put an ``AppendOnlyConversation``'s history in a new view, so a new
        view is compared (once) with the one the inherited messages were in; other
        conversations are checked by length only.
        """
        count = self.count
        if len(history) < count:
            return False
        view = self.view
        if view is None or view is history:
            return True
        kept = all(a is b or a == b for a, b in zip(islice(view, count), islice(history, count), strict=True))
        self.view = history if kept else None
        return kept


class Snapshots:
    """Takes the save requests of one conversation's current session.

    ``inherited`` is what the session inherits as an attached fork (those messages are not
    its own); ``labelled`` whether it has a label already, so that an auto-slug is derived
    only until it has one.
    """

    def __init__(self, conversation: Conversation, *, auto_slug: bool) -> None:
        self._conversation = conversation
        # Its history view, and a length, are an O(1) snapshot (checked once: ~10 us).
        self._appends_only = conversation if isinstance(conversation, AppendOnlyConversation) else None
        self._auto_slug = auto_slug
        self.inherited = Inheritance()
        self.labelled = False

    def history(self) -> Sequence[Message]:
        """The conversation's history now: its history view, or a copy of its messages."""
        appends_only = self._appends_only
        return appends_only.history if appends_only is not None else tuple(self._conversation.messages)

    def own(self, history: Sequence[Message]) -> Sequence[Message]:
        """The session's own messages in ``history``: those after the inherited ones."""
        return history[self.inherited.count :]

    def inherited_loaded(self) -> None:
        """The conversation now holds the inherited messages: remember the view they are in."""
        self.inherited.view = self._appends_only.history if self._appends_only is not None else None

    def request(self, session_id: str, given: dict[str, Any], *, background: bool) -> SaveRequest:
        """A snapshot of the conversation for ``session_id``, with the metadata to merge
        (``given``, a fresh dict each caller builds, becomes the request's own)."""
        history = self.history()
        metadata = given
        full = False
        if self.inherited.count and not self.inherited.held_by(history):
            # cleared, or loaded over, on the conversation itself: the session keeps what it
            # holds now, on its own (a detached fork), rewritten
            self.inherited = Inheritance()
            metadata["detached"] = True
            full = True
        if self._auto_slug and not self.labelled and "label" not in metadata:
            slug = _slug_of(history)
            if slug is not None:
                metadata["label"] = slug
                self.labelled = True
        if self._conversation.is_checkpoint:
            metadata["is_checkpoint"] = True
        checkpoint_state = self._conversation.checkpoint_state
        if checkpoint_state is not None:
            metadata["checkpoint_state"] = checkpoint_state
        return SaveRequest(
            session_id=session_id,
            source=history,
            start=self.inherited.count,
            end=len(history),
            metadata=metadata,
            background=background,
            full=full,
            carry=metadata if background else {},
        )


def _slug_of(history: Sequence[Message]) -> str | None:
    """Label from the first text block of the first user message, if there is one yet."""
    try:
        return _first_user_text_slug(history)
    except SessionError:  # e.g. a lone surrogate: no label rather than a failed save
        return None


def _first_user_text_slug(history: Sequence[Message]) -> str | None:
    for message in history:
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue  # a message need not be an object
        content: Any = message.get("content")
        if isinstance(content, str):
            return derive_slug(content)
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "text":
                    text = block.get("text")
                    return derive_slug(text) if isinstance(text, str) else None
        return None
    return None
