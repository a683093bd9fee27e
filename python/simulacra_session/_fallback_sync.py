"""Pure-Python twins of ``simulacra_session._native.FileSyncer`` and ``Mailbox`` (re-exported
by ``_fallback``).

The group-commit thread: writes journal appends (through the journals' leases), makes
descriptors durable together and hands the outcomes back, to each job's mailbox or in one
call per batch; it also lets go of idle leases. ``_native.pyi`` documents the contract.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["FileSyncer", "Mailbox"]

_BATCH_FOR_SYNCFS = 4  # below this, per-file syncs stay cheaper than syncing the whole fs
_IDLE_SECONDS = 5.0
_IDLE_LEASE_SECONDS = 0.25  # how long a lease outlives its last append
_MOST_LEASES = 256  # and at most a quarter of the descriptor limit
_fdatasync = getattr(os, "fdatasync", os.fsync)
_log = logging.getLogger("simulacra_session")


def _syncfs_reports_errors(release: str) -> bool:
    """Whether a Linux release (``6.1.0-13-amd64``) is 5.8 or later: before, ``syncfs``
    returned 0 even when writing a file back had failed."""
    numbers = re.match(r"(\d+)\D(\d+)", release)
    return numbers is not None and (int(numbers[1]), int(numbers[2])) >= (5, 8)


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs``, where it reports errors (else batches sync one file at a time)."""
    if not sys.platform.startswith("linux") or not _syncfs_reports_errors(os.uname().release):
        return None
    import ctypes
    import ctypes.util

    try:
        function: Callable[[int], int] = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


_syncfs = _load_syncfs()
_STALE = (0, False)  # nothing written: the file was not the one expected
_WAKE = (1).to_bytes(8, sys.byteorder)  # what an eventfd takes (a pipe takes any bytes)
_Landed = tuple[Any, int, bool]


class Mailbox:
    """Where the sync thread leaves outcomes for one event loop, waking it through ``wake_fd``.

    ``wake_fd`` (an eventfd or a pipe's write end, non-blocking; never closed here, nor
    written once ``close`` has returned) gets 8 bytes when outcomes arrive while the owner is
    neither polling nor signalled since it last took them.
    """

    def __init__(self, wake_fd: int) -> None:
        self._wake_fd = wake_fd
        self._lock = threading.Lock()
        self._landed: list[_Landed] = []
        self._polling = False
        self._signalled = False
        self._closed = False

    def take(self, polling: bool) -> list[_Landed]:
        """Every outcome posted so far, oldest first. ``polling``: the owner will call again
        by itself, so posts need not wake it until a later ``take(False)``."""
        with self._lock:
            self._polling, self._signalled = polling, False
            landed, self._landed = self._landed, []
        return landed

    def _watch(self) -> None:
        """As ``take(True)`` does to waking, without taking (``FileSyncer.expedite``)."""
        with self._lock:
            self._polling = True

    def close(self) -> list[_Landed]:
        """Refuse later outcomes (they go to the syncer's ``deliver``); returns those unread."""
        with self._lock:
            self._closed = True
            landed, self._landed = self._landed, []
        return landed

    def _post(self, landed: list[_Landed]) -> bool:
        """Leave outcomes, waking the owner if it needs it; ``False`` when closed."""
        with self._lock:
            if self._closed:
                return False
            self._landed.extend(landed)
            if not self._polling and not self._signalled:
                self._signalled = True
                # Under the lock: once close() returns, the owner may close the descriptor
                # and its number be reused; a late write would land in someone else's file.
                with contextlib.suppress(OSError):  # full: woken already
                    os.write(self._wake_fd, _WAKE)
        return True


def _post_all(outcomes: list[list[Any]]) -> list[_Landed]:
    """Post each outcome ``[token, errno, written, mailbox]`` to its mailbox, one post per
    mailbox; the rest are for ``deliver``."""
    direct: list[_Landed] = []
    posts: dict[int, tuple[Mailbox, list[_Landed]]] = {}
    for token, code, written, mailbox in outcomes:
        if mailbox is None:
            direct.append((token, code, written))
        else:
            posts.setdefault(id(mailbox), (mailbox, []))[1].append((token, code, written))
    for mailbox, landed in posts.values():
        if not mailbox._post(landed):
            direct.extend(landed)
    return direct


def _sync_all(fds: list[int]) -> list[int]:
    """Make every fd's written data durable; the errno of each (0: durable)."""
    syncfs = _syncfs
    if syncfs is not None and len(fds) >= _BATCH_FOR_SYNCFS:
        return _sync_grouped(fds, [_device_of(fd) for fd in fds], lambda fd: syncfs(fd) == 0, _sync_one)
    return [_sync_one(fd) for fd in fds]


def _sync_grouped(
    fds: list[int], devices: list[int | None], syncfs: Callable[[int], bool], sync: Callable[[int], int]
) -> list[int]:
    """One ``syncfs`` for the fds of each file system holding ``_BATCH_FOR_SYNCFS`` or more of
    them (the stores of one process may live on several disks), ``sync`` (its errno) for
    each of the rest; ``None``: the device is unknown, synced alone."""
    groups: dict[int | None, list[int]] = {}
    for index, device in enumerate(devices):
        groups.setdefault(device, []).append(index)
    errnos = [0] * len(fds)
    for device, group in groups.items():
        if device is None or len(group) < _BATCH_FOR_SYNCFS or not syncfs(fds[group[0]]):
            for index in group:
                errnos[index] = sync(fds[index])
    return errnos


def _device_of(fd: int) -> int | None:
    try:
        return os.fstat(fd).st_dev
    except (OSError, ValueError):  # ValueError: a negative number
        return None


def _sync_one(fd: int) -> int:
    try:
        _fdatasync(fd)
    except OSError as error:
        return error.errno or errno.EIO
    except ValueError:  # a negative number: what the system call would say of it
        return errno.EBADF
    return 0


def _checked_write(fd: int, path: str, inode: int, end: int, last: bytes, payload: bytes) -> tuple[int, bool]:
    """Lock the open journal without waiting, check it is the file expected, write ``payload`` at ``end``."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        opened = os.fstat(fd)
        if opened.st_ino != inode or opened.st_size != end:
            return _STALE
        if os.stat(path).st_ino != opened.st_ino:
            return _STALE  # replaced by a rewrite in another process
        if not _ends_with(fd, end, last):
            return _STALE  # another file, with a reused inode number, the same size
    except BlockingIOError:
        return _STALE  # locked by another process (or another lease of this one)
    except OSError as error:
        return (error.errno or errno.EIO, False)
    return _pwrite_all(fd, payload, end)


def _pwrite_all(fd: int, payload: bytes, end: int) -> tuple[int, bool]:
    view = memoryview(payload)
    try:
        while view:
            written = os.pwrite(fd, view, end)
            view, end = view[written:], end + written
    except OSError as error:
        return (error.errno or errno.EIO, False)
    return (0, True)


def _ends_with(fd: int, end: int, last: bytes) -> bool:
    """Whether the first ``end`` bytes of the file at ``fd`` end with ``last``."""
    start = end - len(last)
    if start < 0:
        return False
    found = b""
    while len(found) < len(last):
        chunk = os.pread(fd, len(last) - len(found), start + len(found))
        if not chunk:
            return False
        found += chunk
    return found == last


def _last_record(payload: bytes) -> bytes:
    """The record ``payload`` ends with: its last line, newline included."""
    body = payload[:-1] if payload.endswith(b"\n") else payload
    return payload[body.rfind(b"\n") + 1 :]


def _descriptor_limit() -> int | None:
    try:
        import resource
    except ImportError:
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


class _Lease:
    """A journal kept open and locked: the state its last append left, and who holds it."""

    __slots__ = ("end", "fd", "held", "inode", "last", "used", "users")

    def __init__(self, fd: int, inode: int, end: int, last: bytes, used: float) -> None:
        self.fd, self.inode, self.end, self.last, self.used = fd, inode, end, last, used
        self.users = 1  # writes under way (the one that took it)
        self.held = True  # in the table


class _Leases:
    """The leases of one syncer, as ``rust/src/lease.rs`` keeps them: a descriptor closes
    once neither the table nor a write under way holds it."""

    def __init__(self) -> None:
        self._table: dict[str, _Lease] = {}
        self._guard = threading.Lock()
        limit = _descriptor_limit()
        self._capacity = max(1, _MOST_LEASES if limit is None else min(_MOST_LEASES, limit // 4))

    def write(
        self, path: str, inode: int, end: int, last: bytes, payload: bytes
    ) -> tuple[_Lease | None, tuple[int, bool], bool]:
        """Write ``payload`` as ``FileSyncer.append`` does: the lease written through or taken
        (to give back with :meth:`done`), the outcome, whether the journal was leased anew."""
        if os.name != "posix":  # inodes cannot be checked: appends are left to the caller
            return None, _STALE, False
        now = time.monotonic()
        with self._guard:
            lease = self._table.get(path)
            if lease is not None:
                if lease.inode != inode or lease.end != end or lease.last != last:
                    return None, _STALE, False  # not the state the lock keeps
                lease.end += len(payload)  # reserved before the write
                lease.last = _last_record(payload)
                lease.used = now
                lease.users += 1
        if lease is not None:
            outcome = _pwrite_all(lease.fd, payload, end)
            if outcome[0]:
                self._drop(path, lease)
            return lease, outcome, False
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except (OSError, ValueError):
            return None, _STALE, False
        outcome = _checked_write(fd, path, inode, end, last, payload)
        if not outcome[1]:
            _close(fd)
            return None, outcome, False
        lease = _Lease(fd, inode, end + len(payload), _last_record(payload), now)
        with self._guard:
            if len(self._table) >= self._capacity:
                oldest = min(self._table, key=lambda key: self._table[key].used)
                self._let_go(self._table.pop(oldest))
            self._table[path] = lease
        return lease, outcome, True

    def done(self, lease: _Lease) -> None:
        """A write under way is done with ``lease``."""
        with self._guard:
            lease.users -= 1
            if not lease.held and not lease.users:
                _close(lease.fd)

    def release(self, path: str) -> None:
        with self._guard:
            lease = self._table.pop(path, None)
            if lease is not None:
                self._let_go(lease)

    def expire(self, now: float) -> float | None:
        """Let go of the leases idle for ``_IDLE_LEASE_SECONDS`` by ``now``; when the next one expires."""
        with self._guard:
            for path in [
                path for path, lease in self._table.items() if now >= lease.used + _IDLE_LEASE_SECONDS
            ]:
                self._let_go(self._table.pop(path))
            return min((lease.used + _IDLE_LEASE_SECONDS for lease in self._table.values()), default=None)

    def clear(self) -> None:
        with self._guard:
            for lease in self._table.values():
                self._let_go(lease)
            self._table = {}

    def abandon(self) -> None:
        """In a forked child: close every leased descriptor, without the lock (a vanished
        thread may hold it); the table is this child's, empty, from here on."""
        for lease in list(self._table.values()):
            _close(lease.fd)
        self._table = {}
        self._guard = threading.Lock()

    def _drop(self, path: str, lease: _Lease) -> None:
        with self._guard:
            if self._table.get(path) is lease:
                self._let_go(self._table.pop(path))

    def _let_go(self, lease: _Lease) -> None:
        """Out of the table (under the lock): closed unless a write under way still holds it."""
        lease.held = False
        if not lease.users:
            _close(lease.fd)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


#: A queued job: a descriptor to sync or an append (path, inode, end, last, payload), its
#: token and its mailbox.
_Job = tuple[int | tuple[str, int, int, bytes, bytes], Any, Mailbox | None]


class FileSyncer:
    """Writes journal appends and makes files durable on a background thread, many at a time.

    The thread takes every job submitted while it was busy: it writes each append (when
    the file is still the one expected), makes every descriptor durable together (one
    ``syncfs`` for a batch of 4 or more on Linux 5.8+, else an ``fdatasync`` each), closes those
    submitted, then posts each outcome ``(token, errno, written)`` to the job's mailbox, or
    calls ``deliver([(token, errno, written), ...])`` once for those without an open one:
    ``written`` when the bytes are in the file, ``errno`` 0 when nothing failed (not written
    with errno 0: the file was not the one expected, nothing was written). An exception
    from ``deliver`` is logged to the ``simulacra_session`` logger. Journals appended to stay
    leased (see ``_native.pyi``); the thread lets idle leases go, and leaves after 5 idle
    seconds with none held; the next job or lease starts one.
    """

    def __init__(self, deliver: Callable[[list[tuple[Any, int, bool]]], object]) -> None:
        self._deliver = deliver
        self._items: list[_Job] = []
        self._ready = threading.Condition()
        self._worker: threading.Thread | None = None
        self._stopped = False
        self._leases = _Leases()

    def submit(self, fd: int, token: Any, mailbox: Mailbox | None = None) -> None:
        """Make the data written to ``fd`` durable, then close it; the outcome comes with ``token``.

        After :meth:`stop` this is done at once, in the caller's thread. ``RuntimeError``
        when no thread can be started (nothing is queued then).
        """
        self._queue((fd, token, mailbox))

    def append(
        self,
        path: str | os.PathLike[str],
        inode: int,
        end: int,
        last: bytes,
        payload: bytes,
        token: Any,
        mailbox: Mailbox | None = None,
    ) -> None:
        """Append ``payload`` to the journal at ``path`` and make it durable, holding its ``flock``.

        Written only when ``path`` opens to the inode ``inode``, ``end`` bytes long and
        ending with ``last`` (the journal's last record: a file that reused the inode number
        at the same size differs there), not locked by another process and still named
        ``path`` once locked; then at ``end``. Through the journal's lease instead, when the
        lease's last append left exactly that state (another state: not written). Otherwise
        nothing is written (not written, errno 0). Everywhere but POSIX, never written.
        After :meth:`stop` this is done at once, in the caller's thread.
        """
        self._queue(((os.fspath(path), inode, end, bytes(last), bytes(payload)), token, mailbox))

    def append_now(
        self, path: str | os.PathLike[str], inode: int, end: int, last: bytes, payload: bytes
    ) -> tuple[int, bool]:
        """Append ``payload`` to the journal now, in this thread, as :meth:`append` does but
        without making it durable: ``(errno, written)`` as it reports them."""
        path = os.fspath(path)
        lease, outcome, leased = self._leases.write(path, inode, end, bytes(last), bytes(payload))
        if lease is not None:
            self._leases.done(lease)
        if leased:  # the thread lets it go once idle (after stop, nobody does: exit is near)
            with self._ready:
                if self._stopped:
                    return outcome
                try:
                    self._start_worker()
                except RuntimeError:
                    self._leases.release(path)
                    return outcome
                self._ready.notify()  # it may be waiting with no lease to let go
        return outcome

    def expedite(self, mailbox: Mailbox) -> None:
        """The owner of ``mailbox`` waits for its jobs: it will take by itself, as after
        ``take(True)``. (The compiled thread also keeps its CPU awake while it syncs them.)"""
        mailbox._watch()

    def release(self, path: str | os.PathLike[str]) -> None:
        """Let go of the lease on ``path``, if any: its lock goes once no write under way holds it."""
        self._leases.release(os.fspath(path))

    def abandon_leases(self) -> None:
        """In a forked child: close every leased descriptor (the parent's)."""
        self._leases.abandon()

    def stop(self) -> None:
        """Let the thread finish what is queued and wait for it, and let go of every lease;
        later work is done inline."""
        with self._ready:
            self._stopped = True
            worker, self._worker = self._worker, None
            self._ready.notify_all()
        if worker is not None:
            worker.join()
        self._leases.clear()

    def _start_worker(self) -> None:
        """Start the thread unless it runs (holding ``_ready``)."""
        if self._worker is None or not self._worker.is_alive():
            worker = threading.Thread(target=self._run, name="simulacra-session-sync", daemon=True)
            worker.start()
            self._worker = worker

    def _queue(self, job: _Job) -> None:
        with self._ready:
            if not self._stopped:
                self._start_worker()
                self._items.append(job)
                self._ready.notify()
                return
        self._finish([job])

    def _run(self) -> None:
        while True:
            with self._ready:
                idle_since = time.monotonic()
                while not self._items:
                    if self._stopped:
                        return
                    now = time.monotonic()
                    leave_at = idle_since + _IDLE_SECONDS
                    next_expiry = self._leases.expire(now)
                    if next_expiry is None and now >= leave_at:
                        self._worker = None  # leaving: the next job starts a thread
                        return
                    until = leave_at if next_expiry is None else min(next_expiry, leave_at)
                    self._ready.wait(max(0.0, until - now))
                batch, self._items = self._items, []
            self._finish(batch)

    def _finish(self, batch: list[_Job]) -> None:
        outcomes: list[list[Any]] = []
        opened: list[tuple[int, int]] = []  # (descriptor handed over, index in outcomes)
        leased: list[tuple[_Lease, int]] = []  # (lease written through, index in outcomes)
        for job, token, mailbox in batch:
            if isinstance(job, int):
                opened.append((job, len(outcomes)))
                code, written = 0, True
            else:
                lease, (code, written), _ = self._leases.write(*job)
                if lease is not None:
                    leased.append((lease, len(outcomes)))
            outcomes.append([token, code, written, mailbox])
        every = opened + [(lease.fd, index) for lease, index in leased]
        durable = [(fd, index) for fd, index in every if outcomes[index][2] and outcomes[index][1] == 0]
        for (_, index), code in zip(durable, _sync_all([fd for fd, _ in durable]), strict=True):
            outcomes[index][1] = code
        for fd, _ in opened:
            _close(fd)
        for lease, _ in leased:
            self._leases.done(lease)
        direct = _post_all(outcomes)
        if not direct:
            return
        try:
            self._deliver(direct)
        except Exception as error:
            _log.error("FileSyncer delivery %r raised", self._deliver, exc_info=error)
