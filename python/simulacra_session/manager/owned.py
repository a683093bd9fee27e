"""The sessions a SessionManager writes itself: its current session and those of its child
managers. ``rename`` and ``delete`` change them through the manager that writes them, so its
writer's revision stays the store's and no later save of it conflicts with the manager's own
write (``ConflictError`` is for another writer's saves); and labels are checked here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InvalidMetadataError
from ..history import inherits, list_forks
from .snapshot import Inheritance

if TYPE_CHECKING:
    from . import SessionManager

__all__ = ["check_label", "detach_forks", "owner_of"]


def check_label(session_id: str, label: Any) -> None:
    """``InvalidMetadataError`` naming the session unless ``label`` is a non-empty string: what
    ``rename`` and ``save`` take (an empty label would leave the session unnamed, yet labelled)."""
    if not isinstance(label, str) or not label:
        raise InvalidMetadataError(
            f"invalid metadata for session {session_id}: label={label!r}: a label is a non-empty string"
        )


def owner_of(manager: SessionManager, session_id: str) -> SessionManager | None:
    """The manager whose current session ``session_id`` is: ``manager`` or one of its child
    managers (at any depth) not disposed; ``None`` when none is."""
    if manager._session_id == session_id:
        return manager
    for child in manager._children:
        found = None if child._disposed else owner_of(child, session_id)
        if found is not None:
            return found
    return None


async def detach_forks(manager: SessionManager, parent_id: str) -> None:
    """Make each attached fork of ``parent_id`` that ``manager`` or a child manager writes hold
    the history it inherits, as ``materialize_forks`` does to the others before the parent is
    deleted, but through that manager's writer: the whole history, detached, saved."""
    for metadata in await list_forks(manager._store, parent_id):
        owner = owner_of(manager, metadata.id) if inherits(metadata) else None
        if owner is None:
            continue
        inherited, owner._snapshots.inherited = owner._snapshots.inherited, Inheritance()
        try:
            await owner._write({"detached": True}, full=True)
        except Exception:  # not written: it is still the attached fork it was
            owner._snapshots.inherited = inherited
            raise
