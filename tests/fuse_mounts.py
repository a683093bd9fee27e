"""Whether a FUSE file system can be mounted here, for the tests that mount one
(``case_insensitive_fs.py``, ``test_store_power_loss.py``): they skip where it cannot, naming
what is missing, and fail under CI, whose script installs everything they need."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pytest

__all__ = ["require_fuse"]


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
