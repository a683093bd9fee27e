"""Group commit: one thread writes journal appends and makes them durable, many at a time.

A durable append is prepared on the event loop (the bytes, the state they lead to) and
handed here; ``FileSyncer``'s thread takes every job queued while it was busy, writes
each append (checking first that the file is still the one the store knows), makes them
all durable together, with one ``syncfs`` for a batch on Linux (one journal commit and
cache flush for the lot) or an ``fdatasync`` each elsewhere, and hands the outcomes to
each event loop in one callback. The compiled twin does all of that without the GIL,
which it takes once per batch to deliver: the event loop neither waits on the disk nor
makes a system call for it, and a fleet of sessions saving at once shares the cost.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
from collections.abc import Callable
from typing import Any

from .._backend import FileSyncer

__all__ = ["Landed", "Syncer"]

#: Called with ``(errno, written)`` when a job ends (see ``FileSyncer``).
Landed = Callable[[int, bool], None]
_Token = tuple[asyncio.AbstractEventLoop, Landed, Landed]


def _land(outcomes: list[tuple[Landed, Landed, int, bool]]) -> None:
    """On the loop: each job's ``landed``."""
    for landed, _, errno, written in outcomes:
        landed(errno, written)


def _deliver(done: list[tuple[Any, int, bool]]) -> None:
    """On the sync thread: one callback per event loop for a whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Landed, Landed, int, bool]]] = {}
    for (loop, landed, orphaned), errno, written in done:
        by_loop.setdefault(loop, []).append((landed, orphaned, errno, written))
    for loop, outcomes in by_loop.items():
        try:
            loop.call_soon_threadsafe(_land, outcomes)
        except RuntimeError:  # the loop closed: nobody waits, but the store must move on
            for _, orphaned, errno, written in outcomes:
                orphaned(errno, written)


def _resolve(future: asyncio.Future[None], errno: int, written: bool) -> None:
    if future.done():
        return
    if errno == 0:
        future.set_result(None)
    else:
        future.set_exception(OSError(errno, os.strerror(errno)))


def _ignore(errno: int, written: bool) -> None:
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

    def append(
        self, path: str, inode: int, end: int, payload: bytes, landed: Landed, orphaned: Landed
    ) -> None:
        """Write ``payload`` at ``end`` of the journal (if it is still inode ``inode``, ``end``
        bytes long) and make it durable; then ``landed(errno, written)`` on this event loop,
        or ``orphaned(errno, written)`` on the sync thread if the loop has closed by then.
        """
        token: _Token = (asyncio.get_running_loop(), landed, orphaned)
        self._core.append(path, inode, end, payload, token)

    def sync_and_close(self, fd: int) -> asyncio.Future[None]:
        """A future done when ``fd``'s written data is durable; ``fd`` is closed either way."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        token: _Token = (loop, lambda errno, written: _resolve(future, errno, written), _ignore)
        try:
            self._core.submit(fd, token)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        return future

    def _stop(self) -> None:
        self._core.stop()

    def _renew(self) -> None:
        self._core = FileSyncer(_deliver)  # the parent's thread does not exist in the child
