"""Deleting a session through a SessionManager: its attached forks keep their history.

Each attached fork of the session is written with the messages it inherits, detached,
before the session goes: those the manager (or a child manager) writes through their
writers (``owned.detach_forks``), the others here, from the session's history read once.
Another process may fork the session after they are listed and before the store removes
it; so once it is gone its forks are listed again and any still attached is written the
same way, from the history read before: what it inherits survives the session. A fork
inheriting messages saved to the session after that read (by yet another writer) gets
the history read, as ``history`` resolves a fork that claims more than its parent holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConflictError, CorruptSessionError
from ..history import ResolvedSession, inherited_count, inherits, list_forks, resolve_history, save_from
from ..messages import JsonObject
from ..protocols import SessionStore
from .owned import detach_forks

if TYPE_CHECKING:
    from . import SessionManager

__all__ = ["delete_session"]


async def delete_session(manager: SessionManager, session_id: str) -> bool:
    """Remove ``session_id`` from ``manager``'s store once each attached fork holds what it
    inherits (written detached), forks made while it was removed included; ``True`` when the
    session existed. Its forks are found in the fork index and the listing both (see
    ``list_forks``); those made meanwhile, by this library, in the index."""
    store = manager._store
    await detach_forks(manager, session_id)  # the forks this manager writes, through their writers
    resolved = await _history(store, session_id)  # what its forks inherit, read once
    if resolved is not None:
        await _keep_histories(store, session_id, resolved.messages, every=True)  # the others
    existed = await store.delete(session_id)
    if resolved is not None:
        await _keep_histories(store, session_id, resolved.messages)  # made before it went
    return existed


async def _history(store: SessionStore, session_id: str) -> ResolvedSession | None:
    """``session_id``'s resolved history; ``None`` when it is absent, or cannot be read and no
    fork inherits from it (it is deleted then: nothing of it can be kept; with an attached
    fork, the ``CorruptSessionError`` refuses the delete, as that fork would lose its history)."""
    try:
        return await resolve_history(store, session_id)
    except CorruptSessionError:
        if any(inherits(metadata) for metadata in await list_forks(store, session_id, every=True)):
            raise
        return None


async def _keep_histories(
    store: SessionStore, parent_id: str, history: Sequence[JsonObject], *, every: bool = False
) -> None:
    """Write into each attached fork of ``parent_id`` the messages it inherits of ``history``
    (the parent's), detached (``every``: see ``list_forks``)."""
    for metadata in await list_forks(store, parent_id, every=every):
        if inherits(metadata):
            await _keep_history(store, metadata.id, parent_id, history)


async def _keep_history(
    store: SessionStore, fork_id: str, parent_id: str, history: Sequence[JsonObject]
) -> None:
    """Write into the fork ``fork_id``, while it is an attached fork of ``parent_id``, what it
    inherits of ``history`` before its own messages, detached; written again from what it
    holds when its writer saved it meanwhile (a ``ConflictError``)."""
    while True:
        fork = await store.load(fork_id)
        if fork is None or not inherits(fork.metadata) or fork.metadata.parent_id != parent_id:
            return
        count = inherited_count(fork.metadata, history, strict=False)
        try:
            await save_from(store, fork, {"detached": True}, [*history[:count], *fork.messages])
        except ConflictError:
            continue
        return
