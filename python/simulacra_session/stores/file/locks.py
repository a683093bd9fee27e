"""Who may write a session: a lock per id within the process, ``flock`` across processes.

Within a process, every write of a session holds that id's lock (a ``threading.Lock``, so
both worker threads and the event loop can take it; the loop only ever tries it). Across
processes, every write holds ``flock`` on the session file: a whole rewrite or a delete on
each file the session has (``session_locked``), and on the root directory while it has none
or while a name appears or disappears (a conversion's swap), so a look for the session
under the root's lock never falls between its two names (``settled``). Windows has no
``flock``: there one process writes a root.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TypeVar

from ..._beneath import lock, open_nofollow
from .files import OPEN_RO, OPEN_RW

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "IdLocks",
    "file_locked",
    "open_locked",
    "remove_locked",
    "root_locked",
    "session_locked",
    "settled",
]

T = TypeVar("T")


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


def open_locked(path: str, *, wait: bool = True, shared: bool = False) -> int | None:
    """``path`` opened for writing with ``flock`` held on the inode it names now; ``shared``:
    opened read-only with a shared ``flock`` (a reader's, which needs no write access).

    ``None`` when the file is absent, or (``wait=False``) when another writer holds its lock
    or replaced it meanwhile. Waiting, a file replaced while we waited is opened again, so
    the lock always covers the current file. Closing the descriptor releases the lock. A
    symlink at ``path`` raises ``UnsafePathError`` and is left alone.
    """
    while True:
        try:
            fd = open_nofollow(path, OPEN_RO if shared else OPEN_RW)
        except FileNotFoundError:
            return None
        try:
            if fcntl is None:
                return fd
            if not lock(fd, not shared, wait=wait):
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
def root_locked(root: str, *, exclusive: bool = True) -> Iterator[None]:
    """Hold ``flock`` on the root directory, exclusively (a writer creating a session, or
    swapping its names) or shared (a look confirming that a session has no file). Windows
    has no ``flock``: nothing is held there."""
    if fcntl is None:
        yield
        return
    fd = os.open(root, OPEN_RO)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the flock


@contextmanager
def file_locked(
    path: str, *, create_in: Callable[[], str] | None = None, shared: bool = False
) -> Iterator[int | None]:
    """Hold ``flock`` on ``path`` (yields its descriptor), or ``None`` when it is absent;
    ``shared``: a reader's lock, on a read-only descriptor (``open_locked``).

    With ``create_in`` (returning the root, made if missing: the caller creates an absent
    file), the root directory is locked instead while the file is absent (shared with
    ``shared``), so writers in two processes creating one session take turns, and the
    second finds the first's file.
    """
    while True:
        fd = open_locked(path, shared=shared)
        if fd is not None:
            try:
                yield fd
            finally:
                os.close(fd)
            return
        if create_in is None or fcntl is None:
            yield None
            return
        with root_locked(create_in(), exclusive=not shared):
            if not os.path.lexists(path):
                yield None
                return
        # created meanwhile: lock the file instead


@contextmanager
def session_locked(
    paths: Sequence[str], root: str, *, create_in: Callable[[], str] | None = None
) -> Iterator[list[int | None]]:
    """Hold ``flock`` on each of a session's files that exists; yields their descriptors,
    ``None`` for the absent ones. ``paths`` are the session's names, always in the same
    order, so writers never wait on each other in a circle.

    Once all are held, no name of the session comes or goes but by their holder (checked:
    else all are let go and taken again). When none exists, that is confirmed under the
    root's ``flock``, which a conversion holds while it swaps names: held on, exclusively,
    with ``create_in`` (the caller creates the session; it returns the root, made if
    missing), else shared and only for the look.
    """
    while True:
        with ExitStack() as held:
            fds: list[int | None] = []
            for path in paths:
                fd = open_locked(path)
                if fd is not None:
                    held.callback(os.close, fd)
                fds.append(fd)
            absent = [path for path, fd in zip(paths, fds, strict=True) if fd is None]
            if len(absent) < len(paths) or fcntl is None:
                if not any(os.path.lexists(path) for path in absent):
                    yield fds
                    return
                continue  # one appeared meanwhile
            if create_in is not None:
                held.enter_context(root_locked(create_in()))
                none = not any(os.path.lexists(path) for path in paths)
            elif os.path.isdir(root):
                with root_locked(root, exclusive=False):
                    none = not any(os.path.lexists(path) for path in paths)
            else:
                none = True  # no root, no session
            if none:
                yield fds
                return
        # created or converted meanwhile: lock its file


def remove_locked(path: str, fd: int) -> bool:
    """Remove ``path`` if it still names the file locked as ``fd`` (its holder's to remove:
    never a file another writer put there); whether it was removed."""
    try:
        if os.lstat(path).st_ino != os.fstat(fd).st_ino:
            return False
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def settled(root: str, find: Callable[[], T | None]) -> T | None:
    """``find()``, a look at a session's files without a lock. When it finds none, it looks
    again under a shared ``flock`` on the root: a conversion holds that while it swaps the
    session's names, so a look cannot read one name before the swap and the other after."""
    found = find()
    if found is not None or fcntl is None or not os.path.isdir(root):
        return found
    with root_locked(root, exclusive=False):
        return find()
