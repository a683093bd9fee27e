"""Twin of ``rust/src/sync``: make the data written through open descriptors durable, and
the group-commit thread that does so for every writer of the process (``Committer``,
``CommitChannel``; see ``rust/src/sync/commit.rs``).

One call per descriptor, in order (``make_durable``): ``fcntl(F_FULLFSYNC)`` on macOS
(``fsync`` where the file system refuses it, as SQLite's ``fullfsync``), else
``os.fdatasync`` where Python has it, else ``os.fsync`` (``_commit`` on Windows). The
compiled twin also syncs a large batch of regular files with one ``syncfs`` per disk file
system on Linux (never a pipe, device or /proc file, which ``syncfs`` would pass and
``fdatasync`` refuses); the outcome per descriptor is the same.
"""

from __future__ import annotations

import contextlib
import errno
import operator
import os
import sys
import threading
from collections.abc import Iterable
from typing import final

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

__all__ = ["CommitChannel", "Committer", "make_durable", "sync_files"]

_REFUSED = frozenset((errno.ENOTSUP, errno.EINVAL, errno.ENOTTY))  # F_FULLFSYNC not supported


def make_durable(fd: int, *, data_only: bool = False) -> None:
    """Make what was written through ``fd`` durable, or raise ``OSError``. ``data_only``:
    the file's data and size, not its other metadata (``fdatasync``), where that differs."""
    if sys.platform == "darwin":
        import fcntl

        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
        except OSError as error:
            if error.errno not in _REFUSED:
                raise
            os.fsync(fd)
    elif data_only and hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


def sync_files(fds: list[int]) -> list[int]:
    """Make each descriptor's written data durable; the errno of each (0: durable). The
    descriptors stay open."""
    errnos = []
    for fd in fds:
        try:
            make_durable(operator.index(fd), data_only=True)
        except OSError as error:
            errnos.append(error.errno or errno.EIO)
        except ValueError:  # a negative number: what the system call would say of it
            errnos.append(errno.EBADF)
        else:
            errnos.append(0)
    return errnos


def _unlock(fds: Iterable[int]) -> None:
    """Release the ``flock`` each descriptor may hold: once durable, its file is free for the
    next writer, whenever the reader drains the outcome."""
    if fcntl is not None:
        for fd in fds:
            with contextlib.suppress(OSError, ValueError):
                fcntl.flock(fd, fcntl.LOCK_UN)


@final
class CommitChannel:
    """Where one event loop receives the ``(fd, errno)`` outcomes of the descriptors it
    handed over: ``fileno()`` turns readable when some arrive, ``drain()`` takes them."""

    def __init__(self) -> None:
        if os.name != "posix":
            raise OSError(errno.ENOSYS, "no descriptor an event loop can watch on this platform")
        if hasattr(os, "eventfd"):
            self._read = self._write = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        else:
            self._read, self._write = os.pipe()
            os.set_blocking(self._read, False)
            os.set_blocking(self._write, False)
        self._guard = threading.Lock()
        self._outcomes: list[tuple[int, int]] = []
        self._closed = False

    def fileno(self) -> int:
        """The descriptor that turns readable when outcomes arrive."""
        return self._read

    def drain(self) -> list[tuple[int, int]]:
        """The outcomes delivered since the last drain, in order; the signal is cleared."""
        with contextlib.suppress(BlockingIOError):
            while len(os.read(self._read, 512)) == 512:
                pass
        with self._guard:
            outcomes, self._outcomes = self._outcomes, []
        return outcomes

    def close(self) -> None:
        """Nobody will drain any more: undrained descriptors are closed, now or when done."""
        with self._guard:
            self._closed = True
            outcomes, self._outcomes = self._outcomes, []
        for fd, _ in outcomes:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _deliver(self, outcome: tuple[int, int]) -> bool:
        """The thread's side: add an outcome; whether the reader must be woken."""
        with self._guard:
            if self._closed:
                with contextlib.suppress(OSError):
                    os.close(outcome[0])
                return False
            self._outcomes.append(outcome)
            return len(self._outcomes) == 1

    def _set(self) -> None:
        """Wake the reader (a set eventfd or a full pipe already holds a wake-up)."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._write, (1).to_bytes(8 if self._read == self._write else 1, sys.byteorder))

    def __del__(self) -> None:
        for fd in {self._read, self._write} if hasattr(self, "_write") else ():
            os.close(fd)


@final
class Committer:
    """The group-commit thread: sleeps until descriptors are handed over, makes all of them
    durable together (``sync_files``), and delivers each outcome to its channel. It never
    closes a descriptor: whoever drains the outcome does."""

    def __init__(self) -> None:
        self._queue = _Queue()
        self._thread: threading.Thread | None = None

    def submit(self, fd: int, channel: CommitChannel) -> bool:
        """Hand ``fd`` over; its outcome arrives in ``channel``. False once stopped."""
        fd = operator.index(fd)
        if not -(2**31) <= fd < 2**31:
            raise OverflowError(f"descriptor {fd} does not fit a C int")
        if not isinstance(channel, CommitChannel):
            raise TypeError(f"a CommitChannel is needed, not {type(channel).__name__}")
        queue = self._queue
        with queue.work:
            if queue.stopping:
                return False
            if self._thread is None:  # the thread holds the queue, not this: dropping this ends it
                thread = threading.Thread(target=queue.run, name="simulacra-session sync", daemon=True)
                try:
                    thread.start()
                except RuntimeError as error:  # "can't start new thread": as the native twin says it
                    raise OSError(errno.EAGAIN, f"the group-commit thread cannot start: {error}") from error
                self._thread = thread
            queue.jobs.append((fd, channel))
            queue.work.notify()
        return True

    def stop(self) -> None:
        """Make durable what was handed over, then end the thread."""
        self._queue.stop()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def __del__(self) -> None:
        self._queue.stop()


class _Queue:
    """What the thread is handed, and its loop."""

    def __init__(self) -> None:
        self.work = threading.Condition()
        self.jobs: list[tuple[int, CommitChannel]] = []
        self.stopping = False

    def stop(self) -> None:
        """Refuse further work; the thread ends once what it holds is done."""
        with self.work:
            self.stopping = True
            self.work.notify()

    def run(self) -> None:
        while jobs := self._take():
            _commit(jobs)
            del jobs  # holds no channel while asleep: a closed one's descriptors can go

    def _take(self) -> list[tuple[int, CommitChannel]]:
        """Sleep until there is work; all of it (none: stopped)."""
        with self.work:
            while not self.jobs and not self.stopping:
                self.work.wait()
            jobs, self.jobs = self.jobs, []
            return jobs


def _commit(jobs: list[tuple[int, CommitChannel]]) -> None:
    """Make the jobs' descriptors durable together and deliver each outcome to its channel.

    A fault of the thread's own (a bug, not the disk's error) fails the batch, not the
    thread: its waiters hear ``EIO`` (durable or not, nobody knows), later batches are served."""
    try:
        errnos = sync_files([fd for fd, _ in jobs])
    except Exception:
        errnos = [errno.EIO] * len(jobs)
    _unlock(fd for fd, _ in jobs)
    woken: list[CommitChannel] = []
    for (fd, channel), code in zip(jobs, errnos, strict=True):
        if channel._deliver((fd, code)) and channel not in woken:
            woken.append(channel)
    for channel in woken:
        channel._set()
