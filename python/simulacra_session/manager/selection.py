"""Which session ``SessionManager.load()`` takes when given no id: the most recent one."""

from __future__ import annotations

from ..protocols import SessionStore

__all__ = ["latest"]


async def latest(store: SessionStore) -> str | None:
    """The id of the most recently updated session in ``store``; ``None`` when it is empty."""
    sessions = await store.list(limit=1)
    return sessions[0].id if sessions else None
