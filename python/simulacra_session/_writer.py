"""Per-session save queue: writes never interleave, and bursts coalesce.

One write is in flight per session and at most one request waits behind it; a newer
request is folded into the waiting one (newest messages, metadata merged, every waiter
kept), so a burst of auto-saves costs at most two writes and the last holds the latest
messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .messages import Message
from .protocols import AppendableSessionStore, SessionStore

__all__ = ["SaveRequest", "SessionWriter"]


@dataclass
class SaveRequest:
    """A snapshot to write: the session's own messages, its full history and metadata to merge.

    ``background`` requests (auto-saves) report failures as events; explicit ones have
    ``waiters`` that receive the outcome.
    """

    session_id: str
    messages: list[Message]
    history: tuple[Message, ...]
    metadata: dict[str, Any]
    background: bool
    full: bool = False
    waiters: list[asyncio.Future[None]] = field(default_factory=list)

    def absorb(self, newer: SaveRequest) -> None:
        """Fold a newer request for the same session into this one."""
        self.messages = newer.messages
        self.history = newer.history
        self.metadata = {**self.metadata, **newer.metadata}
        self.background = self.background or newer.background
        self.full = self.full or newer.full
        self.waiters.extend(newer.waiters)


class SessionWriter:
    """Serializes the writes of one session to a store, appending where it can.

    It remembers the messages of its last successful write: when a request only adds
    messages after them (compared by identity first, so this costs microseconds) and the
    store is an ``AppendableSessionStore``, only the new ones are written. Anything else
    (a first write, a failed one, :meth:`reset` after load/clear/fork, an earlier message
    replaced, ``full``) rewrites the session.
    """

    def __init__(
        self,
        store: SessionStore,
        session_id: str,
        on_saved: Callable[[SaveRequest], None],
        on_failed: Callable[[SaveRequest, BaseException], None],
        on_idle: Callable[[str], None],
    ) -> None:
        self.session_id = session_id
        self.task: asyncio.Task[None] | None = None
        self._store = store
        # checked once: a runtime protocol check costs tens of microseconds
        self._appender = store if isinstance(store, AppendableSessionStore) else None
        self._pending: SaveRequest | None = None
        self._written: list[Message] | None = None
        self._on_saved = on_saved
        self._on_failed = on_failed
        self._on_idle = on_idle

    def holds(self, messages: Sequence[Message]) -> bool:
        """Whether the store holds exactly ``messages`` from this writer's last write, nothing pending."""
        return self.task is None and self._pending is None and self._written == list(messages)

    def reset(self) -> None:
        """Forget what was written: the next write rewrites the whole session."""
        self._written = None

    def submit(self, request: SaveRequest, *, raise_now: bool = False) -> asyncio.Future[None] | None:
        """Queue ``request``; returns a future of its outcome for explicit requests.

        Without a running event loop the write happens at once, in this thread; then
        ``raise_now`` makes a failure raise instead of being reported.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if raise_now:
                asyncio.run(self._store_write(request))
                self._on_saved(request)
            else:
                asyncio.run(self._write(request))
            self._on_idle(self.session_id)
            return None
        future: asyncio.Future[None] | None = None
        if not request.background:
            future = loop.create_future()
            request.waiters.append(future)
        if self._pending is None:
            self._pending = request
        else:
            self._pending.absorb(request)
        if self.task is None:
            self.task = loop.create_task(self._run(), name=f"simulacra-session save {self.session_id}")
        return future

    async def _run(self) -> None:
        try:
            while self._pending is not None:
                request, self._pending = self._pending, None
                await self._write(request)
        finally:
            self.task = None
            if self._pending is not None:  # cancelled with work queued: release its waiters
                for waiter in self._pending.waiters:
                    waiter.cancel()
                self._pending = None
            self._on_idle(self.session_id)

    async def _store_write(self, request: SaveRequest) -> None:
        """Append the new messages when that is safe, else rewrite; remember what was written."""
        written, self._written = self._written, None
        messages = request.messages
        if (
            written is not None
            and not request.full
            and len(messages) >= len(written)
            and self._appender is not None
            and messages[: len(written)] == written
        ):
            await self._appender.append(request.session_id, messages[len(written) :], request.metadata)
        else:
            await self._store.save(request.session_id, messages, request.metadata)
        self._written = messages

    async def _write(self, request: SaveRequest) -> None:
        try:
            await self._store_write(request)
        except asyncio.CancelledError:
            for waiter in request.waiters:
                waiter.cancel()
            raise
        except Exception as error:
            for waiter in request.waiters:
                if not waiter.done():
                    waiter.set_exception(error)
            if request.background:
                self._on_failed(request, error)
            return
        for waiter in request.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._on_saved(request)
