"""Plain file operations the file store builds on: reading to the end, writing in full,
naming the file in an error, making a directory's entries durable, setting a file aside
(or a copy of it), refusing what is not a regular file."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from ..._backend import atomic_write, sync_files
from ..._beneath import open_nofollow
from ...errors import CorruptSessionError

__all__ = [
    "OPEN_RO",
    "OPEN_RW",
    "fsync_dir",
    "keep_copy",
    "naming",
    "pwrite_all",
    "read_from",
    "read_path",
    "regular",
    "set_aside",
    "sync_file",
]

OPEN_RW = os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
OPEN_RO = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_pread = getattr(os, "pread", None)
_log = logging.getLogger("simulacra_session")


def sync_file(fd: int, path: str) -> None:
    """Make ``fd``'s written data durable as the group commit does (``sync_files``: data
    only where the platform can, ``F_FULLFSYNC`` on macOS); an ``OSError`` names ``path``."""
    errno = sync_files([fd])[0]
    if errno:
        raise OSError(errno, os.strerror(errno), path)


def fsync_dir(path: str) -> None:
    """Make a directory's entries (creations, renames, unlinks) durable.

    Windows cannot open a directory to flush it; NTFS journals its metadata itself.
    """
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        sync_file(fd, path)
    finally:
        os.close(fd)


def _read_at(fd: int, size: int, offset: int) -> bytes:
    if _pread is not None:
        return bytes(_pread(fd, size, offset))
    os.lseek(fd, offset, os.SEEK_SET)  # no pread here (Windows): seek, then read
    return os.read(fd, size)


def read_from(fd: int, offset: int, size: int, *, to_end: bool = True) -> bytes:
    """``fd``'s bytes from ``offset``: to its end (``size``, its length when last stat'ed, is
    read in one call unless the file grew since), or at most ``size`` of them."""
    want = max(size - offset, 0) + 1 if to_end else size
    chunks = [_read_at(fd, want, offset)]
    while to_end and len(chunks[-1]) == want:  # it grew: read on to its end
        offset, want = offset + want, 1 << 20
        chunks.append(_read_at(fd, want, offset))
    return b"".join(chunks)  # a single chunk is returned as it is


def regular(fd: int, path: str) -> os.stat_result:
    """The status of the session file ``path`` open as ``fd``; ``CorruptSessionError`` naming
    it when it is not a regular file (a FIFO, a device, a directory), an unreadable file
    never read (its open did not block: ``open_nofollow``)."""
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode):
        raise CorruptSessionError(f"unreadable session file {path}: not a regular file", path=path)
    return found


def read_path(path: str) -> tuple[bytes, int, int]:
    """A file's bytes, inode and mtime (ns); ``UnsafePathError`` for a symlink, left alone,
    ``CorruptSessionError`` for what is not a regular file (``regular``)."""
    fd = open_nofollow(path, OPEN_RO)
    try:
        found = regular(fd, path)
        return read_from(fd, 0, found.st_size), found.st_ino, found.st_mtime_ns
    finally:
        os.close(fd)


@contextmanager
def naming(path: str) -> Iterator[None]:
    """Re-raise the ``OSError`` of a call that names no file (``pwrite``, ``fdatasync``) naming ``path``."""
    try:
        yield
    except OSError as error:
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror, path) from error


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (a short write is continued)."""
    view = memoryview(data)
    while view:
        if hasattr(os, "pwrite"):
            written = os.pwrite(fd, view, offset)
        else:
            os.lseek(fd, offset, os.SEEK_SET)
            written = os.write(fd, view)
        view, offset = view[written:], offset + written


def _aside_path(path: str) -> str:
    """A free name for a set-aside copy of ``path``: ``{path}.corrupt-<time>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    aside = f"{path}.corrupt-{stamp}"
    counter = 0
    while os.path.lexists(aside):
        counter += 1
        aside = f"{path}.corrupt-{stamp}-{counter}"
    return aside


def keep_copy(path: str, data: bytes, file_mode: int, fsync: bool) -> str:
    """Write ``data``, the bytes of session file ``path`` as read, beside it under a set-aside
    name, before the store cuts off or rewrites what in them did not verify; the copy's path."""
    aside = _aside_path(path)
    atomic_write(aside, data, fsync, file_mode)
    _log.warning("session file %s holds bytes that do not verify: a copy of it is kept as %s", path, aside)
    return aside


def set_aside(path: str) -> str:
    """Rename an unreadable session file out of the way, keeping it for inspection; its new path."""
    aside = _aside_path(path)
    os.rename(path, aside)
    _log.warning("unreadable session file %s moved to %s; saving a new session", path, aside)
    return aside
