"""The bundled session stores: on disk, in memory, in SQL databases and over an application's adapter.

``SqlSessionStore`` lives in ``simulacra_session.stores.sql`` and needs the ``sql`` extra; it
is imported on first access, so the package itself never requires SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .adapter import AdapterSessionStore, SessionAdapter, SessionRow
from .file import FileSessionStore
from .memory import InMemorySessionStore

if TYPE_CHECKING:
    from .sql import SqlSessionStore as SqlSessionStore

__all__ = [
    "AdapterSessionStore",
    "FileSessionStore",
    "InMemorySessionStore",
    "SessionAdapter",
    "SessionRow",
]


def __getattr__(name: str) -> Any:
    if name == "SqlSessionStore":
        from .sql import SqlSessionStore

        return SqlSessionStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
