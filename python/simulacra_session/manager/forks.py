"""Forks for the SessionManager: the fork a ``fork()`` makes, from the history the manager
holds when it can (``saved_history``). A session's forks and the history written into
attached forks before their parent is deleted are in ``simulacra_session.history``
(``list_forks``, ``materialize_forks``, ``save_from``), which ``truncate`` shares.

An attached fork stores only the messages after the ones it inherits from its parent's
resolved history (see ``simulacra_session.history``); a detached one stores all of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import SessionNotFoundError
from ..history import resolve_history
from ..messages import JsonObject, Message
from ..protocols import SessionStore
from .selection import check_own

if TYPE_CHECKING:
    from . import SessionManager

__all__ = ["Fork", "plan_fork", "saved_history"]


@dataclass(slots=True)
class Fork:
    """A fork to save: the messages it stores itself, the history it inherits (loaded into
    the conversation when it is attached) and its metadata."""

    owned: list[JsonObject]
    inherited: list[JsonObject]
    metadata: dict[str, Any] = field(default_factory=dict)


def saved_history(manager: SessionManager, session_id: str) -> list[Message] | None:
    """The resolved history of ``session_id`` without reading the fork chain back.

    Known for the manager's current session when its last write stored exactly the
    conversation's own messages: its history is then the conversation. Forking a deep chain
    thus costs one load, not one per ancestor.
    """
    if session_id != manager._session_id:
        return None
    snapshots = manager._snapshots
    history = list(snapshots.history())
    return history if manager._writers.holds(session_id, snapshots.own(history)) else None


async def plan_fork(
    store: SessionStore,
    parent_id: str,
    *,
    detached: bool,
    messages: Sequence[JsonObject],
    saved_history: Sequence[JsonObject] | None,
) -> Fork:
    """The fork of ``parent_id`` to save, with the parent's checkpoint state.

    Attached, it inherits the parent's resolved history: ``saved_history`` when the caller
    knows it (the parent is the session the conversation holds, saved), which spares reading
    the fork chain back, else read from the store (``SessionNotFoundError`` when the parent
    is absent; ``SessionOwnerError`` when a framework adapter writes it: its items are no
    conversation's). Detached, it stores ``messages`` (the conversation's) and may name a
    parent that was never saved, or any other.
    """
    metadata: dict[str, Any] = {"parent_id": parent_id, "detached": detached}
    if detached:
        parent = await store.load(parent_id)
        fork = Fork(owned=list(messages), inherited=[], metadata=metadata)
    else:
        if saved_history is not None:  # the parent's history is at hand: read only its metadata
            parent = await store.load(parent_id)
            history = saved_history
        else:
            resolved = await resolve_history(store, parent_id)
            parent = resolved.stored if resolved is not None else None
            history = resolved.messages if resolved is not None else []
        if parent is None:
            raise SessionNotFoundError(parent_id)
        check_own(parent.metadata)
        metadata["fork_message_count"] = len(history)
        last_id = history[-1].get("id") if history else None
        metadata["fork_message_id"] = last_id if isinstance(last_id, str) else None
        fork = Fork(owned=[], inherited=list(history), metadata=metadata)
    if parent is not None and parent.metadata.checkpoint_state is not None:
        metadata["checkpoint_state"] = parent.metadata.checkpoint_state
    return fork
