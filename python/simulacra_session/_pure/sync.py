"""Twin of ``rust/src/sync``: make the data written through open descriptors durable.

One call per descriptor, in order (``make_durable``): ``fcntl(F_FULLFSYNC)`` on macOS
(``fsync`` where the file system refuses it, as SQLite's ``fullfsync``), else
``os.fdatasync`` where Python has it, else ``os.fsync`` (``_commit`` on Windows). The
compiled twin also syncs a large batch with one ``syncfs`` per file system on Linux; the
outcome per descriptor is the same.
"""

from __future__ import annotations

import errno
import operator
import os
import sys

__all__ = ["make_durable", "sync_files"]

_REFUSED = frozenset((errno.ENOTSUP, errno.EINVAL, errno.ENOTTY))  # F_FULLFSYNC not supported


def make_durable(fd: int, *, data_only: bool = False) -> None:
    """Make what was written through ``fd`` durable, or raise ``OSError``. ``data_only``:
    the file's data and size, not its other metadata (``fdatasync``), where that differs."""
    if sys.platform == "darwin":
        import fcntl

        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
        except OSError as error:
            if error.errno not in _REFUSED:
                raise
            os.fsync(fd)
    elif data_only and hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


def sync_files(fds: list[int]) -> list[int]:
    """Make each descriptor's written data durable; the errno of each (0: durable). The
    descriptors stay open."""
    errnos = []
    for fd in fds:
        try:
            make_durable(operator.index(fd), data_only=True)
        except OSError as error:
            errnos.append(error.errno or errno.EIO)
        except ValueError:  # a negative number: what the system call would say of it
            errnos.append(errno.EBADF)
        else:
            errnos.append(0)
    return errnos
