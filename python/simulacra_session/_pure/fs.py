"""Twin of ``rust/src/fs``: atomic replacement, the hard-link fork index, and file stamps.

Platform choices are the compiled twin's (see ``rust/src/fs/mod.rs``): no directory fsync
on Windows, hard links where the file system has them (``link_fork`` is ``False``
elsewhere), files made durable with ``F_FULLFSYNC`` on macOS.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets

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


def _fsync_dir(path: str) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        make_durable(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def atomic_write(path: str | os.PathLike[str], data: bytes, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, fsync dir)."""
    target = os.fspath(path)
    if not isinstance(data, bytes):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    directory, name = os.path.split(target)
    temp = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(temp, flags, 0o666)
    except OSError as error:
        raise OSError(error.errno, error.strerror, target) from None
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                make_durable(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException:
        _unlink_quietly(temp)
        raise
    if fsync:
        _fsync_dir(directory or ".")


def link_fork(
    root: str | os.PathLike[str], parent_id: str, child_id: str, fsync: bool = True, suffix: str = ".json"
) -> bool:
    """Hard-link ``{root}/{child_id}{suffix}`` as ``{root}/{parent_id}-forks/{child_id}{suffix}``."""
    for session_id in (parent_id, child_id):
        if not isinstance(session_id, str) or _SESSION_ID.fullmatch(session_id) is None:
            raise InvalidSessionIdError(session_id)
    if _SUFFIX.fullmatch(suffix) is None:
        raise ValueError(f"invalid file suffix {suffix!r}: expected a dot and lowercase letters")
    base = os.fspath(root)
    source = os.path.join(base, child_id + suffix)
    source_stat = os.stat(source)
    index = os.path.join(base, parent_id + "-forks")
    try:
        os.mkdir(index)
        created = True
    except FileExistsError:
        created = False
    entry = os.path.join(index, child_id + suffix)
    try:
        entry_stat = os.stat(entry)
    except FileNotFoundError:
        pass
    else:
        if (entry_stat.st_dev, entry_stat.st_ino) == (source_stat.st_dev, source_stat.st_ino):
            return True
    temp = os.path.join(index, f".{child_id}{suffix}.{secrets.token_hex(8)}.tmp")
    try:
        os.link(source, temp)
    except OSError as error:
        if error.errno in _NO_HARD_LINKS or getattr(error, "winerror", None) in _NO_HARD_LINKS_WINDOWS:
            if created:
                os.rmdir(index)
            return False
        raise
    try:
        os.replace(temp, entry)
    finally:
        _unlink_quietly(temp)
    if fsync:
        _fsync_dir(index)
        if created:
            _fsync_dir(base)
    return True


#: Where ``os.stat`` takes a directory's descriptor, names resolve against it, not the whole path.
_DIR_FD = os.stat in os.supports_dir_fd


def stamps(directory: str | os.PathLike[str], names: list[str]) -> list[tuple[int, int, int] | None]:
    """``(st_ino, st_size, st_mtime_ns)`` of each of ``names`` in ``directory`` (symlinks
    followed, as ``os.stat`` does), ``None`` for an absent one; ``OSError`` naming the path."""
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
        stat = os.stat(path, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns
