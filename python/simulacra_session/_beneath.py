"""Names beneath a directory, reached without following a symlink: the Python side of
``rust/src/fs/beneath.rs``, shared by the pure twin's ``fs`` and the file store.

The directory itself is opened by its path as given (a store's root may be a symlink: whoever
configured the root chose it). Every name beneath it is reached from its descriptor
(``dir_fd=``), never through a symlink (``O_NOFOLLOW``, ``follow_symlinks=False``); ``rename``,
``unlink`` and ``link`` without ``AT_SYMLINK_FOLLOW`` never follow one. A symlink found where a
name is opened is refused with ``UnsafePathError`` naming it, and left as it is.

Windows has no ``dir_fd`` and no ``O_NOFOLLOW``: there each joined path is checked with
``os.lstat`` first, so a symlink swapped in between is followed. That is the deliberate
fallback: creating a symlink takes a privilege on Windows, and one process writes a store's
root there. Nor has Windows ``flock``: :meth:`Dir.lock` does nothing there.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from types import TracebackType

from .errors import UnsafePathError

try:
    import fcntl
except ImportError:  # Windows: no flock (one process writes a root there)
    fcntl = None  # type: ignore[assignment]

__all__ = ["AT", "FLOCK", "Dir", "lock", "open_nofollow", "refused_or", "remove_residue"]

AT = os.open in os.supports_dir_fd  # the *at calls (not on Windows)
FLOCK = fcntl is not None  # advisory locks (not on Windows)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # an open that never waits (a FIFO's for its writer)
_EXISTING = os.O_RDONLY | _NONBLOCK
#: What an open fails with when a symlink is in the way (``ELOOP``; ``ENOTDIR`` with
#: ``O_DIRECTORY``; ``EMLINK`` on FreeBSD; ``EEXIST`` from ``mkdir``).
_MAYBE_SYMLINK = frozenset((errno.ELOOP, errno.ENOTDIR, errno.EMLINK, errno.EEXIST))


def _lstat(path: str, dir_fd: int | None = None) -> os.stat_result | None:
    try:
        return os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _refused(found: os.stat_result | None, path: str) -> None:
    if found is not None and stat.S_ISLNK(found.st_mode):
        raise UnsafePathError(path)


def refused_or(path: str, error: OSError, dir_fd: int | None = None, name: str | None = None) -> Exception:
    """``UnsafePathError`` when a symlink is in the way at ``path`` (``name`` in ``dir_fd``,
    when given), else ``error`` naming ``path``."""
    if error.errno in _MAYBE_SYMLINK:
        found = _lstat(path if name is None else name, dir_fd)
        if found is not None and stat.S_ISLNK(found.st_mode):
            return UnsafePathError(path)
    return OSError(error.errno, error.strerror, path)


def lock(fd: int, exclusive: bool = True, *, wait: bool = True) -> bool:
    """``flock`` the open file ``fd`` until it is closed; ``False`` when ``wait`` is false
    and another holds it. Windows has no ``flock``: always ``True`` there."""
    if fcntl is None:
        return True
    operation = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB)
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        return False
    return True


def open_nofollow(path: str, flags: int, mode: int = 0o600) -> int:
    """``os.open(path)`` without following a symlink at its last component (the directories
    before it are the root's own path): ``UnsafePathError`` for one, ``OSError`` naming
    ``path`` for other failures. Never blocks (``O_NONBLOCK``): a FIFO or a device there
    opens at once, for the caller to refuse once ``fstat`` says what it is."""
    if not AT:
        _refused(_lstat(path), path)
    try:
        return os.open(path, flags | _NOFOLLOW | _CLOEXEC | _NONBLOCK, mode)
    except OSError as error:
        raise refused_or(path, error) from None


class Dir:
    """A directory: names beneath it reached from its descriptor (by joined paths on Windows).

    A context manager that closes the descriptor (and so releases its ``flock``).
    """

    __slots__ = ("fd", "path")

    def __init__(self, path: str, fd: int | None = None) -> None:
        self.path = path
        if fd is None and AT:
            fd = os.open(path, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
        elif fd is None and not os.path.isdir(path):  # Windows: no descriptor to open
            code = errno.ENOTDIR if os.path.lexists(path) else errno.ENOENT
            raise OSError(code, os.strerror(code), path)
        self.fd = fd

    def __enter__(self) -> Dir:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def join(self, name: str) -> str:
        """``name``'s whole path, for messages (and the calls themselves on Windows)."""
        return os.path.join(self.path, name)

    def at(self, name: str) -> str:
        """What a call given ``dir_fd=self.fd`` takes for ``name``."""
        return name if self.fd is not None else self.join(name)

    def entry(self, name: str) -> os.stat_result | None:
        """``name``'s status, a symlink not followed; ``None`` when absent."""
        return _lstat(self.at(name), self.fd)

    def no_symlink(self, name: str) -> os.stat_result | None:
        """``name``'s status (``None``: absent); ``UnsafePathError`` for a symlink."""
        found = self.entry(name)
        _refused(found, self.join(name))
        return found

    def names_open(self, name: str, fd: int) -> bool:
        """Whether ``name`` (not followed) still leads to the open file ``fd``."""
        found, held = self.entry(name), os.fstat(fd)
        return found is not None and (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)

    def open_file(self, name: str, flags: int, mode: int = 0) -> int:
        """``name`` opened without following a symlink (on Windows: checked first)."""
        if self.fd is None:
            self.no_symlink(name)
        return os.open(self.at(name), flags | _NOFOLLOW | _CLOEXEC, mode, dir_fd=self.fd)

    def refused_or(self, name: str, error: OSError) -> Exception:
        """``UnsafePathError`` when a symlink is in the way of ``name``, else ``error``
        naming the path."""
        return refused_or(self.join(name), error, self.fd, self.at(name))

    def open_dir(self, name: str) -> Dir:
        """The subdirectory ``name``, opened without following a symlink."""
        try:
            if self.fd is None:
                self.no_symlink(name)
                return Dir(self.join(name))
            return Dir(self.join(name), self.open_file(name, os.O_RDONLY | _DIRECTORY))
        except OSError as error:
            raise self.refused_or(name, error) from None

    def names(self) -> list[str]:
        """The names in this directory."""
        return os.listdir(self.fd if self.fd is not None else self.path)

    def rename(self, source: str, target: str) -> None:
        """Rename ``source`` over ``target``, both in this directory."""
        os.replace(self.at(source), self.at(target), src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def remove(self, name: str) -> None:
        """Remove the file (or symlink: never what it points to) ``name``."""
        os.unlink(self.at(name), dir_fd=self.fd)

    def lock(self, exclusive: bool, *, wait: bool = True) -> bool:
        """``flock`` this directory until it is closed (see :func:`lock`)."""
        return self.fd is None or lock(self.fd, exclusive, wait=wait)

    def sync(self, make_durable: Callable[[int], object]) -> None:
        """Make the names created, renamed or removed here durable with ``make_durable``
        (nothing on Windows, where a directory cannot be synced: NTFS journals its metadata)."""
        if self.fd is not None:
            make_durable(self.fd)


def remove_residue(directory: Dir, temp: str, *, wait: bool) -> bool:
    """Remove the temp file ``temp`` in ``directory`` if it is residue of a killed writer;
    whether it was removed.

    Its writer holds ``flock`` on it from its creation until after its rename, and checks
    after locking that the name still leads to it: one nobody holds (``wait``: once its
    holder lets go) is residue. ``UnsafePathError`` for a symlink, ``FileExistsError`` for
    another entry that is not a regular file: both left alone. Windows has no ``flock``: a
    temp file there is residue (one process writes a root, and its writers of a name take
    turns under the id lock).
    """
    if not FLOCK:
        directory.no_symlink(temp)
        try:
            directory.remove(temp)
        except FileNotFoundError:
            return False
        return True
    try:
        fd = directory.open_file(temp, _EXISTING)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise directory.refused_or(temp, error) from None
    try:
        if not lock(fd, wait=wait) or not directory.names_open(temp, fd):
            return False  # a live writer's, or renamed or removed meanwhile
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileExistsError(errno.EEXIST, "not a temp file of this library", directory.join(temp))
        directory.remove(temp)  # under its lock: a writer that opens it next finds the name gone
        return True
    finally:
        os.close(fd)
