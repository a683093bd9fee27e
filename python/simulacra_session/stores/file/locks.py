"""Who may write a session: a lock per id within the process, ``flock`` across processes.

Within a process, every write of a session holds that id's lock (a ``threading.Lock``, so
both worker threads and the event loop can take it; the loop only ever tries it). Across
processes, every write holds ``flock`` on the session file, and on the root directory while
the file is being created. Windows has no ``flock``: there one process writes a root.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..._beneath import open_nofollow
from .files import OPEN_RO, OPEN_RW

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

__all__ = ["IdLocks", "file_locked", "open_locked"]


class IdLocks:
    """One lock per session id, made on first use and dropped when nobody holds or awaits it.

    ``on_hold``, when set, is called with the id each time :meth:`held` has taken its lock,
    under it (the file store sweeps a session's residue there on first use: ``residue``).
    """

    __slots__ = ("_guard", "_locks", "on_hold")

    def __init__(self) -> None:
        self._locks: dict[str, tuple[threading.Lock, int]] = {}
        self._guard = threading.Lock()
        self.on_hold: Callable[[str], object] | None = None

    @contextmanager
    def held(self, session_id: str) -> Iterator[None]:
        """Hold the id's lock, waiting for it (in a worker thread: never on the event loop)."""
        with self._guard:
            lock, users = self._locks.get(session_id, (threading.Lock(), 0))
            self._locks[session_id] = (lock, users + 1)
        lock.acquire()
        try:
            if self.on_hold is not None:
                self.on_hold(session_id)
            yield
        finally:
            self.release(session_id, lock)

    def try_hold(self, session_id: str) -> threading.Lock | None:
        """The id's lock, taken without waiting; ``None`` when anyone holds or awaits it."""
        with self._guard:
            if session_id in self._locks:
                return None
            lock = threading.Lock()
            lock.acquire()
            self._locks[session_id] = (lock, 1)
        return lock

    def release(self, session_id: str, lock: threading.Lock) -> None:
        """Let go of a lock taken by :meth:`held` or :meth:`try_hold`."""
        lock.release()
        with self._guard:
            users = self._locks[session_id][1] - 1
            if users:
                self._locks[session_id] = (lock, users)
            else:
                del self._locks[session_id]


def open_locked(path: str, *, wait: bool = True) -> int | None:
    """``path`` opened for writing with ``flock`` held on the inode it names now.

    ``None`` when the file is absent, or (``wait=False``) when another writer holds its lock
    or replaced it meanwhile. Waiting, a file replaced while we waited is opened again, so
    the lock always covers the current file. Closing the descriptor releases the lock. A
    symlink at ``path`` raises ``UnsafePathError`` and is left alone.
    """
    while True:
        try:
            fd = open_nofollow(path, OPEN_RW)
        except FileNotFoundError:
            return None
        try:
            if fcntl is None:
                return fd
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                current = os.lstat(path).st_ino
            except FileNotFoundError:
                current = -1
            if current == os.fstat(fd).st_ino:
                return fd
            os.close(fd)  # replaced meanwhile
            if not wait:
                return None
        except BaseException:
            os.close(fd)
            raise


@contextmanager
def file_locked(path: str, *, create_in: Callable[[], str] | None = None) -> Iterator[int | None]:
    """Hold ``flock`` on ``path`` (yields its descriptor), or ``None`` when it is absent.

    With ``create_in`` (returning the root, made if missing: the caller creates an absent
    file), the root directory is locked instead while the file is absent, so writers in two
    processes creating one session take turns, and the second finds the first's file.
    """
    while True:
        fd = open_locked(path)
        if fd is not None:
            try:
                yield fd
            finally:
                os.close(fd)
            return
        if create_in is None or fcntl is None:
            yield None
            return
        root = os.open(create_in(), OPEN_RO)
        try:
            fcntl.flock(root, fcntl.LOCK_EX)
            if not os.path.lexists(path):
                yield None
                return
        finally:
            os.close(root)  # closing releases the flock
        # created meanwhile: lock the file instead
