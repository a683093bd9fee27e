"""Pure-Python twin of the extension's ``stamps``: many files' stamps in one call."""

from __future__ import annotations

import os

__all__ = ["stamps"]

#: Where ``os.stat`` takes a directory's descriptor, names resolve against it, not the whole path.
_DIR_FD = os.stat in os.supports_dir_fd


def stamps(directory: str | os.PathLike[str], names: list[str]) -> list[tuple[int, int, int] | None]:
    """``(st_ino, st_size, st_mtime_ns)`` of each of ``names`` in ``directory`` (symlinks
    followed, as ``os.stat`` does), ``None`` for an absent one; ``OSError`` naming the path."""
    root = os.fspath(directory)
    if not _DIR_FD:
        return [_stamp(os.path.join(root, name), None) for name in names]
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        found = []
        for name in names:
            try:
                found.append(_stamp(name, fd))
            except OSError as error:  # named as the whole path, as a plain os.stat names it
                raise OSError(error.errno, error.strerror, os.path.join(root, name)) from None
        return found
    finally:
        os.close(fd)


def _stamp(path: str, dir_fd: int | None) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns
