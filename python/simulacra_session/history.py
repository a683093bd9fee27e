"""Fork resolution, tail reads and truncation: a session's history as its forks see it.

Public: ``resolve_history`` (a session's whole history), ``read_tail`` (its last messages)
and ``truncate`` (remove its last messages), all over any ``SessionStore``, using the
capabilities a store has (``ChainLoadingStore``, ``TailReadingStore``, ``TruncatableStore``).


An attached fork stores only its own messages; it inherits the first
``fork_message_count`` messages of its parent's resolved history. Files written by the
original library carry only ``fork_message_id`` (cut after that message), or neither
(the parent's whole history), and are resolved as the original resolves them.

A fork whose parent is gone (or whose parent's id names another id's file: ``CaseClashError``)
loads, as in the original library, with the history it has without it (its own messages, or
what it inherits from the ancestors still there; the copy of what it inherits, when its
store kept one: ``StoredSession.parent_copy``) and a warning; ``strict=True`` raises
``CorruptSessionError`` instead. The walk is written once
(``_walk``, which asks for each session it needs) and driven by an async loader
(``resolve_history``, for stores) or a plain one (``resolve_history_sync``, for a store
resolving a parent inside its own worker thread).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import CaseClashError, ConflictError, CorruptSessionError, SessionNotFoundError
from .messages import JsonObject
from .models import Revision, SessionMetadata, StoredSession, check_revision
from .protocols import (
    ChainLoadingStore,
    ForkIndexedStore,
    SessionStore,
    TailReadingStore,
    TruncatableStore,
    checks_revisions,
)

__all__ = [
    "ResolvedSession",
    "inherited_count",
    "inherits",
    "list_forks",
    "materialize_forks",
    "read_tail",
    "resolve_history",
    "resolve_history_sync",
    "save_from",
    "truncate",
]

_log = logging.getLogger("simulacra_session")


@dataclass(frozen=True)
class ResolvedSession:
    """A stored session with its full history; ``inherited`` messages come from its parents.

    ``damage`` holds what the store found damaged and left out of the session or an ancestor
    read for it (``StoredSession.damage``): each loaded as its last state that verified.
    """

    stored: StoredSession
    messages: list[dict[str, Any]]
    inherited: int
    damage: tuple[CorruptSessionError, ...] = ()


def inherits(metadata: SessionMetadata) -> bool:
    """Whether the session is an attached fork (it inherits messages from ``parent_id``)."""
    return bool(metadata.parent_id) and not metadata.detached


def _original_count(metadata: SessionMetadata, parent_history: Sequence[JsonObject]) -> int:
    """The original library's rule: up to the message ``fork_message_id`` names, else all."""
    if metadata.fork_message_id is not None:
        for index, message in enumerate(parent_history):
            if isinstance(message, Mapping) and message.get("id") == metadata.fork_message_id:
                return index + 1  # a message need not be an object: only one has an id
    return len(parent_history)


def inherited_count(
    metadata: SessionMetadata, parent_history: Sequence[JsonObject], *, strict: bool = True
) -> int:
    """How many of the parent's messages an attached fork inherits.

    A ``fork_message_count`` beyond the parent's history raises ``CorruptSessionError``;
    with ``strict=False`` it is read by the original library's rule instead, with a warning.
    """
    count = metadata.fork_message_count
    if count is None:
        return _original_count(metadata, parent_history)
    if 0 <= count <= len(parent_history):
        return count
    problem = (
        f"session {metadata.id} inherits {count} messages but parent "
        f"{metadata.parent_id} has {len(parent_history)}"
    )
    if strict:
        raise CorruptSessionError(problem)
    _log.warning("%s: resolving it as the original library does", problem)
    return _original_count(metadata, parent_history)


#: The walk: yields each session id it needs, is sent that session (``None``: absent), and
#: returns the resolved session (``None`` when the session itself is absent).
_Walk = Generator[str, "StoredSession | None", "ResolvedSession | None"]


def _walk(session_id: str, strict: bool) -> _Walk:
    chain: list[StoredSession] = []  # the session, then each ancestor it inherits from
    seen: set[str] = set()
    current = session_id
    copied = None  # the copy of what the last inherits, standing in for its missing parent
    while True:
        if current in seen:
            raise CorruptSessionError(f"fork cycle: session {chain[-1].metadata.id} leads back to {current}")
        seen.add(current)
        stored = yield current
        if stored is None:
            if not chain:
                return None
            problem = f"session {chain[-1].metadata.id} inherits from missing session {current}"
            if strict:
                raise CorruptSessionError(problem)
            copied = chain[-1].parent_copy
            how = "without what it inherits" if copied is None else "with its copy of what it inherits"
            _log.warning("%s: loading it %s", problem, how)
            break
        chain.append(stored)
        if not inherits(stored.metadata):
            break
        current = stored.metadata.parent_id  # type: ignore[assignment]
    # the history starts with the last: a session inheriting nothing, or whose parent is gone
    history, forks = (list(chain[-1].messages), chain[:-1]) if copied is None else (list(copied), chain)
    inherited = 0
    for fork in reversed(forks):
        inherited = inherited_count(fork.metadata, history, strict=strict)
        history = history[:inherited] + fork.messages
    damage = tuple(stored.damage for stored in chain if stored.damage is not None)
    return ResolvedSession(stored=chain[0], messages=history, inherited=inherited, damage=damage)


async def resolve_history(
    store: SessionStore, session_id: str, *, strict: bool = False
) -> ResolvedSession | None:
    """Load ``session_id`` and every ancestor it inherits from; ``None`` when it is absent.

    ``ResolvedSession.messages`` is the session's whole history: the ``inherited`` messages
    of its ancestors, then its own. The session itself is one ``load``; a ``ChainLoadingStore``
    then fetches its ancestors as many at a time as it can, others one ``load`` each. Raises
    ``CorruptSessionError`` on a cycle. A missing ancestor is resolved as the original
    library does (see the module), or raises ``CorruptSessionError`` with ``strict``.
    """
    walk = _walk(session_id, strict)
    fetched: dict[str, StoredSession] = {}
    chained: ChainLoadingStore | None = None  # the store, when it loads chains: known at the first ancestor
    wanted = next(walk)
    first = True
    try:
        while True:
            stored = fetched.pop(wanted, None)
            if stored is None:
                if chained is not None:
                    fetched = {
                        ancestor.metadata.id: ancestor for ancestor in await chained.load_chain(wanted)
                    }
                    stored = fetched.pop(wanted, None)
                elif first:
                    stored = await store.load(wanted)
                else:
                    stored = await _ancestor(store, wanted)
            wanted = walk.send(stored)
            if first:  # once, for forks only: a runtime protocol check costs ~13 us
                first = False
                chained = store if isinstance(store, ChainLoadingStore) else None
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def _ancestor(store: SessionStore, session_id: str) -> StoredSession | None:
    """An ancestor, ``None`` when gone: absent, or its id's file name opens another id's file."""
    try:
        return await store.load(session_id)
    except CaseClashError:
        return None


def resolve_history_sync(
    load: Callable[[str], StoredSession | None], session_id: str, *, strict: bool = False
) -> ResolvedSession | None:
    """``resolve_history`` with a plain ``load`` function, one session at a time."""
    walk = _walk(session_id, strict)
    try:
        wanted = next(walk)
        while True:
            wanted = walk.send(load(wanted))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


# -- forks that keep their history --------------------------------------------------------


async def list_forks(store: SessionStore, id: str, *, every: bool = False) -> list[SessionMetadata]:
    """Sessions whose ``parent_id`` is ``id``, most recent first: from the store's fork index
    (a ``ForkIndexedStore``), else by listing every session. ``every``: from both (those the
    index lacks after it), for what changes the forks' history (a delete, a truncation): a
    file store's index lacks the forks the original library wrote, and those of files
    copied without it."""
    if not isinstance(store, ForkIndexedStore):
        return [meta for meta in await store.list() if meta.parent_id == id]
    indexed = await store.forks(id)
    if not every:
        return indexed
    known = {meta.id for meta in indexed}
    return indexed + [meta for meta in await store.list() if meta.parent_id == id and meta.id not in known]


async def materialize_forks(store: SessionStore, parent_id: str, *, kept: int | None = None) -> list[str]:
    """Write into each attached fork of ``parent_id`` the messages it inherits from it, so it
    keeps its history once the parent is gone (``kept=None``) or keeps only its first ``kept``
    messages (only the forks inheriting more are written); returns the ids of the forks now
    detached."""
    attached = [
        meta for meta in await list_forks(store, parent_id, every=True) if _inherits_beyond(meta, kept)
    ]
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
        if kept is not None and count <= kept:
            continue
        await save_from(store, fork, {"detached": True}, resolved.messages[:count] + fork.messages)
        detached.append(meta.id)
    return detached


def _inherits_beyond(metadata: SessionMetadata, kept: int | None) -> bool:
    """Whether an attached fork may inherit more than ``kept`` messages (``None``: any)."""
    count = metadata.fork_message_count
    return inherits(metadata) and (kept is None or count is None or count > kept)


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


# -- tails ------------------------------------------------------------------------------------


def _check_count(count: int) -> None:
    if count < 0:
        raise ValueError(f"count must not be negative, got count={count}")


def _tail_of(resolved: ResolvedSession | None, count: int) -> StoredSession | None:
    """The session's metadata and the last ``count`` messages of its resolved history."""
    if resolved is None:
        return None
    messages = resolved.messages[max(0, len(resolved.messages) - count) :]
    return StoredSession(resolved.stored.metadata, messages, damage=resolved.stored.damage)


async def read_tail(
    store: SessionStore, session_id: str, count: int, *, strict: bool = False
) -> StoredSession | None:
    """The metadata of ``session_id`` and the last ``count`` messages of its resolved history,
    oldest first (fewer when it has fewer); ``None`` when the session is absent.

    The messages include what an attached fork inherits when the tail reaches into it. A
    ``TailReadingStore`` reads only those messages: the session's last ones, then as many of
    its parent's before the fork point (``fork_message_count``), and so on up the chain, at a
    cost that depends on ``count``, not on the history's length. Other stores, and forks the
    original library wrote (no ``fork_message_count``), a missing parent or a cycle, are read
    as ``resolve_history`` reads them (``strict`` as there). The result's ``revision`` is the
    session's: pass it to ``truncate(..., expected=...)`` to remove what was read, unless
    another writer changed it. A negative ``count`` raises ``ValueError`` naming it.
    """
    _check_count(count)
    if not isinstance(store, TailReadingStore):
        return _tail_of(await resolve_history(store, session_id, strict=strict), count)
    head: StoredSession | None = None
    pieces: list[list[dict[str, Any]]] = []
    current, stop, need, seen = session_id, None, count, {session_id}
    while True:  # ``stop``: where the messages still needed end in ``current``'s resolved history
        stored = await store.load_tail(current, need, end=stop)
        if stored is None and head is None:
            return None
        meta = stored.metadata if stored is not None else None
        start = meta.fork_message_count if meta is not None and inherits(meta) else 0
        if stored is None or meta is None or start is None or (stop or 0) > start + meta.message_count:
            # a missing parent, the original library's fork point, or one beyond the parent
            return _tail_of(await resolve_history(store, session_id, strict=strict), count)
        head = head or stored
        messages = stored.messages
        if stop is None:
            stop = start + meta.message_count
        elif start:  # read as if it inherited nothing: its own messages end at stop - start
            messages = await _own_tail(store, current, need, stop - start) if stop > start else []
        pieces.append(messages)
        need -= len(messages)
        if need <= 0 or not start or meta.parent_id is None:
            break
        current, stop = meta.parent_id, min(stop, start)
        if current in seen:  # a cycle: resolve_history reports it
            return _tail_of(await resolve_history(store, session_id, strict=strict), count)
        seen.add(current)
    tail = [message for piece in reversed(pieces) for message in piece]
    return StoredSession(head.metadata, tail, damage=head.damage)


async def _own_tail(store: TailReadingStore, session_id: str, count: int, end: int) -> list[dict[str, Any]]:
    """The own messages ``[end - count, end)`` of a session read a moment ago."""
    stored = await store.load_tail(session_id, count, end=end)
    if stored is None:  # deleted between the two reads
        raise SessionNotFoundError(session_id)
    return stored.messages


# -- truncation -------------------------------------------------------------------------------

_ATTEMPTS = 8  # a rewrite made from a read another writer overtook is made again, this often


async def truncate(
    store: SessionStore, session_id: str, count: int, *, expected: Revision | None = None
) -> Revision:
    """Remove the last ``count`` messages of ``session_id``'s resolved history, durably; its
    new ``Revision``.

    Forks that inherit a removed message are first written with the history they inherit
    (detached, as ``SessionManager.delete`` keeps them), so they keep theirs; forks that
    inherit only kept messages stay attached. Within the session's own messages a
    ``TruncatableStore`` removes them at a cost independent of the history's length; other
    stores save the remaining own messages. Reaching into what an attached fork inherits
    rewrites it as detached, holding the rest of its resolved history. ``count`` 0 writes
    nothing and returns the current revision.

    ``expected`` (the revision the caller read, e.g. ``read_tail(...).revision``) makes it
    conditional: ``ConflictError`` when the session moved on, nothing removed. Without it the
    last ``count`` messages at the time of the write go. ``SessionNotFoundError`` when the
    session is absent; ``ValueError`` naming both when ``count`` is negative or beyond the
    history.
    """
    _check_count(count)
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return await _truncate_once(store, session_id, count, expected)
        except ConflictError:
            if expected is not None or attempt == _ATTEMPTS:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _truncate_once(
    store: SessionStore, session_id: str, count: int, expected: Revision | None
) -> Revision:
    """One attempt of ``truncate``: ``ConflictError`` when a write made from what it read
    was refused (retried by the caller when it expects no revision)."""
    head = await _head(store, session_id)
    check_revision(session_id, expected, head.revision)
    meta = head.metadata
    inherited = meta.fork_message_count if inherits(meta) else 0
    resolved = None
    if inherited is None or count > meta.message_count:  # the whole history is needed
        resolved = await resolve_history(store, session_id)
        if resolved is None:
            raise SessionNotFoundError(session_id)
        head, inherited = resolved.stored, resolved.inherited
        check_revision(session_id, expected, head.revision)
    total = inherited + head.metadata.message_count
    if count > total:
        raise ValueError(f"cannot truncate {count} messages of session {session_id}: its history has {total}")
    if count == 0:
        return head.revision
    await materialize_forks(store, session_id, kept=total - count)
    if resolved is not None and count > head.metadata.message_count:  # into the inherited part
        return await _rewrite(store, head, {"detached": True}, resolved.messages[: total - count])
    if isinstance(store, TruncatableStore):
        return await store.truncate(session_id, count, expected=expected)
    full = await store.load(session_id) if isinstance(store, TailReadingStore) else head
    if full is None:
        raise SessionNotFoundError(session_id)
    return await _rewrite(store, full, {}, full.messages[: full.metadata.message_count - count])


async def _rewrite(
    store: SessionStore, stored: StoredSession, metadata: dict[str, Any], messages: list[dict[str, Any]]
) -> Revision:
    """``save_from``, and the revision it wrote (read back from a store whose save returns none)."""
    revision = await save_from(store, stored, metadata, messages)
    if revision is None:
        revision = (await _head(store, stored.metadata.id)).revision
    return revision


async def _head(store: SessionStore, session_id: str) -> StoredSession:
    """The session's metadata, with as few of its messages as the store can read."""
    if isinstance(store, TailReadingStore):
        stored = await store.load_tail(session_id, 0)
    else:
        stored = await store.load(session_id)
    if stored is None:
        raise SessionNotFoundError(session_id)
    return stored
