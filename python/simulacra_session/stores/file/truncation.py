"""``FileSessionStore.truncate``: the last messages of a session removed, durably, all or nothing.

A journal gets one truncation record, appended as an append is (under the id lock and the
file's ``flock``, where the journal ends as the store knows it, one write and one
``fdatasync``): a commit record that commits no lines and keeps the first
``message_count`` messages before it (``journal``). Its cost is the record's, whatever the
session's length; the inode, and the fork index's link to it, stay. The removed lines are
dead bytes from then on, which a compaction drops once they and the superseded records
outweigh the rest. A crash leaves the record whole or absent: a torn one does not verify,
so the journal loads as before it. A ``.json`` document (the original library's format has
no records), a version 1 journal, or a session in both formats is rewritten whole instead.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from ...errors import SessionNotFoundError
from ...models import Revision, merge_metadata, metadata_from_stored
from .._codec import check_truncation, encode_metadata
from . import journal
from .appends import write_locked
from .rewrite import rewrite_session
from .tail import read_tail

if TYPE_CHECKING:
    from . import FileSessionStore

__all__ = ["truncate_sync"]


def _write_truncation(
    store: FileSessionStore, session_id: str, count: int, fd: int, state: journal.JournalState
) -> bool:
    """Write a truncation record to the locked journal ``fd`` if ``state`` still describes it
    (see ``appends.write_locked``)."""
    kept = check_truncation(session_id, count, state.count)
    removed = read_tail(fd, state.end, count, None) if count else None  # for compaction's reckoning
    merged = merge_metadata(session_id, metadata_from_stored(session_id, state.meta), kept, None)
    payload, commit = journal.encode_append(state, [], encode_metadata(merged))
    if not journal.write_known(fd, state, payload):
        return False
    state.advance(payload, merged.to_json_dict(), -count, commit)
    state.superseded += removed.size if removed is not None else 0
    return True


def truncate_sync(
    store: FileSessionStore, session_id: str, count: int, expected: Revision | None
) -> Revision:
    """``FileSessionStore.truncate`` in a worker thread."""
    with store._locks.held(session_id):
        write = partial(_write_truncation, store, session_id, count)
        revision = write_locked(store, session_id, expected, write)
        if revision is None:
            revision = rewrite_session(
                store, session_id, [], None, mode="truncate", expected=expected, cut=count
            )
        if revision is None:
            raise SessionNotFoundError(session_id)
        store._compact_if_due_locked(session_id)
    return revision
