"""Whether a FUSE file system can be mounted here, for the tests that mount one
(``case_insensitive_fs.py``, ``test_store_power_loss.py``): they skip where it cannot, naming
what is missing, and fail under CI, whose script installs everything they need. And where
their files may lie in memory (``in_memory``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

__all__ = ["in_memory", "require_fuse"]

#: Memory, as a directory, used where it has this much room (a few workers' disk images).
IN_MEMORY, IN_MEMORY_ROOM = Path("/dev/shm"), 1024 * 1024 * 1024


def require_fuse(what: str, *tools: str, missing: Callable[[], str | None] = lambda: None) -> None:
    """Skip (fail under CI) unless this process can mount ``what`` through FUSE: it needs root,
    ``/dev/fuse``, the programs ``tools`` and whatever ``missing`` finds absent (its reason)."""
    why = None
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        why = "mounting a FUSE file system needs root"
    elif not os.path.exists("/dev/fuse"):
        why = "no /dev/fuse"
    elif absent := [tool for tool in tools if shutil.which(tool) is None]:
        why = f"missing {', '.join(absent)} (scripts/fs-tools.sh installs them)"
    else:
        why = missing()
    if why is not None and os.environ.get("CI") == "true":
        pytest.fail(f"cannot mount {what} under CI: {why}")
    if why is not None:
        pytest.skip(why)


def in_memory() -> str | None:
    """``/dev/shm`` if it is a directory we may write with room for a few disk images, else
    ``None`` (for ``tempfile``: its temporary directory; a container's ``/dev/shm`` may be
    64 MiB). There, what a test writes and syncs through a FUSE file system (or the file
    system writes out) reaches memory, not a disk: no disk flushes to wait for, nor the
    disk file system's journal to run."""
    try:
        room = os.statvfs(IN_MEMORY)
    except OSError:
        return None
    enough = room.f_bavail * room.f_frsize >= IN_MEMORY_ROOM
    return str(IN_MEMORY) if enough and os.access(IN_MEMORY, os.W_OK | os.X_OK) else None
