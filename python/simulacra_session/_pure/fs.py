"""Twin of ``rust/src/fs``: atomic replacement, the hard-link fork index, and file stamps.

Platform choices are the compiled twin's (see ``rust/src/fs/mod.rs``): no directory fsync
on Windows, hard links where the file system has them (``link_fork`` is ``False``
elsewhere), files made durable with ``F_FULLFSYNC`` on macOS. Names beneath a directory
are reached from its descriptor (``dir_fd=``) without following a symlink (``O_NOFOLLOW``,
``follow_symlinks=False``); one in the way is refused with ``UnsafePathError`` and left
alone. Windows has no ``dir_fd``: there each joined path is checked with ``os.lstat``
first. Writers hold ``flock`` on their temp file (linkers a shared one on the index
directory) while it exists, so residue can be told from work in progress; Windows has no
``flock``. Permission bits are set exactly (``fchmod``), whatever the umask, except on
Windows.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat

from ..errors import InvalidSessionIdError, UnsafePathError
from .sync import make_durable

try:
    import fcntl
except ImportError:  # Windows: no flock (one process writes a root there)
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_write", "link_fork", "stamps"]

_SESSION_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_SUFFIX = re.compile(r"\.[a-z]+")

_NO_HARD_LINKS = frozenset(
    code
    for code in (
        errno.EPERM,
        getattr(errno, "EOPNOTSUPP", None),
        getattr(errno, "ENOTSUP", None),
        errno.ENOSYS,
        errno.EXDEV,
        errno.EMLINK,
    )
    if code is not None
)
#: Windows codes of the same: ERROR_INVALID_FUNCTION and ERROR_NOT_SUPPORTED (FAT, exFAT),
#: ERROR_NOT_SAME_DEVICE, ERROR_TOO_MANY_LINKS (Python maps them to other errnos).
_NO_HARD_LINKS_WINDOWS = frozenset((1, 17, 50, 1142))
_AT = os.open in os.supports_dir_fd  # the *at calls (not on Windows)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL
_EXISTING = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
#: What an open fails with when a symlink is in the way (``ENOTDIR`` with ``O_DIRECTORY``,
#: ``EMLINK`` on FreeBSD, ``EEXIST`` from ``mkdir``).
_MAYBE_SYMLINK = frozenset((errno.ELOOP, errno.ENOTDIR, errno.EMLINK, errno.EEXIST))


class _Dir:
    """A directory: names beneath it reached from its descriptor (by joined paths on Windows)."""

    __slots__ = ("fd", "path")

    def __init__(self, path: str, fd: int | None = None) -> None:
        self.path = path
        if fd is None and _AT:
            fd = os.open(path, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
        elif fd is None and not os.path.isdir(path):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        self.fd = fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)

    def join(self, name: str) -> str:
        return os.path.join(self.path, name)

    def at(self, name: str) -> str:
        return name if self.fd is not None else self.join(name)

    def entry(self, name: str) -> os.stat_result | None:
        """``name``'s status, a symlink not followed; ``None`` when absent."""
        try:
            return os.stat(self.at(name), dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def open_file(self, name: str, flags: int, mode: int = 0) -> int:
        """``name`` opened without following a symlink (on Windows: checked first)."""
        if self.fd is None:
            found = self.entry(name)
            if found is not None and stat.S_ISLNK(found.st_mode):
                raise UnsafePathError(self.join(name))
        return os.open(self.at(name), flags | _NOFOLLOW | _CLOEXEC, mode, dir_fd=self.fd)

    def refused_or(self, name: str, error: OSError) -> Exception:
        """``UnsafePathError`` when a symlink is in the way of ``name``, else ``error``
        naming the path."""
        if error.errno in _MAYBE_SYMLINK:
            found = self.entry(name)
            if found is not None and stat.S_ISLNK(found.st_mode):
                return UnsafePathError(self.join(name))
        return OSError(error.errno, error.strerror, self.join(name))

    def no_symlink(self, name: str) -> os.stat_result | None:
        """``name``'s status (``None``: absent); ``UnsafePathError`` for a symlink."""
        found = self.entry(name)
        if found is not None and stat.S_ISLNK(found.st_mode):
            raise UnsafePathError(self.join(name))
        return found

    def open_dir(self, name: str) -> _Dir:
        """The subdirectory ``name``, opened without following a symlink."""
        try:
            if self.fd is None:
                self.no_symlink(name)
                return _Dir(self.join(name))
            return _Dir(self.join(name), self.open_file(name, os.O_RDONLY | _DIRECTORY))
        except OSError as error:
            raise self.refused_or(name, error) from None

    def rename(self, source: str, target: str) -> None:
        os.replace(self.at(source), self.at(target), src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def remove(self, name: str) -> None:
        os.unlink(self.at(name), dir_fd=self.fd)

    def sync(self) -> None:
        if self.fd is not None:  # a directory cannot be synced on Windows
            make_durable(self.fd)


def _check_mode(mode: int) -> None:
    if not isinstance(mode, int) or isinstance(mode, bool):
        raise TypeError(f"'{type(mode).__name__}' object cannot be interpreted as an integer")
    if not 0 <= mode <= 0xFFFF_FFFF:
        raise OverflowError("out of range integral type conversion attempted")
    if mode > 0o777:
        raise ValueError(f"invalid mode {mode:#o}: expected permission bits, 0o0 to 0o777")


def _create_temp(directory: _Dir, temp: str, mode: int) -> int:
    """Create ``temp`` and hold ``flock`` on it; residue there (nobody holds it) is removed,
    a live writer's waited for (see ``rust/src/fs/atomic.rs``)."""
    while True:
        try:
            fd, created = directory.open_file(temp, _NEW, mode), True
        except FileExistsError:
            if fcntl is None:  # Windows: residue (one process writes a root there)
                directory.no_symlink(temp)
                directory.remove(temp)
                continue
            try:
                fd, created = directory.open_file(temp, _EXISTING), False
            except FileNotFoundError:
                continue
            except OSError as error:
                raise directory.refused_or(temp, error) from None
        except OSError as error:
            raise directory.refused_or(temp, error) from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            named = directory.entry(temp)
            held = os.fstat(fd)
            if named is not None and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
                if created:
                    return fd
                if not stat.S_ISREG(named.st_mode):
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), directory.join(temp))
                directory.remove(temp)  # residue: nobody holds it
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, fsync: bool = True, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, fsync dir)."""
    target = os.fspath(path)
    if not isinstance(data, bytes):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    _check_mode(mode)
    parent, name = os.path.split(target)
    try:
        directory = _Dir(parent or ".")
    except OSError as error:
        raise OSError(error.errno, error.strerror, target) from None
    try:
        _write_in(directory, name, target, data, fsync, mode)
    finally:
        directory.close()


def _write_in(directory: _Dir, name: str, target: str, data: bytes, fsync: bool, mode: int) -> None:
    temp = f".{name}.tmp"
    try:
        directory.no_symlink(name)
        fd = _create_temp(directory, temp, mode)
    except OSError as error:
        raise OSError(error.errno, error.strerror, target) from None
    try:
        if os.name != "nt":
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            make_durable(fd)
        if os.name == "nt":  # a file open without FILE_SHARE_DELETE cannot be renamed there
            os.close(fd)
            fd = -1
        directory.rename(temp, name)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            directory.remove(temp)  # still locked by this writer: nobody else's
        if isinstance(error, OSError):
            raise OSError(error.errno, error.strerror, target) from None
        raise
    finally:
        if fd >= 0:
            os.close(fd)  # releases the lock, once the temp name is gone
    if fsync:
        directory.sync()


def link_fork(
    root: str | os.PathLike[str],
    parent_id: str,
    child_id: str,
    fsync: bool = True,
    suffix: str = ".json",
    dir_mode: int = 0o700,
) -> bool:
    """Hard-link ``{root}/{child_id}{suffix}`` as ``{root}/{parent_id}-forks/{child_id}{suffix}``."""
    for session_id in (parent_id, child_id):
        if not isinstance(session_id, str) or _SESSION_ID.fullmatch(session_id) is None:
            raise InvalidSessionIdError(session_id)
    if _SUFFIX.fullmatch(suffix) is None:
        raise ValueError(f"invalid file suffix {suffix!r}: expected a dot and lowercase letters")
    _check_mode(dir_mode)
    root_dir = _Dir(os.fspath(root))
    try:
        return _link_in(root_dir, parent_id, child_id + suffix, fsync, dir_mode)
    finally:
        root_dir.close()


def _index_dir(root: _Dir, name: str, dir_mode: int) -> tuple[_Dir, bool]:
    try:
        os.mkdir(root.at(name), dir_mode, dir_fd=root.fd)
        created = True
    except FileExistsError:
        created = False
    except OSError as error:
        raise root.refused_or(name, error) from None
    index = root.open_dir(name)
    if created and index.fd is not None:
        os.fchmod(index.fd, dir_mode)
    return index, created


def _link_in(root: _Dir, parent_id: str, name: str, fsync: bool, dir_mode: int) -> bool:
    source = root.no_symlink(name)
    if source is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), root.join(name))
    index, created = _index_dir(root, parent_id + "-forks", dir_mode)
    try:
        if index.fd is not None and fcntl is not None:
            fcntl.flock(index.fd, fcntl.LOCK_SH)  # a sweep of temp links takes it exclusively
        entry = index.no_symlink(name)
        if entry is not None and (entry.st_dev, entry.st_ino) == (source.st_dev, source.st_ino):
            return True
        temp = f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            # follow_symlinks=False: linkat without AT_SYMLINK_FOLLOW (Windows only takes True)
            os.link(
                root.at(name),
                index.at(temp),
                src_dir_fd=root.fd,
                dst_dir_fd=index.fd,
                follow_symlinks=not _AT,
            )
        except OSError as error:
            if error.errno in _NO_HARD_LINKS or getattr(error, "winerror", None) in _NO_HARD_LINKS_WINDOWS:
                if created:
                    os.rmdir(root.at(parent_id + "-forks"), dir_fd=root.fd)
                return False
            raise OSError(error.errno, error.strerror, root.join(name)) from None
        try:
            index.rename(temp, name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                index.remove(temp)  # rename is a no-op when both names share the inode
        if fsync:
            index.sync()
            if created:
                root.sync()
        return True
    finally:
        index.close()


#: Where ``os.stat`` takes a directory's descriptor, names resolve against it, not the whole path.
_DIR_FD = os.stat in os.supports_dir_fd


def stamps(directory: str | os.PathLike[str], names: list[str]) -> list[tuple[int, int, int] | None]:
    """``(st_ino, st_size, st_mtime_ns)`` of each of ``names`` in ``directory`` (of a symlink
    itself, as ``os.lstat``), ``None`` for an absent one; ``OSError`` naming the path."""
    root = os.fspath(directory)
    if not _DIR_FD:
        for path in (root, *names):
            _no_nul(path)
        return [_stamp(os.path.join(root, name), None) for name in names]
    _no_nul(root)
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        found = []
        for name in names:
            _no_nul(name)
            try:
                found.append(_stamp(name, fd))
            except OSError as error:  # named as the whole path, as a plain os.stat names it
                raise OSError(error.errno, error.strerror, os.path.join(root, name)) from None
        return found
    finally:
        os.close(fd)


def _no_nul(path: str) -> None:
    """The extension's ``ValueError`` for a NUL in a path (Python 3.13's ``os`` words it otherwise)."""
    if "\0" in path:
        raise ValueError("embedded null byte")


def _stamp(path: str, dir_fd: int | None) -> tuple[int, int, int] | None:
    try:
        found = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns
