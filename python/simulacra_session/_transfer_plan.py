"""The source side of a transfer: its sessions listed a page at a time, ordered parents
before their forks, and each loaded as it moves (``transfer`` says what is kept and how)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import CorruptSessionError, SessionNotFoundError
from .history import inherits
from .ids import validate_session_id
from .models import StoredSession
from .protocols import SessionStore

__all__ = ["Progress", "Unreadable"]

#: Called after each session with how many are done and how many there are (``None``: unknown).
Progress = Callable[[int, int | None], None]
#: Told of each session an export leaves out because it cannot be read: its id and the error.
Unreadable = Callable[[str, CorruptSessionError], None]
_PAGE = 1000  # sessions listed per list() call


@dataclass(frozen=True)
class _Plan:
    """The sessions to move, parents before their forks, every id the source lists (a session
    deleted meanwhile leaves it), and the ids asked for by name (``None``: the whole store)."""

    order: list[str]
    present: set[str]
    named: frozenset[str] | None
    parents: frozenset[str]  # those attached forks inherit from


async def _listed(store: SessionStore) -> list[tuple[str, str | None, bool]]:
    """``(id, parent_id, attached)`` of every session, most recent first, a page at a time."""
    found: list[tuple[str, str | None, bool]] = []
    seen: set[str] = set()
    offset = 0
    while True:
        page = await store.list(limit=_PAGE, offset=offset)
        for meta in page:
            if meta.id not in seen:  # a save meanwhile moves a session to the first page
                seen.add(meta.id)
                found.append((meta.id, meta.parent_id, inherits(meta)))
        if len(page) < _PAGE:
            return found
        offset += len(page)


def _parents_first(listed: list[tuple[str, str | None, bool]], ids: Sequence[str] | None) -> list[str]:
    """The ids to move, each after its parent when that moves too.

    ``ids`` (all when ``None``) are joined by the ancestors they inherit from, so a fork
    keeps its history in the target. Ids the source does not list are kept: loading them
    tells whether they are missing or unreadable.
    """
    parent_of = {sid: parent for sid, parent, _ in listed}
    attached = {sid for sid, _, inherit in listed if inherit}
    if ids is None:
        chosen = [sid for sid, _, _ in listed]
    else:
        chosen = []
        for sid in ids:
            current: str | None = validate_session_id(sid)
            while current is not None and current not in chosen:
                chosen.append(current)
                current = parent_of.get(current) if current in attached else None
    members = set(chosen)
    children: dict[str, list[str]] = {}
    roots = []
    for sid in chosen:
        parent = parent_of.get(sid)
        if parent is not None and parent in members and parent != sid:
            children.setdefault(parent, []).append(sid)
        else:
            roots.append(sid)
    order: list[str] = []
    done: set[str] = set()
    stack = roots[::-1]
    while stack:
        sid = stack.pop()
        if sid not in done:
            done.add(sid)
            order.append(sid)
            stack.extend(children.get(sid, [])[::-1])
    order.extend(sid for sid in chosen if sid not in done)  # a cycle (corrupt): written as it is
    return order


async def _plan(store: SessionStore, ids: Sequence[str] | None) -> _Plan:
    listed = await _listed(store)
    named = None if ids is None else frozenset(ids)
    parents = frozenset(parent for _, parent, attached in listed if attached and parent is not None)
    return _Plan(_parents_first(listed, ids), {sid for sid, _, _ in listed}, named, parents)


async def _prepared(
    store: SessionStore, session_id: str, plan: _Plan, *, gone: bool = False
) -> StoredSession | None:
    """The session as it moves: a fork whose parent is gone and whose store kept a copy of what
    it inherits carries that copy, detached (as deleting a parent through a manager does).

    ``gone``: a session listed, deleted since (the store in use) and not asked for by name is
    ``None``, left out as if deleted before (its forks hold what they inherited)."""
    stored = await store.load(session_id)
    if stored is None:
        if not gone or session_id not in plan.present or session_id in (plan.named or ()):
            raise SessionNotFoundError(session_id)
        plan.present.discard(session_id)
        return None
    metadata = stored.metadata
    if stored.parent_copy is None or metadata.parent_id in plan.present:
        return StoredSession(metadata, stored.messages)
    messages = [*stored.parent_copy, *stored.messages]
    return StoredSession(
        metadata.model_copy(update={"detached": True, "message_count": len(messages)}), messages
    )
