"""Group commit: one thread makes appended files durable, many at a time.

An append writes its bytes from the event loop (a page-cache write takes microseconds) and
hands the file descriptor here; the thread takes every descriptor queued while it was busy
and makes them all durable together, with one ``syncfs`` for a batch on Linux (one journal
commit and cache flush for the lot) or an ``fdatasync`` each elsewhere. The event loop
never waits on the disk, and a fleet of sessions saving at once shares the cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["Syncer"]

_fdatasync = getattr(os, "fdatasync", os.fsync)
_BATCH_FOR_SYNCFS = 4  # below this, per-file syncs stay cheaper than syncing the whole fs


def _load_syncfs() -> Callable[[int], int] | None:
    if not hasattr(os, "fdatasync"):  # not Linux-like
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return function


_syncfs = _load_syncfs()


def _settle(future: asyncio.Future[None], error: OSError | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class Syncer:
    """Makes file descriptors durable on a background thread, then closes them."""

    def __init__(self) -> None:
        self._queue: deque[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def sync_and_close(self, fd: int) -> asyncio.Future[None]:
        """A future done when ``fd``'s written data is durable; ``fd`` is closed either way."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._ready:
            self._queue.append((fd, loop, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="simulacra-session-sync", daemon=True)
                self._thread.start()
            self._ready.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    if not self._ready.wait(timeout=5.0) and not self._queue:
                        self._thread = None  # idle: let the thread go; the next sync starts one
                        return
                batch = list(self._queue)
                self._queue.clear()
            errors = self._sync([fd for fd, _, _ in batch])
            for fd, loop, future in batch:
                os.close(fd)
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
                    loop.call_soon_threadsafe(_settle, future, errors.get(fd))

    @staticmethod
    def _sync(fds: list[int]) -> dict[int, OSError]:
        """Make every fd durable; the errors by fd (never raises)."""
        if _syncfs is not None and len(fds) >= _BATCH_FOR_SYNCFS and _syncfs(fds[0]) == 0:
            return {}
        errors: dict[int, OSError] = {}
        for fd in fds:
            try:
                _fdatasync(fd)
            except OSError as error:
                errors[fd] = error
        return errors
