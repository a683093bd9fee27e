"""Pure-Python twin of the compiled ``read_cached``: a whole file read from memory alone.

The path is resolved from the dentry cache only (``openat2`` with ``RESOLVE_CACHED``,
Linux 5.12+, called through ctypes as the os module has no ``openat2``) and the bytes are
read from the page cache only (``preadv`` with ``RWF_NOWAIT``). Elsewhere nothing is
served from memory: every read is left to the blocking path.
"""

from __future__ import annotations

import errno
import os
import platform
import stat
import sys
from collections.abc import Callable

__all__ = ["read_cached"]

_SYS_OPENAT2 = 437  # on these machines; mips, alpha and ia64 number their syscalls apart
_MACHINES = frozenset({"x86_64", "aarch64", "arm64", "riscv64", "ppc64", "ppc64le", "s390x", "loongarch64"})
_RESOLVE_CACHED = 0x20
_AT_FDCWD = -100


def _openat2() -> Callable[[str], int | None] | None:
    """``openat2(AT_FDCWD, path, {O_RDONLY | O_CLOEXEC, RESOLVE_CACHED})`` through ctypes:
    a descriptor, ``None`` when the dentry cache cannot resolve the path (or the kernel has
    no ``openat2``), ``FileNotFoundError`` when it knows the path is absent. ``None`` where
    there is no such call (not 64-bit Linux on a machine above, or no ctypes)."""
    linux = sys.platform == "linux" and sys.maxsize > 2**32 and hasattr(os, "RWF_NOWAIT")
    if not linux or platform.machine() not in _MACHINES:
        return None
    try:
        import ctypes
    except ImportError:
        return None

    class OpenHow(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]

    syscall = ctypes.CDLL(None, use_errno=True).syscall
    how = OpenHow(os.O_RDONLY | os.O_CLOEXEC, 0, _RESOLVE_CACHED)
    args = (ctypes.c_long(_SYS_OPENAT2), ctypes.c_long(_AT_FDCWD))
    size = ctypes.c_size_t(ctypes.sizeof(how))

    def open_cached(path: str) -> int | None:
        name = os.fsencode(path)
        if b"\0" in name:
            return None  # the blocking read refuses it
        fd = int(syscall(*args, ctypes.c_char_p(name), ctypes.byref(how), size))
        if fd >= 0:
            return fd
        if ctypes.get_errno() == errno.ENOENT:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return None  # EAGAIN, or a kernel without openat2 or RESOLVE_CACHED

    return open_cached


_open_cached = _openat2()


def read_cached(path: str | os.PathLike[str]) -> tuple[bytes, int, int] | None:
    """The file's bytes, inode and mtime (ns) if all of it is in memory; ``None`` if not."""
    name = os.fspath(path)
    fd = None if _open_cached is None else _open_cached(name)
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
