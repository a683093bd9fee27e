"""The bundled session stores: on disk (``FileSessionStore``) and in memory (``InMemorySessionStore``)."""

from __future__ import annotations

from .file import FileSessionStore
from .memory import InMemorySessionStore

__all__ = ["FileSessionStore", "InMemorySessionStore"]
