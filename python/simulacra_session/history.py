"""Resolving a fork chain into one message history, without recursion.

An attached fork stores only its own messages; it inherits the first
``fork_message_count`` messages of its parent's resolved history. Files written by the
original library carry only ``fork_message_id`` (cut after that message), or neither
(the parent's whole history), and are resolved as the original resolves them.

A fork whose parent is gone loads, as in the original library, with the history it has
without it (its own messages, or what it inherits from the ancestors still there; the copy
of what it inherits, when its store kept one: ``StoredSession.parent_copy``) and a warning;
``strict=True`` raises ``CorruptSessionError`` instead. The walk is written once
(``_walk``, which asks for each session it needs) and driven by an async loader
(``resolve_history``, for stores) or a plain one (``resolve_history_sync``, for a store
resolving a parent inside its own worker thread).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import CorruptSessionError
from .messages import JsonObject
from .models import SessionMetadata, StoredSession
from .protocols import ChainLoadingStore, SessionStore

__all__ = ["ResolvedSession", "inherited_count", "inherits", "resolve_history", "resolve_history_sync"]

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
            if message.get("id") == metadata.fork_message_id:
                return index + 1
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

    The session itself is one ``load``; a ``ChainLoadingStore`` then fetches its ancestors
    as many at a time as it can, others one ``load`` each. Raises ``CorruptSessionError`` on
    a cycle. A missing ancestor is resolved as the original library does (see the module),
    or raises ``CorruptSessionError`` with ``strict``.
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
                else:
                    stored = await store.load(wanted)
            wanted = walk.send(stored)
            if first:  # once, for forks only: a runtime protocol check costs ~13 us
                first = False
                chained = store if isinstance(store, ChainLoadingStore) else None
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


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
