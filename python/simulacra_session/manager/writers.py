"""The session writers of one SessionManager, by session id: each session's save queue
(``writer.SessionWriter``) is made for its first write and goes once it is idle and no longer
the current session's, or once the manager is closed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from ..messages import Message
from ..models import Revision
from ..protocols import SessionStore
from .save_request import SaveRequest

if TYPE_CHECKING:
    from .writer import SessionWriter

__all__ = ["SessionWriters"]


class SessionWriters:
    """The writers of one manager's sessions, by session id.

    A session's writer is made for its first write. It stays while the session is current
    (it knows what was written, so the next write can append) and goes once it is idle
    otherwise, or once the manager is closed.
    """

    def __init__(
        self,
        store: SessionStore,
        on_saved: Callable[[SaveRequest], None],
        on_failed: Callable[[SaveRequest, BaseException], None],
    ) -> None:
        self._store = store
        self._on_saved = on_saved
        self._on_failed = on_failed
        self._by_id: dict[str, SessionWriter] = {}
        self._current: str | None = None
        self._closed = False

    def __iter__(self) -> Iterator[str]:
        """The ids of the sessions that have a writer."""
        return iter(list(self._by_id))

    def __bool__(self) -> bool:
        return bool(self._by_id)

    def switch(self, session_id: str | None, revision: Revision | None = None) -> None:
        """Make ``session_id`` current (``None``: none): its next write rewrites the session (the
        history was replaced) made from ``revision`` (see ``SessionWriter.reset``), and the
        previous session's writer goes once it is idle."""
        previous, self._current = self._current, session_id
        left = self._by_id.get(previous) if previous is not None and previous != session_id else None
        if left is not None and not left.busy:
            del self._by_id[left.session_id]
        if session_id is None:
            return
        writer = self._by_id.get(session_id)
        if writer is None and revision is not None:
            writer = self._writer(session_id)
        if writer is not None:
            writer.reset(revision)

    def get(self, session_id: str) -> SessionWriter | None:
        """The writer of ``session_id``, when it has one."""
        return self._by_id.get(session_id)

    def resume(self, session_id: str, writer: SessionWriter | None, *, current: bool = True) -> bool:
        """Take back ``writer``, the writer of ``session_id`` (``None``: it had none), as it is:
        what it wrote (the next write appends after it), its revision, a failed write's state.
        ``current``: the manager is back on that session, left for a delete that failed (see
        ``deletion``); else the writer goes again once idle, after the write it is given.
        ``False`` when another writer holds that session now: nothing changed."""
        if writer is not None and self._by_id.setdefault(session_id, writer) is not writer:
            return False
        if current:
            self._current = session_id
        return True

    def revision(self, session_id: str) -> Revision | None:
        """The revision of ``session_id`` as its writer last saw it (``None``: none known)."""
        writer = self._by_id.get(session_id)
        return writer.revision if writer is not None else None

    def failed(self, session_id: str) -> bool:
        """Whether the last write of ``session_id`` failed (see ``SessionWriter.failed``)."""
        writer = self._by_id.get(session_id)
        return writer is not None and writer.failed

    def busy_with(self, session_id: str) -> bool:
        """Whether a write of ``session_id`` is in flight or queued."""
        writer = self._by_id.get(session_id)
        return writer is not None and writer.busy

    def holds(self, session_id: str, messages: Sequence[Message]) -> bool:
        """Whether the store holds exactly ``messages`` for ``session_id`` from its writer's last
        write, with nothing pending (see ``SessionWriter.holds``)."""
        writer = self._by_id.get(session_id)
        return writer is not None and writer.holds(messages)

    def submit(self, request: SaveRequest, *, raise_now: bool = False) -> asyncio.Future[None] | None:
        """Queue ``request`` on its session's writer (see ``SessionWriter.submit``)."""
        return self._writer(request.session_id).submit(request, raise_now=raise_now)

    def _writer(self, session_id: str) -> SessionWriter:
        """The writer of ``session_id``, made for its first use."""
        writer = self._by_id.get(session_id)
        if writer is None:
            from .writer import SessionWriter  # here: ``writer`` imports this module

            writer = self._by_id[session_id] = SessionWriter(
                self._store, session_id, self._on_saved, self._on_failed, self._idle
            )
        return writer

    def busy(self) -> list[SessionWriter]:
        """The writers with a write in flight or queued."""
        writers = []
        for writer in self._by_id.values():  # a loop, not a comprehension: on every flush
            if writer.busy:
                writers.append(writer)
        return writers

    def close(self) -> None:
        """Drop the idle writers; the busy ones go when they are idle."""
        self._closed = True
        for session_id in [key for key, writer in self._by_id.items() if not writer.busy]:
            del self._by_id[session_id]

    def _idle(self, session_id: str) -> None:
        if session_id != self._current or self._closed:
            self._by_id.pop(session_id, None)
