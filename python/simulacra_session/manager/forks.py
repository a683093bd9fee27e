"""Forks for the SessionManager: the fork a ``fork()`` makes, a session's forks, and the
history written into attached forks before their parent is deleted.

An attached fork stores only the messages after the ones it inherits from its parent's
resolved history (see ``simulacra_session.history``); a detached one stores all of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import SessionNotFoundError
from ..history import inherited_count, inherits, resolve_history
from ..messages import JsonObject
from ..models import Revision, SessionMetadata, StoredSession
from ..protocols import ForkIndexedStore, SessionStore, checks_revisions

__all__ = ["Fork", "list_forks", "materialize_forks", "plan_fork", "save_from"]


@dataclass(slots=True)
class Fork:
    """A fork to save: the messages it stores itself, the history it inherits (loaded into
    the conversation when it is attached) and its metadata."""

    owned: list[JsonObject]
    inherited: list[JsonObject]
    metadata: dict[str, Any] = field(default_factory=dict)


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
    is absent). Detached, it stores ``messages`` (the conversation's) and may name a parent
    that was never saved.
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
        metadata["fork_message_count"] = len(history)
        last_id = history[-1].get("id") if history else None
        metadata["fork_message_id"] = last_id if isinstance(last_id, str) else None
        fork = Fork(owned=[], inherited=list(history), metadata=metadata)
    if parent is not None and parent.metadata.checkpoint_state is not None:
        metadata["checkpoint_state"] = parent.metadata.checkpoint_state
    return fork


async def list_forks(store: SessionStore, id: str) -> list[SessionMetadata]:
    """Sessions whose ``parent_id`` is ``id``, most recent first: from the store's fork index
    (a ``ForkIndexedStore``), else by listing every session."""
    if isinstance(store, ForkIndexedStore):
        return await store.forks(id)
    return [meta for meta in await store.list() if meta.parent_id == id]


async def materialize_forks(store: SessionStore, parent_id: str) -> list[str]:
    """Write into each attached fork of ``parent_id`` the messages it inherits from it, so it
    keeps its history once the parent is gone; returns the ids of the forks now detached."""
    attached = [meta for meta in await list_forks(store, parent_id) if inherits(meta)]
    if not attached:
        return []
    resolved = await resolve_history(store, parent_id)
    if resolved is None:
        return []
    detached = []
    for meta in attached:
        fork = await store.load(meta.id)
        if fork is None or not inherits(fork.metadata):
            continue
        count = inherited_count(fork.metadata, resolved.messages)
        await save_from(store, fork, {"detached": True}, resolved.messages[:count] + fork.messages)
        detached.append(meta.id)
    return detached


async def save_from(
    store: SessionStore,
    stored: StoredSession,
    metadata: dict[str, Any],
    messages: Sequence[JsonObject] | None = None,
) -> Revision | None:
    """Save the session ``stored`` was loaded as, with ``messages`` (its own, by default) and
    ``metadata`` merged: refused with ``ConflictError`` when another writer saved it since,
    by a store that checks revisions."""
    options = {"expected": stored.revision} if checks_revisions(store) else {}
    return await store.save(
        stored.metadata.id, stored.messages if messages is None else messages, metadata, **options
    )
