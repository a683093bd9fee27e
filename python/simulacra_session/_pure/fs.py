"""Twin of ``rust/src/fs``: atomic replacement, the hard-link fork index, and file stamps.

Platform choices are the compiled twin's (see ``rust/src/fs/mod.rs``): no directory fsync
on Windows, hard links where the file system has them (``link_fork`` is ``False``
elsewhere), files made durable with ``F_FULLFSYNC`` on macOS. Names beneath a directory
are reached from its descriptor without following a symlink (``_beneath``, as
``rust/src/fs/beneath.rs``); one in the way is refused with ``UnsafePathError`` and left
alone. Writers hold ``flock`` on their temp file (linkers a shared one on the index
directory) while it exists, so residue can be told from work in progress (not on
Windows, which has no ``flock``). Permission bits are set exactly (``fchmod``), whatever
the umask, except on Windows.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets

from .._beneath import AT, Dir, lock, remove_residue
from ..errors import InvalidSessionIdError
from .sync import make_durable

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
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL


def _check_bool(value: object) -> None:
    """``TypeError`` unless ``value`` is a ``bool``, as the compiled functions' ``fsync``."""
    if not isinstance(value, bool):
        raise TypeError(f"'{type(value).__name__}' object is not an instance of 'bool'")


def _check_mode(mode: int) -> None:
    if not isinstance(mode, int) or isinstance(mode, bool):
        raise TypeError(f"'{type(mode).__name__}' object cannot be interpreted as an integer")
    if not 0 <= mode <= 0xFFFF_FFFF:
        raise OverflowError("out of range integral type conversion attempted")
    if mode > 0o777:
        raise ValueError(f"invalid mode {mode:#o}: expected permission bits, 0o0 to 0o777")


def _create_temp(directory: Dir, temp: str, mode: int) -> int:
    """Create ``temp`` and hold ``flock`` on it: residue there is removed first, a live
    writer's waited for (see ``rust/src/fs/atomic.rs``). A sweep that took the lock between
    the creation and the lock removed it: the writer starts over."""
    while True:
        try:
            fd = directory.open_file(temp, _NEW, mode)
        except FileExistsError:
            remove_residue(directory, temp, wait=True)
            continue
        except OSError as error:
            raise directory.refused_or(temp, error) from None
        try:
            lock(fd)
            if directory.names_open(temp, fd):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, fsync: bool = True, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, fsync dir)."""
    target = os.fspath(path)
    if not isinstance(data, bytes):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    _check_bool(fsync)
    _check_mode(mode)
    _names_a_file(target)
    parent, name = os.path.split(target)
    try:
        directory = Dir(parent or ".")
    except OSError as error:
        raise OSError(error.errno, error.strerror, target) from None
    with directory:
        _write_in(directory, name, target, data, fsync, mode)


#: The errors ``open`` gives most paths that name no file: an empty one, one that names a
#: directory (``ERROR_PATH_NOT_FOUND``, ``ERROR_ACCESS_DENIED`` on Windows).
_NO_FILE = (3, 5) if os.name == "nt" else (errno.ENOENT, errno.EISDIR)


def _names_a_file(target: str) -> None:
    """Refuse a ``target`` that names no file (empty, or ending in a separator, ``.`` or
    ``..``) with the compiled twin's ``OSError``, before ``os.path.split`` reads it as another."""
    if target and os.path.basename(target) not in ("", ".", ".."):
        return
    code = _NO_FILE[0] if not target else _NO_FILE[1]
    if os.name == "nt":  # Python derives errno from the Windows code, as for the compiled twin's
        raise OSError(0, os.strerror(errno.ENOENT if not target else errno.EACCES), target, code)
    raise OSError(code, os.strerror(code), target)


def _write_in(directory: Dir, name: str, target: str, data: bytes, fsync: bool, mode: int) -> None:
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
        directory.sync(make_durable)


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
    _check_bool(fsync)
    _check_mode(dir_mode)
    with Dir(os.fspath(root)) as root_dir:
        return _link_in(root_dir, parent_id, child_id + suffix, fsync, dir_mode)


def _index_dir(root: Dir, name: str, dir_mode: int) -> tuple[Dir, bool]:
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


def _link_in(root: Dir, parent_id: str, name: str, fsync: bool, dir_mode: int) -> bool:
    source = root.no_symlink(name)
    if source is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), root.join(name))
    index, created = _index_dir(root, parent_id + "-forks", dir_mode)
    with index:
        index.lock(exclusive=False)  # a sweep of temp links takes it exclusively
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
                follow_symlinks=not AT,
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
            index.sync(make_durable)
            if created:
                root.sync(make_durable)
        return True


#: Where ``os.stat`` takes a directory's descriptor, names resolve against it, not the whole path.
_DIR_FD = os.stat in os.supports_dir_fd


def stamps(directory: str | os.PathLike[str], names: list[str]) -> list[tuple[int, int, int] | None]:
    """``(st_ino, st_size, st_mtime_ns)`` of each of ``names`` in ``directory`` (of a symlink
    itself, as ``os.lstat``), ``None`` for an absent one; ``OSError`` naming the path."""
    root = os.fspath(directory)
    if isinstance(names, str):  # a list of names, never one name's characters
        raise TypeError("Can't extract `str` to `Vec`")
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
