"""The one place that chooses the compiled hot path or its pure-Python twin.

``SIMULACRA_SESSION_PURE=1`` forces the twin; otherwise the extension is used when it
imports, and the twin silently takes over when it does not (a source checkout).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

__all__ = [
    "BACKEND",
    "FileSyncer",
    "Mailbox",
    "append_journal",
    "atomic_write",
    "copy_json",
    "derive_slug",
    "dumps",
    "link_fork",
    "loads",
    "loads_lines",
]

_FORCE_PURE = os.environ.get("SIMULACRA_SESSION_PURE", "") not in ("", "0")

BACKEND: Literal["native", "pure"]

if TYPE_CHECKING or _FORCE_PURE:
    from ._fallback import (
        FileSyncer,
        Mailbox,
        append_journal,
        atomic_write,
        copy_json,
        derive_slug,
        dumps,
        link_fork,
        loads,
        loads_lines,
    )

    BACKEND = "pure"
else:
    try:
        from ._native import (
            FileSyncer,
            Mailbox,
            append_journal,
            atomic_write,
            copy_json,
            derive_slug,
            dumps,
            link_fork,
            loads,
            loads_lines,
        )
    except ImportError:
        from ._fallback import (
            FileSyncer,
            Mailbox,
            append_journal,
            atomic_write,
            copy_json,
            derive_slug,
            dumps,
            link_fork,
            loads,
            loads_lines,
        )

        BACKEND = "pure"
    else:
        BACKEND = "native"
