"""The writes every framework adapter makes: append a batch, empty a session.

Both are safe beside other writers of the same session: an append never drops what another
writer added, a clear never empties more than it read. One exception, on a store without
``append``: two processes creating the same session at once (a save that creates a session
cannot be made conditional: no revision means "absent"); within a process, such appends to
one session run one at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ..errors import ConflictError, SessionNotFoundError
from ..history import resolve_history, save_from, truncate
from ..messages import JsonObject
from ..protocols import AppendableSessionStore, SessionStore

__all__ = ["append", "clear"]


async def append(
    store: SessionStore, session_id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any]
) -> None:
    """Add ``messages`` after the session's own, merging ``metadata``: one durable append of
    the whole batch. A store without ``append`` loads the session and saves it from the
    revision it read (again when another writer saved meanwhile)."""
    if isinstance(store, AppendableSessionStore):
        await store.append(session_id, messages, metadata)
        return
    async with _one_at_a_time(store, session_id):
        while True:
            stored = await store.load(session_id)
            try:
                if stored is None:
                    await store.save(session_id, messages, metadata)
                else:
                    await save_from(store, stored, dict(metadata), [*stored.messages, *messages])
            except ConflictError:
                continue  # another writer saved since the load: add after its messages
            return


#: The lock of each session being appended to by load and save, and how many wait on it,
#: per event loop and store; dropped when nobody does.
_serials: dict[tuple[asyncio.AbstractEventLoop, int, str], tuple[asyncio.Lock, int]] = {}


@asynccontextmanager
async def _one_at_a_time(store: SessionStore, session_id: str) -> AsyncIterator[None]:
    """Hold the lock of ``session_id`` in ``store`` for this event loop."""
    key = (asyncio.get_running_loop(), id(store), session_id)
    lock, users = _serials.get(key, (asyncio.Lock(), 0))
    _serials[key] = (lock, users + 1)
    try:
        async with lock:
            yield
    finally:
        users = _serials[key][1] - 1
        if users:
            _serials[key] = (lock, users)
        else:
            del _serials[key]


async def clear(store: SessionStore, session_id: str) -> None:
    """Remove every message of the session's history; the session stays, empty, with its
    metadata, and forks made of it keep the history they inherit (``history.truncate``)."""
    while True:
        resolved = await resolve_history(store, session_id)
        if resolved is None or not resolved.messages:
            return
        try:
            revision = resolved.stored.revision
            await truncate(store, session_id, len(resolved.messages), expected=revision)
        except (ConflictError, SessionNotFoundError):
            continue  # the session moved on since the read: clear what it holds now
        return
