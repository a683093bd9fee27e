"""The one place that chooses the compiled hot path or its pure-Python twin.

``SIMULACRA_SESSION_PURE=1`` forces the twin; otherwise the extension is used when it
imports, and the twin silently takes over when it does not (a source checkout).
"""

from __future__ import annotations

import os
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Literal

from .errors import InvalidSessionIdError, SerializationError, UnsafePathError

__all__ = [
    "BACKEND",
    "CommitChannel",
    "Committer",
    "atomic_write",
    "commit_checksum",
    "copy_json",
    "derive_slug",
    "dumps",
    "link_fork",
    "loads",
    "loads_lines",
    "record_checksum",
    "stamps",
    "sync_files",
    "verify_records",
]

_FORCE_PURE = os.environ.get("SIMULACRA_SESSION_PURE", "") not in ("", "0")

BACKEND: Literal["native", "pure"]

if TYPE_CHECKING:  # the twins keep one contract (the extension's stub, checked by stubtest)
    from ._pure import (
        CommitChannel,
        Committer,
        atomic_write,
        commit_checksum,
        copy_json,
        derive_slug,
        dumps,
        link_fork,
        loads,
        loads_lines,
        record_checksum,
        stamps,
        sync_files,
        verify_records,
    )
else:

    def _native() -> ModuleType | None:
        """The compiled extension, handed the exception classes it raises (it imports no
        module of the package); ``None`` where it is not built. Bound even when the twin
        is forced, for code that imports ``_native`` itself (the tests compare the two)."""
        try:
            native = import_module("._native", __package__)
        except ImportError:
            return None
        native._bind_errors(SerializationError, InvalidSessionIdError, UnsafePathError)
        return native

    def _twin() -> tuple[ModuleType, str]:
        """The module to take the hot path from, and its name for ``BACKEND``."""
        native = _native()
        if native is not None and not _FORCE_PURE:
            return native, "native"
        return import_module("._pure", __package__), "pure"

    _module, BACKEND = _twin()
    globals().update({name: getattr(_module, name) for name in __all__ if name != "BACKEND"})
