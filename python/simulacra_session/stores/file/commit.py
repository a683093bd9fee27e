"""Group commit: one thread per process makes journal appends durable, many at a time.

An append is written on the event loop (a page-cache write); its descriptor, still holding
the file's ``flock``, is handed here. The thread sleeps until there is work, takes every
descriptor handed over meanwhile, makes them all durable together (``sync_files``: on
Linux one ``syncfs`` per file system for a batch of several files), closes them, and
hands each outcome back to its event loop with one wake-up per loop and batch
(``call_soon_threadsafe``). Nothing waits by spinning or polling: the thread sleeps on a
condition variable, and the loop sleeps in its selector until it is woken.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading

try:
    from ..._backend import sync_files
except ImportError:  # TEMPORARY until the twins export sync_files

    def sync_files(fds: list[int]) -> list[int]:
        out = []
        for fd in fds:
            try:
                os.fdatasync(fd)
                out.append(0)
            except OSError as error:
                out.append(error.errno or 5)
        return out


__all__ = ["GroupCommit"]

#: A descriptor to make durable, the file it writes (an error names it), and who waits.
_Job = tuple[int, str, asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def _settle(outcomes: list[tuple[asyncio.Future[None], str, int]]) -> None:
    """On the loop: resolve each waiting future (a cancelled one is left as it is)."""
    for future, path, errno in outcomes:
        if future.done():
            continue
        if errno:
            future.set_exception(OSError(errno, os.strerror(errno), path))
        else:
            future.set_result(None)


class GroupCommit:
    """The process's group-commit thread, shared by every file store.

    Started on first use; stopped at interpreter exit once what was handed to it is
    durable. A forked child starts its own, and closes the descriptors it inherited from
    jobs of its parent's, so it never holds its parent's files locked.
    """

    def __init__(self) -> None:
        self._setup()
        atexit.register(self._stop)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(
                before=self._before_fork,
                after_in_parent=self._after_fork_in_parent,
                after_in_child=self._after_fork,
            )

    def _setup(self) -> None:
        self._ready = threading.Condition(threading.Lock())
        self._queued: list[_Job] = []
        self._syncing: list[_Job] = []
        self._thread: threading.Thread | None = None
        self._stopping = False

    def sync(self, fd: int, path: str) -> asyncio.Future[None]:
        """On the event loop: a future done once ``fd``'s written data (of ``path``) is
        durable, or failed with the ``OSError`` naming ``path``. ``fd`` is closed either way."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._ready:
            if self._stopping:
                os.close(fd)
                raise RuntimeError(f"the interpreter is exiting: {path} cannot be made durable")
            self._queued.append((fd, path, loop, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="simulacra-session sync", daemon=True)
                self._thread.start()
            self._ready.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queued and not self._stopping:
                    self._ready.wait()
                if not self._queued:
                    return
                self._syncing, self._queued = self._queued, []
            jobs = self._syncing
            try:
                errnos = sync_files([job[0] for job in jobs])
            except OSError as error:  # not per descriptor: every job failed alike
                errnos = [error.errno or 5] * len(jobs)
            with self._ready:  # a fork waits for this: its child must not close reused numbers
                for fd, _, _, _ in jobs:
                    with contextlib.suppress(OSError):
                        os.close(fd)  # releases the flock the append took
                self._syncing = []
            self._deliver(jobs, errnos)

    @staticmethod
    def _deliver(jobs: list[_Job], errnos: list[int]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], str, int]]] = {}
        for (_, path, loop, future), errno in zip(jobs, errnos, strict=True):
            by_loop.setdefault(loop, []).append((future, path, errno))
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(_settle, outcomes)

    def _stop(self) -> None:
        with self._ready:
            self._stopping = True
            thread = self._thread
            self._ready.notify()
        if thread is not None:
            thread.join()

    def _before_fork(self) -> None:
        self._ready.acquire()  # so the child sees every job's descriptor open, or closed and gone

    def _after_fork_in_parent(self) -> None:
        self._ready.release()

    def _after_fork(self) -> None:
        """In a forked child: the parent's thread does not exist here, and the descriptors
        its jobs hold are copies that would keep the parent's journals locked."""
        for fd, _, _, _ in self._queued + self._syncing:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._setup()
