"""The child managers of a SessionManager: one per child conversation its conversation
spawns, bound to a new detached fork of the parent's session and saved at once; their
pending saves count in the parent's ``flush``, their errors are reported at the parent too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..ids import new_session_id
from ..protocols import Conversation

if TYPE_CHECKING:
    from . import SessionManager
    from .writer import SessionWriter

__all__ = ["busy_writers", "prune_children", "spawn_child"]


def spawn_child(manager: SessionManager, child: Conversation) -> None:
    """Give ``child`` (a conversation ``manager``'s conversation spawned) a child manager, with
    ``manager``'s settings, bound to a new detached fork of ``manager``'s current session."""
    parent_id = manager._session_id
    assert parent_id is not None
    spawned = type(manager)(
        manager._store,
        child,
        auto_save=manager._auto_save,
        auto_slug=manager._auto_slug and not child.is_checkpoint,
        strict_forks=manager._strict_forks,
    )
    spawned._parent = manager
    prune_children(manager)
    manager._children.append(spawned)
    _start_child(spawned, parent_id, manager._conversation.checkpoint_state)


def _start_child(manager: SessionManager, parent_id: str, checkpoint_state: Any) -> None:
    """Bind ``manager`` (a child manager) to a new detached fork of ``parent_id``, saved at once."""
    manager._switch_to(new_session_id(), inherited=0, has_label=False)
    given: dict[str, Any] = {"parent_id": parent_id, "detached": True}
    if checkpoint_state is not None and manager._conversation.checkpoint_state is None:
        manager._conversation.checkpoint_state = checkpoint_state
    try:
        manager._writers.submit(manager._request(given, background=True))
    except Exception as error:  # a sync write with no loop: report, never raise into the engine
        manager._emit_error(error, "fork", parent_id=parent_id)


def busy_writers(manager: SessionManager) -> list[SessionWriter]:
    """The writers of ``manager`` and its children with a write in flight or queued."""
    writers = manager._writers.busy()
    if manager._children:
        for child in manager._children:
            writers.extend(busy_writers(child))
        prune_children(manager)
    return writers


def prune_children(manager: SessionManager) -> None:
    """Forget the disposed children with nothing left to write (nor children that have)."""
    if manager._children:
        manager._children = [
            child
            for child in manager._children
            if not (child._disposed and not child._writers and not child._children)
        ]
