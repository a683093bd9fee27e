"""Deleting a session through a SessionManager: its attached forks keep their history, and a
delete that fails leaves the manager writing the session on it.

Each attached fork of the session is written with the messages it inherits, detached,
before the session goes: those the manager (or a child manager) writes through their
writers (``owned.detach_forks``), the others here, from the session's history read once.
Another process may fork the session after they are listed and before the store removes
it; so once it is gone its forks are listed again and any still attached is written the
same way, from the history read before: what it inherits survives the session. A fork
inheriting messages saved to the session after that read (by yet another writer) gets
the history read, as ``history`` resolves a fork that claims more than its parent holds.

The manager writing the session (the deleting one, or a child manager) leaves it at once, its
conversation cleared, so that a message completed during the delete never saves to it. When
the delete raises (the store's error, a ``CorruptSessionError`` refusing it, an
``EventLoopError`` from the flush before it, a cancellation) before the store's ``delete``
returned, the session is still there, and that manager is put back on it as it was
(``Left``): the conversation's messages and checkpoint state, the label and inheritance its
next save keeps, the session's writer as it was (what it wrote, so that the next auto-save
appends after it; the revision; a failed write, which the next save rewrites). Messages
added to the conversation meanwhile (without auto-save, on no session, nothing saved them)
follow the session's own: none is lost. Unless another session was made current meanwhile
(a ``load``, ``fork``, ``start_new``, or the auto-save of a message completed meanwhile,
which starts a new session holding it; even one left since): that stays, and an auto-save
of the deleted session that had failed is written again in the background, as when a
manager leaves a session any other way. A delete cancelled while the store's ``delete``
runs may have removed the session all the same (a bundled store finishes a delete it
started): the manager is back on it, and its next write fails with ``ConflictError`` (no
session), which ``recover`` mends by saving it anew.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, CorruptSessionError
from ..history import ResolvedSession, inherited_count, inherits, list_forks, resolve_history, save_from
from ..messages import JsonObject
from ..protocols import SessionStore
from .owned import detach_forks, owner_of
from .save_request import SaveRequest
from .snapshot import Inheritance

if TYPE_CHECKING:
    from . import SessionManager
    from .writer import SessionWriter

__all__ = ["Left", "delete_session"]


async def delete_session(manager: SessionManager, session_id: str) -> bool:
    """Remove ``session_id`` from ``manager``'s store once each attached fork holds what it
    inherits (written detached), forks made while it was removed included; ``True`` when the
    session existed. Its forks are found in the fork index and the listing both (see
    ``list_forks``); those made meanwhile, by this library, in the index. The manager writing
    the session leaves it first, and is put back on it when this raises before the store's
    ``delete`` returned (see the module)."""
    owner = owner_of(manager, session_id)  # the deleting manager, or a child manager
    left = Left.leave(owner, session_id) if owner is not None else None
    gone = False
    try:
        await manager.flush()
        store = manager._store
        await detach_forks(manager, session_id)  # the forks this manager writes, through their writers
        resolved = await _history(store, session_id)  # what its forks inherit, read once
        if resolved is not None:
            await _keep_histories(store, session_id, resolved.messages, every=True)  # the others
        existed = await store.delete(session_id)
        gone = True
        if resolved is not None:
            await _keep_histories(store, session_id, resolved.messages)  # made before it went
    except BaseException:
        if left is not None and not gone:
            left.come_back()
        raise
    return existed


@dataclass(slots=True)
class Left:
    """What the manager writing a session held when it left it for the session's delete: what
    it takes to put it back on the session as it was (see the module)."""

    owner: SessionManager
    session_id: str
    snapshot: SaveRequest  # the history, and an auto-save of it (should one be written again)
    inherited: Inheritance
    labelled: bool
    checkpoint: Any
    writer: SessionWriter | None
    switches: int = 0  # the owner's count of sessions made current, once it left this one

    @classmethod
    def leave(cls, owner: SessionManager, session_id: str) -> Left:
        """Make ``owner`` leave ``session_id``, its current session, for no session, its
        conversation cleared; what it held."""
        snapshots = owner._snapshots
        inherited, labelled = snapshots.inherited, snapshots.labelled  # before the snapshot's derivations
        left = cls(
            owner,
            session_id,
            owner._request({}, background=True),
            inherited,
            labelled,
            owner._conversation.checkpoint_state,
            owner._writers.get(session_id),
        )
        owner._switch_to(None, inherited=0, has_label=False)
        owner._conversation.clear()
        left.switches = owner._switches
        return left

    def come_back(self) -> None:
        """Put the owner back on the session as it was, unless it moved on meanwhile (another
        session made current, even if left since); then an auto-save of the session that
        failed is written again."""
        owner, writers, writer = self.owner, self.owner._writers, self.writer
        if owner._disposed:
            return
        if owner._switches != self.switches:  # another session made current meanwhile: it stays
            failed = owner._auto_save and writer is not None and writer.failed
            if failed and writers.resume(self.session_id, writer, current=False):
                writers.submit(self.snapshot)
            return
        conversation = owner._conversation
        meanwhile = conversation.messages  # added without auto-save: they follow the session's
        conversation.load([*self.snapshot.history, *meanwhile])
        if conversation.checkpoint_state is None:  # a conversation whose clear() dropped it
            conversation.checkpoint_state = self.checkpoint
        owner._session_id = self.session_id
        owner._switches += 1
        owner._snapshots.inherited = self.inherited
        owner._snapshots.labelled = self.labelled
        writers.resume(self.session_id, writer)


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
