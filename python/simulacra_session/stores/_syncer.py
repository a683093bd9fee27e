"""Group commit: one thread writes journal appends and makes them durable, many at a time.

A durable append is prepared on the event loop (the bytes, the state they lead to) and
handed here; ``FileSyncer``'s thread takes every job queued while it was busy, writes
each append (checking first that the file is still the one the store knows, or through
the journal's lease: kept open and locked since this process last appended to it, so
an append is one ``pwrite``; the thread lets a lease go after 250 idle ms), makes them
all durable together, with one ``syncfs`` for a batch on Linux (one journal commit and
cache flush for the lot) or an ``fdatasync`` each elsewhere, and posts the outcomes to
each event loop's ``Mailbox``, waking the loop through an eventfd it watches. The compiled
twin does all of that without the GIL: the event loop neither waits on the disk nor makes
a system call for it, a fleet of sessions saving at once shares the cost, and a loop woken
for an outcome does not find the GIL held by the thread that woke it. The compiled thread
also watches for new work briefly after each batch, and a loop with outcomes to come
watches its mailbox (see ``_Post``): each spares a durable save a wake-up. While a coroutine
awaits, the compiled thread's CPU is also kept from halting through the sync (an idle-priority
spinner, ``rust/src/awake.rs``), so the disk's completions wake it without a hypervisor exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

from .._backend import BACKEND, FileSyncer, Mailbox

__all__ = ["Landing", "Syncer"]


class Landing(Protocol):
    """A job's token: its event loop, and what to do when the job ends (see ``FileSyncer``)."""

    loop: asyncio.AbstractEventLoop

    def landed(self, errno: int, written: bool) -> None:
        """On ``loop``, once the job has ended."""

    def orphaned(self, errno: int, written: bool) -> None:
        """Off ``loop`` instead (the sync thread, or whoever finds it closed), when ``loop``
        closed before the job ended."""


#: Jobs landed per loop callback: a batch of a thousand would hold the loop for milliseconds.
_LANDED_PER_CALLBACK = 64
#: Whether a loop watches its mailbox while outcomes are due. Only the compiled thread posts
#: without the GIL; the pure one would wait for a polling loop to let go of it.
_POLL = BACKEND == "native"
#: How long a loop keeps watching without anything landing (a slow disk's fdatasync).
_POLL_NS = 1_000_000
#: Each look at the mailbox first lets another thread of this CPU run: Linux wakes a parked
#: sync thread onto the CPU of the loop that woke it, where a spinning loop kept it waiting
#: for its time slice (a durable save took 1.5 ms instead of 0.3 after any pause > 200 µs).
_yield_cpu = getattr(os, "sched_yield", lambda: None)


def _land(outcomes: list[tuple[Landing, int, bool]], start: int = 0) -> None:
    """On the loop: each job's ``landed``, a slice at a time, so other callbacks run between."""
    end = start + _LANDED_PER_CALLBACK
    if end < len(outcomes):
        outcomes[0][0].loop.call_soon(_land, outcomes, end)
    for landing, errno, written in outcomes[start:end]:
        landing.landed(errno, written)


def _deliver(done: list[tuple[Landing, int, bool]]) -> None:
    """On the sync thread, for jobs without an open mailbox: one callback per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Landing, int, bool]]] = {}
    for outcome in done:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, outcomes in by_loop.items():
        try:
            loop.call_soon_threadsafe(_land, outcomes)
        except RuntimeError:  # the loop closed: nobody waits, but the store must move on
            _orphan(outcomes)


def _orphan(outcomes: list[tuple[Landing, int, bool]]) -> None:
    for landing, errno, written in outcomes:
        landing.orphaned(errno, written)


def _wake_fds() -> tuple[int, int]:
    """A non-blocking descriptor pair a loop can watch: an eventfd (both ends), or a pipe."""
    if hasattr(os, "eventfd"):
        fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        return fd, fd
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    return read, write


class _Post:
    """One event loop's mailbox and the descriptor that wakes the loop for it.

    While a coroutine waits for an outcome (see :meth:`expedite`), a loop of the compiled
    backend watches the mailbox itself, a callback each iteration, until nothing is due or
    nothing landed for ``_POLL_NS``: it never sleeps, so nothing has to wake it (a wake-up
    of an idle virtual CPU costs about as much as the rest of a durable save's bookkeeping).
    Otherwise, as for background auto-saves nobody waits for, the eventfd wakes it: a fleet
    does not spin its loop.
    """

    __slots__ = ("box", "closed", "deadline", "loop", "polling", "read_fd", "waiting", "write_fd")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.read_fd, self.write_fd = _wake_fds()
        self.box = Mailbox(self.write_fd)
        self.waiting = 0  # jobs sent with this mailbox, not landed yet
        self.polling = False
        self.deadline = 0
        self.closed = False
        try:
            loop.add_reader(self.read_fd, self._woken)
        except BaseException:  # a loop without add_reader (Windows' proactor)
            self._close_fds()
            raise

    def sent(self) -> None:
        """On the loop, after a job was submitted with ``box``."""
        self.waiting += 1

    def expedite(self, core: FileSyncer) -> None:
        """On the loop: a coroutine waits for what is due, so watch for it, and let ``core``
        know (its thread keeps its CPU awake while it syncs for a watched mailbox); compiled
        only."""
        if _POLL and self.waiting > 0 and not self.polling:
            self.polling = True
            self.deadline = time.monotonic_ns() + _POLL_NS
            core.expedite(self.box)
            self.loop.call_soon(self._poll)

    def close(self) -> list[tuple[Landing, int, bool]]:
        """Once the loop has closed: refuse later outcomes; returns those never landed."""
        self.closed = True
        left = self.box.close()
        self._close_fds()
        return left

    def _poll(self) -> None:
        if self.closed:
            return
        _yield_cpu()  # the sync thread, woken onto this CPU, would wait out the loop's spin
        landed = self.box.take(True)
        if landed:
            self.deadline = time.monotonic_ns() + _POLL_NS
            self._land(landed)
        if self.waiting > 0 and time.monotonic_ns() < self.deadline:
            self.loop.call_soon(self._poll)
        else:  # nothing due, or a slow disk: let the eventfd wake the loop
            self.polling = False
            self._land(self.box.take(False))

    def _woken(self) -> None:
        if self.closed:  # a forked child's copy of its parent's mailbox
            self.loop.remove_reader(self.read_fd)
            return
        with contextlib.suppress(BlockingIOError):
            os.read(self.read_fd, 4096)  # resets an eventfd, empties a pipe
        self._land(self.box.take(self.polling))

    def _land(self, landed: list[tuple[Landing, int, bool]]) -> None:
        if landed:
            self.waiting -= len(landed)
            _land(landed)

    def _close_fds(self) -> None:
        for fd in {self.read_fd, self.write_fd}:
            with contextlib.suppress(OSError):
                os.close(fd)


class _Durable:
    """The token of ``sync_and_close``: resolves a future (an error names ``path``)."""

    __slots__ = ("future", "loop", "path")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], path: str) -> None:
        self.loop = loop
        self.future = future
        self.path = path

    def landed(self, errno: int, written: bool) -> None:
        if self.future.done():
            return
        if errno == 0:
            self.future.set_result(None)
        else:
            self.future.set_exception(OSError(errno, os.strerror(errno), self.path))

    def orphaned(self, errno: int, written: bool) -> None:
        pass


class Syncer:
    """The process's group-commit thread, for every file store, and a mailbox per event loop.

    The thread is stopped at interpreter exit, after what is queued (so it never outlives
    the interpreter); a forked child starts its own. The mailbox of a closed loop is closed
    when another loop opens one, or by :meth:`sweep`: what landed in it unread is orphaned.
    """

    def __init__(self) -> None:
        self._core = FileSyncer(_deliver)
        #: ``append`` without making it durable, done in this thread: ``(errno, written)``.
        #: The core's own method (a store calls it on every non-durable append).
        self.append_now: Callable[[str, int, int, bytes, bytes], tuple[int, bool]] = self._core.append_now
        self._posts: dict[asyncio.AbstractEventLoop, _Post | None] = {}  # None: no add_reader
        self._posts_guard = threading.Lock()
        atexit.register(self._stop)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._renew)

    def append(self, path: str, inode: int, end: int, last: bytes, payload: bytes, landing: Landing) -> None:
        """Write ``payload`` at ``end`` of the journal (if it is still inode ``inode``, ``end``
        bytes long, ending with ``last``) and make it durable; then ``landing.landed(errno,
        written)`` on its loop.
        """
        post = self._post(landing.loop)
        self._core.append(path, inode, end, last, payload, landing, None if post is None else post.box)
        if post is not None:
            post.sent()

    def release(self, path: str) -> None:
        """Let go of this process's lease on the journal at ``path`` (if any), so that a lock
        taken next does not wait for it: every blocking writer calls this before it locks."""
        self._core.release(path)

    def sync_and_close(self, fd: int, path: str) -> asyncio.Future[None]:
        """A future done when ``fd``'s written data (of the file at ``path``, which an error
        names) is durable; ``fd`` is closed either way."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        try:
            post = self._post(loop)
            self._core.submit(fd, _Durable(loop, future, path), None if post is None else post.box)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        if post is not None:
            post.sent()
        return future

    def expedite(self) -> None:
        """A coroutine on the running loop waits for a job sent from it: the loop watches its
        mailbox until the jobs have landed (compiled backend), sparing them a wake-up."""
        post = self._posts.get(asyncio.get_running_loop())
        if post is not None:
            post.expedite(self._core)

    def sweep(self) -> None:
        """Close the mailboxes of closed loops, orphaning what they hold: a store waiting for
        a lock that such a job holds calls this. Safe from any thread."""
        with self._posts_guard:
            closed = [loop for loop in self._posts if loop.is_closed()]
            posts = [self._posts.pop(loop) for loop in closed]
        for post in posts:
            if post is not None:
                _orphan(post.close())

    def _post(self, loop: asyncio.AbstractEventLoop) -> _Post | None:
        """The mailbox of ``loop`` (on that loop), opened on first use."""
        try:
            return self._posts[loop]
        except KeyError:
            pass
        self.sweep()
        try:
            post: _Post | None = _Post(loop)
        except NotImplementedError:
            post = None
        with self._posts_guard:
            self._posts[loop] = post
        return post

    def _stop(self) -> None:
        self._core.stop()

    def _renew(self) -> None:
        """In a forked child: the parent's thread does not exist here, and its mailboxes
        (and their locks) and leased descriptors are the parent's."""
        self._core.abandon_leases()
        self._core = FileSyncer(_deliver)
        self.append_now = self._core.append_now
        for post in self._posts.values():
            if post is not None:
                post.closed = True
        self._posts = {}
        self._posts_guard = threading.Lock()
