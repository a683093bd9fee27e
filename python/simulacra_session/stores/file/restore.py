"""``FileSessionStore.restore`` and compaction on demand: whole rewrites of a session through
the store's one atomic rewrite path, which keeps the format the session is found in, sets an
unreadable file aside and re-makes the fork index link."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...ids import validate_session_id
from ...messages import JsonObject
from ...models import Revision, SessionMetadata
from .._cancellation import finish
from .rewrite import rewrite_session

if TYPE_CHECKING:
    from . import FileSessionStore

__all__ = ["compact", "compact_sync", "restore_sync"]


def restore_sync(
    store: FileSessionStore,
    session_id: str,
    messages: Sequence[JsonObject],
    metadata: SessionMetadata,
    expected: Revision | None = None,
) -> None:
    """Write the session exactly as given, its stamps included (in a worker thread), once
    ``checked_restore`` has passed them (``messages`` a list of the store's own).

    A ``.json`` document keeps whole milliseconds (rounded up, as ``convert`` writes them).
    ``expected``: only over the session at that revision (``ConflictError`` otherwise, and
    when it is gone), checked under the locks of the write: a rewrite of what was read
    (``doctor``'s detach) loses no append, and brings back no session deleted, meanwhile.
    """
    given: Mapping[str, Any] = metadata.to_json_dict()
    with store._locks.held(session_id):
        rewrite_session(store, session_id, messages, given, mode="restore", expected=expected)


def compact_sync(store: FileSessionStore, session_id: str) -> bool:
    """``compact`` in a worker thread."""
    with store._locks.held(session_id):
        if store._layout.newer_file(session_id) is None:
            return False
        rewrite_session(store, session_id, [], None, mode="compact")
    return True


async def compact(store: FileSessionStore, session_id: str) -> bool:
    """Rewrite session ``id``'s file with what it holds now, stamps kept: a journal without its
    superseded records, the messages truncation records removed and its torn tail. ``False`` when
    there is no such session."""
    validate_session_id(session_id)
    return await finish(asyncio.to_thread(compact_sync, store, session_id))
