"""Appending to a journal: on the event loop to a file this process knows, else in a worker
thread under the file's ``flock``.

Both write only where the journal ends as the store last knew it (``journal.write_known``),
and both refuse a writer's stale view: given the ``Revision`` the writer expects, an append
to a journal at another revision raises ``ConflictError`` and writes nothing. The event
loop path leaves that judgement to the thread (which reads the file under its lock) when
the journal it knows is not at the expected revision: another process may have written.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from functools import partial
from typing import TYPE_CHECKING, Any

from ...errors import CorruptSessionError
from ...messages import JsonObject
from ...models import Revision, check_revision, merge_metadata, metadata_from_stored
from .._codec import encode_metadata
from . import journal
from .files import read_from, regular, sync_file
from .locks import file_locked, open_locked
from .torn import keep_damage

if TYPE_CHECKING:
    from . import FileSessionStore

__all__ = ["Writer", "append_locked", "append_now", "revision_of", "write_locked"]


def revision_of(state: journal.JournalState) -> Revision:
    """The revision of the journal ``state`` describes."""
    return Revision(state.count, state.meta["updated_at"])


def append_now(
    store: FileSessionStore,
    session_id: str,
    state: journal.JournalState,
    messages: builtins.list[JsonObject],
    given: Mapping[str, Any] | None,
    expected: Revision | None,
) -> int | None:
    """Append on the event loop to a journal the store knows, without waiting for anyone.

    Returns the journal's descriptor (still locked) to make durable, ``-1`` when the
    append is complete (no ``fsync``), or ``None`` when nothing was written: the id's
    lock or the file's is held elsewhere, the file is not the one known, the session has a
    ``.json`` file too (as ``write_locked``: a conversion to the journal is removing it, or
    a rewrite decides which of the two continues), the journal known is not at revision
    ``expected``, or the parent changes. The id's lock is held only while
    the bytes are written: the file's ``flock`` keeps other writers out until the
    descriptor is closed, once durable.
    """
    if expected is not None and expected != revision_of(state):
        return None
    locks = store._locks
    lock = locks.try_hold(session_id)
    if lock is None:
        return None
    try:
        built = journal.build_append(session_id, state, messages, given)
        if built is None:
            return None
        payload, commit, meta, stamp = built
        fd = open_locked(state.path, wait=False)
        if fd is None:
            return None
        try:
            written = _alone(state.path) and journal.write_known(fd, state, payload)
        except BaseException:
            os.close(fd)
            raise
        if not written:
            os.close(fd)
            return None
        state.advance(payload, meta, len(messages), commit, stamp)
    finally:
        locks.release(session_id, lock)
    if store._fsync:
        return fd
    os.close(fd)
    return -1


def _alone(journal_path: str) -> bool:
    """Whether no ``.json`` name stands beside the journal ``{id}.jsonl`` (one ``lstat``:
    this runs on every auto-save). Any error but its absence says no: the caller then
    leaves the append to ``write_locked``, which reads the session under its locks."""
    try:
        os.lstat(journal_path[:-1])  # {id}.json
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


#: What ``write_locked`` has written to a locked journal: given its descriptor and state, it
#: writes (``journal.write_known``) and advances the state, ``False`` when nothing was written.
Writer = Callable[[int, journal.JournalState], bool]


def write_locked(
    store: FileSessionStore, session_id: str, expected: Revision | None, write: Writer
) -> Revision | None:
    """Have ``write`` write to the session's journal under its ``flock`` (the caller holds the
    id lock), durably; the new revision.

    The journal's state is read first when the store's does not describe it, and bytes after
    its last record that verifies are cut off (a copy kept, unless they are only an append
    cut short: ``torn.keep_damage``); its revision is checked against
    ``expected``. ``None``, nothing written, when there is no journal to write to: none, one
    of an earlier format version, or a ``.json`` file too (then a rewrite continues the newer
    of the two, as loads read it).
    """
    layout = store._layout
    path = layout.path(session_id, "jsonl")
    with file_locked(path) as fd:
        if fd is None or os.path.lexists(layout.path(session_id, "json")):
            return None
        store._case.check(session_id)
        state = store._journals.get(session_id)
        if state is None or state.path != path or not journal.describes(fd, state):
            found = regular(fd, path)
            data = read_from(fd, 0, found.st_size)
            state = store._decode_journal(session_id, data, path, found.st_ino)[1]
            if state.version != journal.FORMAT_VERSION:
                return None  # rewritten in this version
            check_revision(session_id, expected, revision_of(state))
            if state.end != len(data):  # bytes past the last record that verifies: cut off
                keep_damage(path, data, state.end, layout.file_mode, store._fsync)
                os.ftruncate(fd, state.end)
        else:
            check_revision(session_id, expected, revision_of(state))
        if not write(fd, state):
            raise CorruptSessionError(f"journal {path} changed while it was locked", path=path)
        if store._fsync:
            sync_file(fd, path)
    return revision_of(state)


def append_locked(
    store: FileSessionStore,
    session_id: str,
    messages: builtins.list[JsonObject],
    given: Mapping[str, Any] | None,
    expected: Revision | None,
) -> Revision | None:
    """Append to the session's journal under its ``flock`` (see ``write_locked``)."""
    return write_locked(
        store, session_id, expected, partial(_append_to, store, session_id, messages=messages, given=given)
    )


def _append_to(
    store: FileSessionStore,
    session_id: str,
    fd: int,
    state: journal.JournalState,
    *,
    messages: builtins.list[JsonObject],
    given: Mapping[str, Any] | None,
) -> bool:
    """Write an append to the locked journal ``fd`` if ``state`` still describes it,
    re-pointing the fork index when ``given`` moves the session to another parent."""
    existing = metadata_from_stored(session_id, state.meta)
    merged = merge_metadata(session_id, existing, state.count + len(messages), given)
    lines = journal.message_lines(session_id, messages, state.count)
    payload, commit = journal.encode_append(state, lines, encode_metadata(merged))
    moved = merged.parent_id != existing.parent_id
    with store._index.held(merged.parent_id, [existing.parent_id]) if moved else nullcontext():
        # a move holds both indexes from its write until it is indexed, as a rewrite does
        if not journal.write_known(fd, state, payload):
            return False
        state.advance(payload, merged.to_json_dict(), len(messages), commit)
        if moved:
            store._index.index(session_id, merged.parent_id, existing.parent_id, "jsonl")
    return True
