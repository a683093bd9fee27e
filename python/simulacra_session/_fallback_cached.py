"""Pure-Python twin of the compiled ``read_cached``: a whole file read from memory alone.

The path is resolved from the dentry cache only (``openat2`` with ``RESOLVE_CACHED``,
Linux 5.12+, called through ctypes as the os module has no ``openat2``) and the bytes are
read from the page cache only (``preadv`` with ``RWF_NOWAIT``). Elsewhere nothing is
served from memory: every read is left to the blocking path.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import sys

__all__ = ["read_cached"]

_SYS_OPENAT2 = 437  # the same number on every 64-bit Linux architecture this targets
_RESOLVE_CACHED = 0x20
_AT_FDCWD = -100


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_SUPPORTED = sys.platform == "linux" and sys.maxsize > 2**32 and hasattr(os, "RWF_NOWAIT")
_syscall = ctypes.CDLL(None, use_errno=True).syscall if _SUPPORTED else None


def _open_cached(path: str) -> int | None:
    """A read-only descriptor of ``path`` if the dentry cache resolves it; ``None`` if not."""
    if _syscall is None:
        return None
    how = _OpenHow(os.O_RDONLY | os.O_CLOEXEC, 0, _RESOLVE_CACHED)
    name = os.fsencode(path)
    if b"\0" in name:
        return None  # the blocking read refuses it
    fd = _syscall(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_long(_AT_FDCWD),
        ctypes.c_char_p(name),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd >= 0:
        return int(fd)
    if ctypes.get_errno() == errno.ENOENT:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    return None  # EAGAIN, or a kernel without openat2 or RESOLVE_CACHED


def read_cached(path: str | os.PathLike[str]) -> tuple[bytes, int, int] | None:
    """The file's bytes, inode and mtime (ns) if all of it is in memory; ``None`` if not."""
    name = os.fspath(path)
    fd = _open_cached(name)
    if fd is None:
        return None
    try:
        try:
            info = os.fstat(fd)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        buffer = bytearray(info.st_size)
        view, done = memoryview(buffer), 0
        while done < len(buffer):
            try:
                read = os.preadv(fd, [view[done:]], done, os.RWF_NOWAIT)
            except OSError:
                return None
            if read == 0:
                return None  # the file ended early
            done += read
        return bytes(buffer), info.st_ino, info.st_mtime_ns
    finally:
        os.close(fd)
