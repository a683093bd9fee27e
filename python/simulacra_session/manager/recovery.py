"""Recovering a SessionManager after a ``ConflictError``: the session as stored, then this
manager's messages that the store lacks, saved after them (``SessionManager.recover``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..history import ResolvedSession, resolve_history
from ..messages import JsonObject
from .selection import check_own

if TYPE_CHECKING:
    from . import SessionManager

__all__ = ["recover", "settled_history"]


async def settled_history(manager: SessionManager, session_id: str) -> ResolvedSession | None:
    """The resolved history of ``session_id`` once the manager's saves of it have landed:
    read again while a save began during the read (a message completed meanwhile), so that
    what the manager then holds is never older than what it wrote."""
    await manager.flush()
    resolved = await resolve_history(manager._store, session_id, strict=manager._strict_forks)
    while resolved is not None and manager._writers.busy_with(session_id):
        await manager.flush()
        resolved = await resolve_history(manager._store, session_id, strict=manager._strict_forks)
    return resolved


async def recover(manager: SessionManager, session_id: str) -> int:
    """Reload ``session_id``, the manager's current session, with the manager's messages the
    store lacks put after what it holds, and save them; how many messages were saved again.

    The messages the store lacks are the manager's own messages after the ``message_count``
    of the revision it last loaded or wrote (without one, after those it has in common with
    the store); those already stored where its last write would have put them (a write that
    landed, its outcome unknown) are not added twice. A session deleted meanwhile is saved
    anew with the whole history; one a framework adapter has taken meanwhile (its
    ``integration`` metadata) raises ``SessionOwnerError``, nothing loaded or saved.
    """
    resolved = await settled_history(manager, session_id)
    history = list(manager._snapshots.history())  # with what completed during the read
    if resolved is None:
        manager._switch_to(session_id, inherited=0, has_label=manager._snapshots.labelled)
        await manager.save(full=True)
        return len(history)
    check_own(resolved.stored.metadata)
    own = history[manager._snapshots.inherited.count :]
    stored = resolved.stored.messages
    known = manager._writers.revision(session_id)
    count = known.message_count if known is not None else _common(own, stored)
    unsaved = own[count:]
    if stored[count : count + len(unsaved)] == unsaved:
        unsaved = []  # there already: a write whose outcome this manager did not hear of
    checkpoint = manager.conversation.checkpoint_state or resolved.stored.metadata.checkpoint_state
    manager._take(resolved, [*resolved.messages, *unsaved], checkpoint)
    if unsaved:
        await manager.save()
    return len(unsaved)


def _common(own: Sequence[JsonObject], stored: Sequence[JsonObject]) -> int:
    """How many messages ``own`` and ``stored`` have in common at their start."""
    count = 0
    for mine, theirs in zip(own, stored, strict=False):
        if mine != theirs:
            break
        count += 1
    return count
