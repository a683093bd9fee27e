"""Forks for the SessionManager: the fork a ``fork()`` makes, from the history the manager
holds when it can (``saved_history``). A session's forks and the history written into
attached forks before their parent is deleted are in ``simulacra_session.history``
(``list_forks``, ``materialize_forks``, ``save_from``), which ``truncate`` shares.

An attached fork stores only the messages after the ones it inherits from its parent's
resolved history (see ``simulacra_session.history``); a detached one stores all of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ..errors import SessionNotFoundError
from ..events import SaveEvent
from ..history import resolve_history
from ..ids import new_session_id
from ..messages import JsonObject, Message
from ..models import Revision
from ..protocols import SessionStore
from ..stores._cancellation import finish
from .selection import check_own

if TYPE_CHECKING:
    from . import SessionManager

__all__ = ["Fork", "make_fork", "plan_fork", "saved_history"]


@dataclass(slots=True)
class Fork:
    """A fork to save: the messages it stores itself, the history it inherits (loaded into
    the conversation when it is attached) and its metadata."""

    owned: list[JsonObject]
    inherited: list[JsonObject]
    metadata: dict[str, Any] = field(default_factory=dict)


async def make_fork(manager: SessionManager, parent_id: str, *, detached: bool) -> str:
    """Save a fork of ``parent_id`` and make it the manager's session (``SessionManager.fork``).

    An attached fork of the current session whose auto-save failed saves it first (an
    error, nothing forked, should that fail again): the fork never leaves out, nor drops
    from the conversation, a message the conversation held. Cancelled once the fork is saved, the
    manager is on it (as a store's write is: done, or never begun).
    """
    current = parent_id == manager._session_id
    if current and not detached and manager._auto_save and manager._writers.failed(parent_id):
        await manager._write({})
    manager._save_again()
    await manager.flush()
    saved = None if detached else saved_history(manager, parent_id)
    messages = manager._conversation.messages
    fork = await plan_fork(
        manager._store, parent_id, detached=detached, messages=messages, saved_history=saved
    )
    fork_id = new_session_id()
    saving = asyncio.ensure_future(manager._store.save(fork_id, fork.owned, fork.metadata))
    try:
        revision = await finish(saving)
    except asyncio.CancelledError:
        if saving.done() and not saving.cancelled() and saving.exception() is None:
            _switch_to(manager, fork_id, fork, saving.result())
        raise
    _switch_to(manager, fork_id, fork, revision)
    return fork_id


def _switch_to(manager: SessionManager, fork_id: str, fork: Fork, revision: Revision | None) -> None:
    """Make the fork just saved current: the conversation holds its history (an attached
    one's inherited messages; a detached one keeps its own) and the parent's checkpoint
    state; a ``save`` event says what it stored. A message that completed while the fork was
    made (saved to the parent, current then) is saved to it too."""
    manager._switch_to(fork_id, inherited=len(fork.inherited), has_label=False, revision=revision)
    conversation = manager._conversation
    if not fork.metadata["detached"]:
        conversation.clear()
        conversation.load(cast("list[Message]", fork.inherited))
        manager._snapshots.inherited_loaded()
    checkpoint_state = fork.metadata.get("checkpoint_state")
    if checkpoint_state is not None:
        conversation.checkpoint_state = checkpoint_state
    stored = cast("tuple[Message, ...]", (*fork.inherited, *fork.owned))
    manager._events.emit("save", SaveEvent(id=fork_id, messages=stored))
    if manager._auto_save and len(conversation.messages) > len(fork.inherited) + len(fork.owned):
        manager._writers.submit(manager._request({}, background=True))


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
        last = history[-1] if history else None
        last_id = last.get("id") if isinstance(last, Mapping) else None  # a message need not be an object
        metadata["fork_message_id"] = last_id if isinstance(last_id, str) else None
        fork = Fork(owned=[], inherited=list(history), metadata=metadata)
    if parent is not None and parent.metadata.checkpoint_state is not None:
        metadata["checkpoint_state"] = parent.metadata.checkpoint_state
    return fork
