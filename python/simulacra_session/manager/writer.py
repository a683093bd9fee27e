"""Per-session save queue: writes never interleave, and bursts coalesce.

One write is in flight per session and at most one request waits behind it; a newer
request is folded into the waiting one (newest messages, metadata merged, every waiter
kept), so a burst of auto-saves costs at most two writes and the last holds the latest
messages. The metadata of a failed auto-save goes with the next write, save what the store
refuses (never an explicit save's: that call raises); an auto-save whose write someone else
cancelled (the loop closing, say) is written again, as is one whose event loop was closed
under it (it can never report): by the next flush or save, on whatever loop runs it, never at
once on a loop that may be closing (unless a flush or save there waits for it). A write is
one call of the store's public ``append`` or ``save``, run in a task; waiting for it
(``flush``) never cancels it. With no loop running (sync code) a write happens at once, after
what was queued, unless a write is in flight on a loop still open: it then waits behind it.
Waiting on one loop for a write in flight on another that is not running would never end:
``flush`` and ``save`` raise ``EventLoopError`` instead (run that loop, or close it).
To a store that checks revisions (``checks_revisions``) each write says which revision of
the session it was made from: the one the last write returned, or the one loaded; a write
from a stale view then fails with ``ConflictError`` instead of overwriting another writer's
messages. A write that failed with ``StoreError`` (a connection lost at the commit, say) may
have landed: the next one first reads the session to tell, as after a cancelled write. A
``CancelledError`` the store raised itself, nobody having cancelled the write (its driver's
pool closing under it, say), is such a ``StoreError``: a failure, not a write tried for ever.
What a write holds (``SaveRequest``) and the stores' rule for metadata are in ``save_request``,
a manager's writers by session id (``SessionWriters``) in ``writers``; both importable from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import replace
from functools import partial
from typing import Any

from .._backend import dumps, loads
from ..errors import EventLoopError, SessionError, StoreError
from ..messages import JsonObject, Message
from ..models import Revision
from ..protocols import AppendableSessionStore, SessionStore, checks_revisions
from .save_request import SaveRequest, acceptable, check_metadata
from .write_task import cancel_requested, start
from .writers import SessionWriters

__all__ = ["SaveRequest", "SessionWriter", "SessionWriters", "check_metadata"]

#: What a write stored: ``source[start:end]``, the session's own messages.
_Written = tuple[Sequence[Message], int, int]


class SessionWriter:
    """Serializes the writes of one session to a store, appending where it can.

    It remembers the messages of its last successful write: when a request only adds
    messages after them (the same append-only list grown, or equal messages compared by
    identity first, so this costs microseconds) and the store is an
    ``AppendableSessionStore``, only the new ones are written. Anything else (a first
    write, a failed one, :meth:`reset` after load/clear/fork, an earlier message replaced,
    ``full``) rewrites the session.
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
        self._store = store
        # checked once: a runtime protocol check costs tens of microseconds
        self._appender = store if isinstance(store, AppendableSessionStore) else None
        self._checks = checks_revisions(store)
        self._revision: Revision | None = None  # the session's, as this writer last saw it
        self._unsure: SaveRequest | None = None  # a write cancelled in flight: landed, or not
        self._pending: SaveRequest | None = None
        self._carried: dict[str, Any] = {}  # metadata of failed background saves, not yet written
        self._written: _Written | None = None
        self._failed_last = False  # the last write failed: what it held may not be stored
        self._inflight: asyncio.Task[None] | None = None
        self._writing: SaveRequest | None = None  # what the write in flight writes
        self._drained: list[asyncio.Future[None]] = []
        self._on_saved = on_saved
        self._on_failed = on_failed
        self._on_idle = on_idle

    @property
    def busy(self) -> bool:
        """Whether a write is in flight or queued."""
        return self._inflight is not None or self._pending is not None

    def holds(self, messages: Sequence[Message]) -> bool:
        """Whether the store holds exactly ``messages`` from this writer's last write, nothing pending."""
        written = self._written
        if self.busy or written is None:
            return False
        source, start, end = written
        return list(source[start:end]) == list(messages)

    @property
    def revision(self) -> Revision | None:
        """The session's revision as this writer last saw it (``None``: none known)."""
        return self._revision

    @property
    def failed(self) -> bool:
        """Whether the last write failed as a write again may not (the disk, the server: an
        ``OSError`` or ``StoreError``), or was cut short, not to be written again: what it held
        may not be stored until the next write succeeds. Not after a ``ConflictError``, which
        ``recover`` mends."""
        return self._failed_last

    def reset(self, revision: Revision | None = None) -> None:
        """Forget what was written: the next write rewrites the whole session, made from
        ``revision`` (what a load found; ``None``: a new session, written unconditionally)."""
        self._written = None
        self._revision = revision
        self._unsure = None
        self._failed_last = False

    def drained(self) -> asyncio.Future[None] | None:
        """A future resolved once nothing is in flight or queued; ``None`` when that is now. A
        request queued with nothing in flight (see ``_landed``) starts here, on this loop.
        Raises ``EventLoopError`` when the write in flight is on another event loop that is not
        running (see ``_check_reachable``)."""
        loop = asyncio.get_running_loop()
        if self._revived() or (self._inflight is None and self._pending is not None):
            self._dispatch()
        if not self.busy:
            return None
        self._check_reachable(loop)
        future: asyncio.Future[None] = loop.create_future()
        self._drained.append(future)
        return future

    def submit(self, request: SaveRequest, *, raise_now: bool = False) -> asyncio.Future[None] | None:
        """Queue ``request``; returns a future of its outcome for explicit requests.

        Without a running event loop the write happens at once, in this thread, with what was
        queued (``raise_now`` makes a failure raise instead of being reported); unless a write
        is in flight on a loop still open: the request then waits behind it (see
        ``_write_without_loop``). An explicit request raises ``EventLoopError`` (nothing queued)
        when the write in flight is on another event loop that is not running.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_without_loop(request, raise_now)
            return None
        self._revived()
        future: asyncio.Future[None] | None = None
        if not request.background:
            self._check_reachable(loop)
            future = loop.create_future()
            request.waiters += (future,)
        self._queue(request)
        if self._inflight is None:
            self._dispatch()
        return future

    # -- internals ---------------------------------------------------------------------

    def _queue(self, request: SaveRequest) -> None:
        """Fold ``request`` into the queued one, with what failed auto-saves meant to store."""
        if self._carried:
            request.metadata = {**self._carried, **request.metadata}
            request.carry = {**self._carried, **request.carry}
            self._carried = {}
        if self._pending is None:
            self._pending = request
        else:
            self._pending.absorb(request)

    def _revived(self) -> bool:
        """Take back the write in flight when its event loop will not report it: that loop is
        closed (a sync wrapper's ``run_until_complete`` returned, and closed it, with the write
        pending), or the write ended and its loop is not running (the report waits for that
        loop to run again, which may never be); whether it did.

        One that ended is settled as it ended, one cut short as a cancelled one (landed, or
        not: its auto-saves are queued again), and the queue then goes on, on the loop running
        now (or none). Should its open loop run again, its report is ignored (``_landed``).
        """
        task = self._inflight
        if task is None:
            return False
        loop = task.get_loop()
        if not loop.is_closed() and not (task.done() and not loop.is_running()):
            return False
        request, self._writing, self._inflight = self._writing, None, None
        assert request is not None
        if not task.done():  # it never resumes: let its finally blocks run (locks, files let go)
            with suppress(Exception):  # one that needed its loop
                task.get_coro().close()
        self._settle(request, task)
        return True

    def _check_reachable(self, loop: asyncio.AbstractEventLoop) -> None:
        """Raise ``EventLoopError`` when the write in flight is on another event loop than
        ``loop``, open but not running: its end is heard on its own loop, so a wait for it here
        would never end. (One whose loop is closed, or that ended, is taken back first.)"""
        task = self._inflight
        if task is None:
            return
        other = task.get_loop()
        if other is not loop and not other.is_running():
            raise EventLoopError(self.session_id)

    def _delta(self, request: SaveRequest, written: _Written | None) -> list[Message] | None:
        """The messages to append after what was written; ``None``: rewrite the session."""
        if written is None or request.full or self._appender is None:
            return None
        source, start, end = written
        if request.source is source and request.start == start and request.end >= end:
            grown = source[end : request.end]  # the same append-only list, grown
            return grown if type(grown) is list else list(grown)
        done = list(source[start:end])
        messages = request.messages
        if len(messages) >= len(done) and messages[: len(done)] == done:
            return messages[len(done) :]
        return None

    async def _store_call(self, request: SaveRequest, delta: list[Message] | None) -> None:
        operation = "load"  # the store's call under way, for a CancelledError it raises itself
        try:
            options: dict[str, Any] = {}
            if self._checks:
                if self._unsure is not None:
                    await self._check_unsure(self._unsure)
                options["expected"] = self._revision
            if delta is not None and self._appender is not None:
                operation = "append"
                revision = await self._appender.append(request.session_id, delta, request.metadata, **options)
            else:
                operation = "save"
                revision = await self._store.save(
                    request.session_id, request.messages, request.metadata, **options
                )
        except asyncio.CancelledError as cancelled:
            if cancel_requested():
                raise
            raise StoreError(
                f"session {self.session_id}: the store's {operation} raised CancelledError, though"
                " nobody cancelled the write (its connection or pool closed under it, say): it failed"
            ) from cancelled
        if revision is not None:
            self._revision = revision

    async def _check_unsure(self, request: SaveRequest) -> None:
        """Whether a write cancelled in flight landed, from the session as stored: when it holds
        exactly that write's messages, the revision found is this writer's; else the one before
        stays (and should another writer have written meanwhile, the next write is refused)."""
        stored = await self._store.load(self.session_id)
        self._unsure = None
        if stored is not None and _stored_alike(stored.messages, request.messages):
            self._revision = stored.revision

    def _write_without_loop(self, request: SaveRequest, raise_now: bool) -> None:
        """Write ``request`` with what was queued, at once (no loop runs in this thread); behind
        a write in flight on a loop still open (not running, or in another thread) it is queued
        instead, and goes once that loop runs the write to its end: written beside it, made from
        the same revision, it would conflict with it (or overwrite it)."""
        self._revived()
        self._queue(request)
        if self._inflight is not None:
            return
        merged, self._pending = self._pending, None
        assert merged is not None
        written, self._written = self._written, None
        try:
            asyncio.run(self._store_call(merged, self._delta(merged, written)))
        except Exception as error:
            if raise_now:
                raise
            self._failed(merged, error)
        else:
            self._succeeded(merged)
        if self._inflight is None and self._pending is None:
            self._dispatch()  # idle: flushes waiting on a loop not running end, the writer may go

    def _dispatch(self) -> None:
        """Start the queued write when none is in flight; report idleness when none is left.

        A listener of the outcome may submit again (a ``save`` event saving once more): its
        request starts from there, and this call then finds a write in flight.
        """
        if self._inflight is not None:
            return
        if self._pending is not None:
            request, self._pending = self._pending, None
            written, self._written = self._written, None
            write = self._store_call(request, self._delta(request, written))
            name = f"simulacra-session save {self.session_id}"
            self._writing = request
            self._inflight = start(write, name)
            self._inflight.add_done_callback(partial(self._landed, request))
            return
        drained, self._drained = self._drained, []
        for future in drained:
            if _open(future):
                future.set_result(None)
        self._on_idle(self.session_id)

    def _landed(self, request: SaveRequest, done: asyncio.Task[None]) -> None:
        """Settle the write that ended and start the next. After one someone else cancelled,
        with nobody on its loop waiting, the next is kept queued for the next ``submit`` or
        ``drained``, on whatever loop runs it: that loop may be closing (``asyncio.run``
        cancels the tasks left, then shuts down the executor a store's threads run in)."""
        if done is not self._inflight:
            return  # taken back already, its loop not running then (see ``_revived``)
        self._inflight = self._writing = None
        self._settle(request, done)
        if done.cancelled() and self._pending is not None and not self._awaited(done.get_loop()):
            return
        self._dispatch()

    def _awaited(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether someone on ``loop`` waits for this writer: a flush, or an explicit save queued."""
        pending = self._pending
        waiting = self._drained if pending is None else [*self._drained, *pending.waiters]
        return any(_open(future) and future.get_loop() is loop for future in waiting)

    def _settle(self, request: SaveRequest, done: asyncio.Task[None]) -> None:
        """Report the outcome of a write that finished, or will never finish (``_revived``)."""
        ended = done.done() and not done.cancelled()
        error = done.exception() if ended else None
        if ended and error is None:
            self._succeeded(request)
        elif isinstance(error, Exception):
            self._failed(request, error)
        else:  # cancelled by someone else (the loop closing, say), or cut short: landed, or not
            if self._checks and self._unsure is None:  # one still unsure (cut in its read) stays
                self._unsure = request
            for waiter in request.waiters:
                if _open(waiter):
                    waiter.cancel()
            if request.background:  # an auto-save is written again, with what queued behind it
                again = replace(request, metadata=request.carry, waiters=())
                if self._pending is not None:
                    again.absorb(self._pending)
                self._pending = again
            else:
                self._failed_last = True
                self._carry_on(request)

    def _succeeded(self, request: SaveRequest) -> None:
        self._written = (request.source, request.start, request.end)
        self._failed_last = False
        for waiter in request.waiters:
            if _open(waiter):
                waiter.set_result(None)
        self._on_saved(request)

    def _failed(self, request: SaveRequest, error: Exception) -> None:
        self._failed_last = isinstance(error, (OSError, StoreError))  # what trying again may cure
        if self._checks and isinstance(error, StoreError) and self._unsure is None:
            self._unsure = request  # a lost connection: landed, or not (one still unsure stays)
        for waiter in request.waiters:
            if _open(waiter):
                waiter.set_exception(error)
        self._carry_on(request)
        if request.background:
            self._on_failed(request, error)

    def _carry_on(self, request: SaveRequest) -> None:
        """What the auto-saves in ``request``, which may not have landed, meant to store (a label,
        say) goes with the next write, newer values winning; not what the store refuses, which
        would fail every write after it."""
        carry = acceptable(request.session_id, request.carry) if request.carry else None
        if not carry:
            return
        pending = self._pending
        if pending is not None:
            pending.metadata = {**carry, **pending.metadata}
            pending.carry = {**carry, **pending.carry}
        else:
            self._carried = {**self._carried, **carry}


def _stored_alike(stored: Sequence[JsonObject], messages: Sequence[Message]) -> bool:
    """Whether ``stored`` holds ``messages`` as a store's load gives them back: JSON's values (a
    tuple comes back a list, a framework's item a dict), so one that landed is known as such."""
    if stored == messages:  # the common case, without encoding anything
        return True
    if len(stored) != len(messages):
        return False
    try:
        return loads(dumps(list(messages))) == list(stored)
    except (SessionError, TypeError, ValueError):  # not JSON: no store holds it
        return False


def _open(future: asyncio.Future[None]) -> bool:
    """Whether ``future`` still waits for an outcome it can take: not one settled, nor one of a
    closed loop (nobody awaits it any more, and its loop cannot run its callbacks)."""
    return not future.done() and not future.get_loop().is_closed()
