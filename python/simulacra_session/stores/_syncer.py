"""Group commit: one thread writes journal appends and makes them durable, many at a time.

A durable append is prepared on the event loop (the bytes, the state they lead to) and
handed here; ``FileSyncer``'s thread takes every job queued while it was busy, writes
each append (checking first that the file is still the one the store knows), makes them
all durable together, with one ``syncfs`` for a batch on Linux (one journal commit and
cache flush for the lot) or an ``fdatasync`` each elsewhere, and hands the outcomes to
each event loop in one callback. The compiled twin does all of that without the GIL,
which it takes once per batch to deliver: the event loop neither waits on the disk nor
makes a system call for it, and a fleet of sessions saving at once shares the cost. It
also watches for new work briefly after each batch, sparing the next save a wake-up.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
from typing import Protocol

from .._backend import FileSyncer

__all__ = ["Landing", "Syncer"]


class Landing(Protocol):
    """A job's token: its event loop, and what to do when the job ends (see ``FileSyncer``)."""

    loop: asyncio.AbstractEventLoop

    def landed(self, errno: int, written: bool) -> None:
        """On ``loop``, once the job has ended."""

    def orphaned(self, errno: int, written: bool) -> None:
        """On the sync thread instead, when ``loop`` has closed meanwhile."""


#: Jobs landed per loop callback: a batch of a thousand would hold the loop for milliseconds.
_LANDED_PER_CALLBACK = 64


def _land(outcomes: list[tuple[Landing, int, bool]], start: int = 0) -> None:
    """On the loop: each job's ``landed``, a slice at a time, so other callbacks run between."""
    end = start + _LANDED_PER_CALLBACK
    if end < len(outcomes):
        outcomes[0][0].loop.call_soon(_land, outcomes, end)
    for landing, errno, written in outcomes[start:end]:
        landing.landed(errno, written)


def _deliver(done: list[tuple[Landing, int, bool]]) -> None:
    """On the sync thread: one callback per event loop for a whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Landing, int, bool]]] = {}
    for outcome in done:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, outcomes in by_loop.items():
        try:
            loop.call_soon_threadsafe(_land, outcomes)
        except RuntimeError:  # the loop closed: nobody waits, but the store must move on
            for landing, errno, written in outcomes:
                landing.orphaned(errno, written)


class _Durable:
    """The token of ``sync_and_close``: resolves a future."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
        self.loop = loop
        self.future = future

    def landed(self, errno: int, written: bool) -> None:
        if self.future.done():
            return
        if errno == 0:
            self.future.set_result(None)
        else:
            self.future.set_exception(OSError(errno, os.strerror(errno)))

    def orphaned(self, errno: int, written: bool) -> None:
        pass


class Syncer:
    """The process's group-commit thread, for every file store.

    The thread is stopped at interpreter exit, after what is queued (so it never outlives
    the interpreter); a forked child starts its own.
    """

    def __init__(self) -> None:
        self._core = FileSyncer(_deliver)
        atexit.register(self._stop)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._renew)

    def append(self, path: str, inode: int, end: int, payload: bytes, landing: Landing) -> None:
        """Write ``payload`` at ``end`` of the journal (if it is still inode ``inode``, ``end``
        bytes long) and make it durable; then ``landing.landed(errno, written)`` on its loop.
        """
        self._core.append(path, inode, end, payload, landing)

    def sync_and_close(self, fd: int) -> asyncio.Future[None]:
        """A future done when ``fd``'s written data is durable; ``fd`` is closed either way."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        try:
            self._core.submit(fd, _Durable(loop, future))
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        return future

    def _stop(self) -> None:
        self._core.stop()

    def _renew(self) -> None:
        self._core = FileSyncer(_deliver)  # the parent's thread does not exist in the child
