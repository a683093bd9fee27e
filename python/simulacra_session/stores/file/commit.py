"""Group commit: one thread per process makes journal appends durable, many at a time.

An append is written on the event loop (a page-cache write); its descriptor, still holding
the file's ``flock``, is handed to the backend's ``Committer``, a thread (native: Rust,
holding no interpreter lock) that sleeps until there is work, makes every descriptor handed
over meanwhile durable together (``sync_files``: on Linux one ``syncfs`` per file system
for a batch of several files) and puts each outcome in the ``CommitChannel`` of the loop
that handed it over. The loop watches that channel's descriptor as it watches a socket: the
way back is one wake-up of the loop, whose callback closes the descriptors and resolves the
futures (the thread released the files' locks once they were durable). Nothing spins or
polls: the thread sleeps in the kernel, and so does the loop. An event loop does not survive
a fork (asyncio's rule): a forked child drops its parent's jobs and starts afresh.

Where a loop cannot watch a descriptor (Windows: the proactor has no readers, the selector
takes sockets only), the ``fdatasync`` runs in the loop's default executor instead.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import weakref
from functools import partial

from ..._backend import CommitChannel, Committer, sync_files

__all__ = ["Durable", "GroupCommit"]


class Durable(asyncio.Future[None]):
    """A job's future, which cancelling does not cancel: a task cancelled while it awaits
    one gets its ``CancelledError`` once the job is done (so a cancelled append is durable
    when the caller hears of it), without a shield's extra loop iteration."""

    def cancel(self, msg: object = None) -> bool:
        return False


def _settle(future: Durable, path: str, errno: int) -> None:
    """Resolve ``future`` with the outcome of making ``path`` durable (a cancelled one is left)."""
    if future.done():
        return
    if errno:
        future.set_exception(OSError(errno, os.strerror(errno), path))
    else:
        future.set_result(None)


class _LoopJobs:
    """One event loop's channel and the jobs it waits for, by descriptor (a descriptor stays
    open, so its number unique, until its outcome is drained).

    The loop's reader is all that keeps it alive: once the loop is closed or gone, so is
    this, and its channel is closed, so the thread closes the descriptors nobody will drain.
    """

    __slots__ = ("__weakref__", "channel", "finalizer", "loop", "waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop, channel: CommitChannel) -> None:
        self.loop = weakref.ref(loop)  # which loop this is: an id can be reused once it is gone
        self.channel = channel
        self.waiting: dict[int, tuple[str, Durable]] = {}
        self.finalizer = weakref.finalize(self, channel.close)

    def settle(self) -> None:
        """On the loop, its channel readable: close each descriptor done, resolve its future."""
        for fd, errno in self.channel.drain():
            job = self.waiting.pop(fd, None)
            if job is None:  # a forked child's copy of its parent's job: not its own to close
                continue
            with contextlib.suppress(OSError):  # durable or not, the outcome says; the fd is gone
                os.close(fd)
            _settle(job[1], job[0], errno)


#: A forked child's copies of its parents' committers and channels, never freed (see ``_after_fork``).
_FORKED_AWAY: list[object] = []


def _exiting(fd: int, path: str) -> RuntimeError:
    """Close ``fd``, which cannot be made durable any more; the error to raise."""
    os.close(fd)
    return RuntimeError(f"the interpreter is exiting: {path} cannot be made durable")


class GroupCommit:
    """The process's group commit, shared by every file store.

    The thread starts on first use and stops at interpreter exit once what was handed to it
    is durable. A forked child starts its own and closes the descriptors it inherited from
    its parent's jobs, so it never holds its parent's files locked.
    """

    def __init__(self) -> None:
        self._setup()
        self._unwatchable: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
        atexit.register(self._stop)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _setup(self) -> None:
        self._committer = Committer()
        #: Each watching loop's jobs, by ``id(loop)``; held by the loop's reader alone.
        self._loops: weakref.WeakValueDictionary[int, _LoopJobs] = weakref.WeakValueDictionary()

    def sync(self, fd: int, path: str) -> Durable:
        """On the event loop: a future done once ``fd``'s written data (of ``path``) is
        durable, or failed with the ``OSError`` naming ``path``. ``fd`` is closed either way."""
        loop = asyncio.get_running_loop()
        future = Durable(loop=loop)
        jobs = self._loops.get(id(loop))
        if jobs is None or jobs.loop() is not loop:
            jobs = self._watch(loop)
        if jobs is None:
            try:
                outcome = loop.run_in_executor(None, _sync_and_close, fd)
            except RuntimeError:  # the executor was shut down
                raise _exiting(fd, path) from None
            outcome.add_done_callback(partial(_executed, fd, path, future))
            return future
        jobs.waiting[fd] = (path, future)
        try:
            taken = self._committer.submit(fd, jobs.channel)
        except BaseException:  # the thread cannot start: the file must not stay locked
            del jobs.waiting[fd]
            os.close(fd)
            raise
        if not taken:
            del jobs.waiting[fd]
            raise _exiting(fd, path)
        return future

    def _watch(self, loop: asyncio.AbstractEventLoop) -> _LoopJobs | None:
        """Open a channel for ``loop`` and watch it; ``None`` where the loop cannot."""
        if loop in self._unwatchable:
            return None
        try:
            jobs = _LoopJobs(loop, CommitChannel())
            loop.add_reader(jobs.channel.fileno(), jobs.settle)
        except (OSError, NotImplementedError):
            self._unwatchable.add(loop)
            return None
        self._loops[id(loop)] = jobs
        return jobs

    def _stop(self) -> None:
        self._committer.stop()

    def _after_fork(self) -> None:
        """In a forked child: the parent's thread does not exist here, and the descriptors
        its jobs hold are copies that would keep the parent's journals locked.

        The parent's committer and channels are kept, never freed: a lock the parent's
        threads held at the fork stays held here, and freeing them would take it."""
        for jobs in self._loops.values():
            jobs.finalizer.detach()  # closing the channel would close these a second time
            for fd in jobs.waiting:
                with contextlib.suppress(OSError):
                    os.close(fd)
            jobs.waiting.clear()
        _FORKED_AWAY.append((self._committer, self._loops))
        self._setup()


def _sync_and_close(fd: int) -> int:
    """In a worker thread: make ``fd`` durable and close it (whatever becomes of the loop);
    the errno (0: durable)."""
    try:
        return sync_files([fd])[0]
    finally:
        os.close(fd)


def _executed(fd: int, path: str, future: Durable, outcome: asyncio.Future[int]) -> None:
    """On the loop, the worker done: resolve ``future`` with its outcome."""
    if outcome.cancelled():  # the executor was shut down under it: the worker never ran
        os.close(fd)
        if not future.done():
            future.set_exception(RuntimeError(f"{path} was not made durable: its worker was cancelled"))
        return
    error = outcome.exception()
    if error is None:
        _settle(future, path, outcome.result())
    elif not future.done():
        future.set_exception(error)
