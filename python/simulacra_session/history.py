"""Resolving a fork chain into one message history, without recursion.

An attached fork stores only its own messages; it inherits the first
``fork_message_count`` messages of its parent's resolved history. Files written by the
original library carry only ``fork_message_id`` (cut after that message), or neither
(the parent's whole history).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import CorruptSessionError
from .messages import Message
from .models import SessionMetadata, StoredSession
from .protocols import ChainLoadingStore, SessionStore

__all__ = ["ResolvedSession", "inherited_count", "resolve_history"]


@dataclass(frozen=True)
class ResolvedSession:
    """A stored session with its full history; ``inherited`` messages come from its parents."""

    stored: StoredSession
    messages: list[Message]
    inherited: int


def inherits(metadata: SessionMetadata) -> bool:
    """Whether the session is an attached fork (it inherits messages from ``parent_id``)."""
    return bool(metadata.parent_id) and not metadata.detached


def inherited_count(metadata: SessionMetadata, parent_history: Sequence[Message]) -> int:
    """How many of the parent's messages an attached fork inherits."""
    if metadata.fork_message_count is not None:
        count = metadata.fork_message_count
        if not 0 <= count <= len(parent_history):
            raise CorruptSessionError(
                f"session {metadata.id} inherits {count} messages but parent "
                f"{metadata.parent_id} has {len(parent_history)}"
            )
        return count
    if metadata.fork_message_id is not None:
        for index, message in enumerate(parent_history):
            if message.get("id") == metadata.fork_message_id:
                return index + 1
    return len(parent_history)


async def resolve_history(store: SessionStore, session_id: str) -> ResolvedSession | None:
    """Load ``session_id`` and every ancestor it inherits from; ``None`` when it is absent.

    The session itself is one ``load``; a ``ChainLoadingStore`` then fetches its ancestors
    as many at a time as it can, others one ``load`` each. Raises ``CorruptSessionError`` on
    a cycle or a missing ancestor.
    """
    chain: list[StoredSession] = []
    seen: set[str] = set()
    fetched: dict[str, StoredSession] = {}
    chained: ChainLoadingStore | None = None  # the store, when it loads chains: known at the first ancestor
    current = session_id
    while True:
        if current in seen:
            raise CorruptSessionError(f"fork cycle: session {chain[-1].metadata.id} leads back to {current}")
        seen.add(current)
        stored = fetched.pop(current, None)
        if stored is None:
            if chained is not None:
                fetched = {ancestor.metadata.id: ancestor for ancestor in await chained.load_chain(current)}
                stored = fetched.pop(current, None)
            else:
                stored = await store.load(current)
        if stored is None:
            if not chain:
                return None
            raise CorruptSessionError(
                f"session {chain[-1].metadata.id} inherits from missing session {current}"
            )
        chain.append(stored)
        if not inherits(stored.metadata):
            break
        if len(chain) == 1:  # once, for forks only: a runtime protocol check costs ~13 us
            chained = store if isinstance(store, ChainLoadingStore) else None
        current = stored.metadata.parent_id  # type: ignore[assignment]
    history = list(chain[-1].messages)
    inherited = 0
    for stored in reversed(chain[:-1]):
        inherited = inherited_count(stored.metadata, history)
        history = history[:inherited] + stored.messages
    return ResolvedSession(stored=chain[0], messages=history, inherited=inherited)
