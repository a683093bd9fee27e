"""What the manager tests share: a real in-memory store whose writes take time and are counted,
and a manager watched for the ``lifecycle_error`` events of its failed auto-saves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from simulacra_session import (
    Conversation,
    InMemorySessionStore,
    JsonObject,
    LifecycleErrorEvent,
    Message,
    Revision,
    SessionManager,
    SessionStore,
    SimpleConversation,
)
from simulacra_session.testing import msg

__all__ = ["SlowStore", "Talk", "Watched"]


class SlowStore(InMemorySessionStore):
    """A real in-memory store whose saves take time and are counted, to observe queuing.

    Its writes take ``expected`` and return the ``Revision``, as its base's do: it is a
    ``RevisionedSessionStore`` (``checks_revisions``), to which a manager passes revisions."""

    def __init__(self, delay: float = 0.01) -> None:
        super().__init__()
        self.delay = delay
        self.saves: list[tuple[str, int]] = []
        self.active: dict[str, int] = {}
        self.max_active = 0
        self.fail_with: BaseException | None = None
        self.appended: list[int] = []  # how many messages each append added

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        return await self._write(super().save, id, messages, metadata, expected)

    async def append(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        revision = await self._write(super().append, id, messages, metadata, expected)
        self.appended.append(len(messages))
        return revision

    @property
    def appends(self) -> int:
        """How many appends succeeded."""
        return len(self.appended)

    async def _write(
        self,
        write: Callable[..., Awaitable[Revision]],  # the store's save or append
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None,
        expected: Revision | None,
    ) -> Revision:
        self.active[id] = self.active.get(id, 0) + 1
        self.max_active = max(self.max_active, self.active[id])
        try:
            await asyncio.sleep(self.delay)
            if self.fail_with is not None:
                raise self.fail_with
            revision = await write(id, messages, metadata, expected=expected)
            stored = await super().load(id)
            assert stored is not None
            self.saves.append((id, len(stored.messages)))
            return revision
        finally:
            self.active[id] -= 1


class Talk(Conversation, Protocol):
    """A conversation ``Watched`` adds messages to, one at a time (``append``)."""

    def append(self, message: Message) -> object: ...


@dataclass
class Watched:
    """A ``SessionManager`` of ``conversation`` on ``store`` (made with ``options``), and the
    ``lifecycle_error`` events its failed auto-saves emitted, in order (``errors``)."""

    store: SessionStore
    conversation: Talk = field(default_factory=SimpleConversation)
    options: Mapping[str, Any] = field(default_factory=dict)
    manager: SessionManager = field(init=False)
    errors: list[LifecycleErrorEvent] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.manager = SessionManager(self.store, self.conversation, **self.options)
        self.manager.on("lifecycle_error", self.errors.append)

    async def start(self, label: str | None = None) -> str:
        """A new session (labelled ``label``, if given) whose first message, ``m1``, is
        auto-saved (when the manager auto-saves); its id."""
        session_id = self.manager.start_new(label)
        await self.say("m1")
        return session_id

    async def say(self, *texts: str) -> None:
        """Add a message of each of ``texts``, each auto-saved before the next (``flush``)."""
        for text in texts:
            self.conversation.append(msg(text))
            await self.manager.flush()
