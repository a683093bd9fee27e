"""Group commit: one thread per process makes journal appends durable, many at a time.

An append is written on the event loop (a page-cache write); its descriptor, still holding
the file's ``flock``, is handed here. The thread sleeps until there is work, takes every
descriptor handed over meanwhile, makes them all durable together (``sync_files``: on
Linux one ``syncfs`` per file system for a batch of several files), closes them, and
hands each outcome back to its event loop with one wake-up per loop and batch
(``call_soon_threadsafe``). Nothing waits by spinning or polling: the thread sleeps in a
blocking read of an eventfd (a pipe where there is none), which a hand-over writes to, and
the loop sleeps in its selector until it is woken. A blocking read is the cheapest wake-up
Python has: a ``threading.Condition`` costs a new lock and several more handovers of the
GIL per wait.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import sys
import threading

from ..._backend import sync_files

__all__ = ["Durable", "GroupCommit"]

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


class _Wake:
    """A descriptor pair one thread blocks reading and others write to, to wake it."""

    __slots__ = ("read_fd", "write_fd")

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            self.read_fd = self.write_fd = os.eventfd(0, os.EFD_CLOEXEC)
        else:
            self.read_fd, self.write_fd = os.pipe()
            os.set_blocking(self.write_fd, False)

    def set(self) -> None:
        """Wake the reader (a full pipe already holds a wake-up)."""
        with contextlib.suppress(BlockingIOError):
            os.write(self.write_fd, _ONE)

    def wait(self) -> None:
        """Sleep until woken (any wake-ups written since the last wait count as one)."""
        os.read(self.read_fd, 8 if self.read_fd == self.write_fd else 4096)

    def close(self) -> None:
        for fd in {self.read_fd, self.write_fd}:
            with contextlib.suppress(OSError):
                os.close(fd)


_ONE = (1).to_bytes(8, sys.byteorder)  # an eventfd adds what is written: 8 bytes, native order


class Durable(asyncio.Future[None]):
    """A job's future, which cancelling does not cancel: a task cancelled while it awaits
    one gets its ``CancelledError`` once the job is done (so a cancelled append is durable
    when the caller hears of it), without a shield's extra loop iteration."""

    def cancel(self, msg: object = None) -> bool:
        return False


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
        self._guard = threading.Lock()  # over the job lists and the thread's start and stop
        self._queued: list[_Job] = []
        self._syncing: list[_Job] = []
        self._wake = _Wake()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def sync(self, fd: int, path: str) -> Durable:
        """On the event loop: a future done once ``fd``'s written data (of ``path``) is
        durable, or failed with the ``OSError`` naming ``path``. ``fd`` is closed either way."""
        loop = asyncio.get_running_loop()
        future = Durable(loop=loop)
        with self._guard:
            if self._stopping:
                os.close(fd)
                raise RuntimeError(f"the interpreter is exiting: {path} cannot be made durable")
            self._queued.append((fd, path, loop, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="simulacra-session sync", daemon=True)
                self._thread.start()
        self._wake.set()
        return future

    def _run(self) -> None:
        wake = self._wake
        while True:
            wake.wait()
            with self._guard:
                if not self._queued:
                    if self._stopping:
                        return
                    continue  # a wake-up whose jobs an earlier batch took
                self._syncing, self._queued = self._queued, []
            jobs = self._syncing
            try:
                errnos = sync_files([job[0] for job in jobs])
            except OSError as error:  # not per descriptor: every job failed alike
                errnos = [error.errno or 5] * len(jobs)
            with self._guard:  # a fork waits for this: its child must not close reused numbers
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
        with self._guard:
            self._stopping = True
            thread = self._thread
        if thread is not None:
            self._wake.set()
            thread.join()

    def _before_fork(self) -> None:
        self._guard.acquire()  # so the child sees every job's descriptor open, or closed and gone

    def _after_fork_in_parent(self) -> None:
        self._guard.release()

    def _after_fork(self) -> None:
        """In a forked child: the parent's thread does not exist here, and the descriptors
        its jobs hold are copies that would keep the parent's journals locked."""
        for fd, _, _, _ in self._queued + self._syncing:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake.close()
        self._setup()
