"""The writes every framework adapter makes: append a batch, empty a session.

Both first check that the session is the adapter's (``_owner.check_owner``): another
integration's is refused with ``ForeignSessionError``, nothing written. An append made from
a revision the adapter found its own needs no read for that: it is conditional on it.

Both are safe beside other writers of the same session: an append never drops what another
writer added, a clear never empties more than it read. On a store without ``append`` (an
``AdapterSessionStore``) an append is a load and a save from the revision read. Within a
process these appends to one session take turns (``one_at_a_time``), whatever the number
of adapter objects, stores and event loops, since the save that creates a session cannot be
conditional (no ``Revision`` means "absent"). Across processes they are as safe as the
store's revision check, and two processes creating one session at once may lose one's
batch; an ``AdapterSessionStore``'s check is not atomic across processes, so there two
processes writing one session at once may lose what one of them wrote.

A value JSON cannot hold (a datetime, bytes, a NaN, any object a framework let through) is
refused by the store before it writes anything, with a ``SerializationError`` that names
the value's place only: ``named`` says whose key and session it was.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any

from .._shared_locks import SharedLocks
from ..errors import ConflictError, SerializationError, SessionNotFoundError
from ..history import read_tail, resolve_history, save_from, truncate
from ..messages import JsonObject
from ..models import Revision
from ..protocols import AppendableSessionStore, SessionStore
from ._owner import check_owner

__all__ = ["append", "clear", "named", "not_json", "one_at_a_time"]


def not_json(session_id: str, mine: Mapping[str, Any], error: Exception) -> SerializationError:
    """``error`` (a value handed to the adapter that JSON cannot hold) as a
    ``SerializationError`` naming the adapter (``mine``: its ``integration`` and ``key``)
    and the session, as well as what ``error`` says."""
    return SerializationError(
        f"{mine['integration']} key {mine['key']!r} (session {session_id}): not written: {error}"
    )


@contextmanager
def named(mine: Mapping[str, Any]) -> Iterator[None]:
    """Re-raise a store's ``SerializationError`` (it names the session and the value's place
    in it, not whose it is) naming the adapter and the key (``mine``) too."""
    try:
        yield
    except SerializationError as error:
        whose = f"{mine['integration']} key {mine['key']!r}"
        raise SerializationError(f"{whose}: not written: {error}") from error


async def append(
    store: SessionStore,
    session_id: str,
    messages: Sequence[JsonObject],
    metadata: Mapping[str, Any],
    seen: Revision | None = None,
) -> Revision | None:
    """Add ``messages`` after the session's own, merging ``metadata`` (the adapter's
    ``integration`` and ``key``), once the session is checked to be the adapter's: one
    durable append of the whole batch. ``seen`` (``Owner.seen``: a revision the adapter found
    its own, on a store that checks revisions) makes the append conditional on it, with no
    read; when the session moved on since, it is read and checked. A store without
    ``append`` loads the session and saves it from the revision it read (again when another
    writer saved meanwhile). Returns the revision written (``None`` from a store giving none).
    A value JSON cannot hold raises ``SerializationError`` naming the key and the session
    (``named``), nothing written."""
    with named(metadata):
        return await _append(store, session_id, messages, metadata, seen)


async def _append(
    store: SessionStore,
    session_id: str,
    messages: Sequence[JsonObject],
    metadata: Mapping[str, Any],
    seen: Revision | None,
) -> Revision | None:
    """``append``, its errors as the store raised them."""
    if isinstance(store, AppendableSessionStore):
        if seen is not None:
            options = {"expected": seen}
            try:
                return await store.append(session_id, messages, metadata, **options)
            except ConflictError:
                pass  # changed since the adapter saw it: whose it is now is read below
        head = await read_tail(store, session_id, 0)  # the metadata, no message where tails are read
        if head is not None:
            check_owner(head.metadata, metadata)
        return await store.append(session_id, messages, metadata)
    async with one_at_a_time(session_id):
        while True:
            stored = await store.load(session_id)
            if stored is not None:
                check_owner(stored.metadata, metadata)
            try:
                if stored is None:
                    return await store.save(session_id, messages, metadata)
                return await save_from(store, stored, dict(metadata), [*stored.messages, *messages])
            except ConflictError:
                continue  # another writer saved since the load: add after its messages


#: The lock of each session appended to by a load and a save, shared by every loop and store.
_APPENDS = SharedLocks()


def one_at_a_time(session_id: str) -> AbstractAsyncContextManager[None]:
    """Hold the process's lock of appends to ``session_id``: one writer at a time, whatever
    its store object or event loop (the same id in two stores only waits a little longer)."""
    return _APPENDS.held(session_id)


async def clear(store: SessionStore, session_id: str, mine: Mapping[str, Any]) -> None:
    """Remove every message of the session's history, once checked to be the adapter's
    (``mine``: its ``integration`` and ``key``); the session stays, empty, with its metadata,
    and forks made of it keep the history they inherit (``history.truncate``)."""
    while True:
        resolved = await resolve_history(store, session_id)
        if resolved is None:
            return
        check_owner(resolved.stored.metadata, mine)
        if not resolved.messages:
            return
        try:
            revision = resolved.stored.revision
            await truncate(store, session_id, len(resolved.messages), expected=revision)
        except (ConflictError, SessionNotFoundError):
            continue  # the session moved on since the read: clear what it holds now
        return
