"""Deleting a session through a SessionManager: its attached forks keep their history."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..history import materialize_forks
from .owned import detach_forks

if TYPE_CHECKING:
    from . import SessionManager

__all__ = ["delete_session"]


async def delete_session(manager: SessionManager, session_id: str) -> bool:
    """Remove ``session_id`` from ``manager``'s store once each attached fork holds what it
    inherits (written detached): those ``manager`` or a child manager writes through their
    writers, the others directly. ``True`` when the session existed."""
    await detach_forks(manager, session_id)  # the forks this manager writes, through their writers
    await materialize_forks(manager._store, session_id)  # the others
    return await manager._store.delete(session_id)
