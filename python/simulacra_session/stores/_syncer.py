"""Group commit: one thread makes appended files durable, many at a time.

An append writes its bytes from the event loop (a page-cache write takes microseconds) and
hands the file descriptor here; ``FileSyncer``'s thread takes every descriptor queued while
it was busy and makes them all durable together, with one ``syncfs`` for a batch on Linux
(one journal commit and cache flush for the lot) or an ``fdatasync`` each elsewhere. The
compiled twin waits and syncs without the GIL and takes it once per batch, to hand the
outcomes to each event loop in one callback. The event loop never waits on the disk, and a
fleet of sessions saving at once shares the cost.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
from typing import Any

from .._backend import FileSyncer

__all__ = ["Syncer"]

_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def _settle(outcomes: list[tuple[asyncio.Future[None], int]]) -> None:
    """On the loop: resolve each future with its outcome (errno 0: durable)."""
    for future, errno in outcomes:
        if future.done():
            continue
        if errno == 0:
            future.set_result(None)
        else:
            future.set_exception(OSError(errno, os.strerror(errno)))


def _deliver(done: list[tuple[Any, int]]) -> None:
    """On the sync thread: one callback per event loop for a whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], int]]] = {}
    for (loop, future), errno in done:
        by_loop.setdefault(loop, []).append((future, errno))
    for loop, outcomes in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            loop.call_soon_threadsafe(_settle, outcomes)


class Syncer:
    """Makes file descriptors durable on a background thread, then closes them.

    The thread is stopped at interpreter exit, after what is queued (so it never outlives
    the interpreter); a forked child starts its own.
    """

    def __init__(self) -> None:
        self._core = FileSyncer(_deliver)
        atexit.register(self._stop)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._renew)

    def sync_and_close(self, fd: int) -> asyncio.Future[None]:
        """A future done when ``fd``'s written data is durable; ``fd`` is closed either way."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter: _Waiter = (loop, future)
        try:
            self._core.submit(fd, waiter)
        except BaseException:
            os.close(fd)
            raise
        return future

    def _stop(self) -> None:
        self._core.stop()

    def _renew(self) -> None:
        self._core = FileSyncer(_deliver)  # the parent's thread does not exist in the child
