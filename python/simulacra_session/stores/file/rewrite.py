"""The file store's one whole rewrite of a session: saves, restores, appends and truncations
that cannot append to a journal, compactions and conversions all go through it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, nullcontext
from typing import TYPE_CHECKING, Any, Literal

from ..._backend import atomic_write
from ...errors import CorruptSessionError
from ...messages import JsonObject
from ...models import Revision, StoredSession, check_revision, merge_metadata, metadata_from_stored
from .._codec import check_truncation
from .files import set_aside
from .layout import FORMATS, OTHER, SUFFIXES, FileFormat
from .locks import file_locked, root_locked, session_locked
from .torn import keep_damage
from .whole import encode_whole, journal_state, remove_other

if TYPE_CHECKING:
    from . import FileSessionStore

__all__ = ["Mode", "rewrite_session"]

#: What a rewrite writes (see ``rewrite``).
Mode = Literal["save", "restore", "append", "truncate", "compact", "convert"]


def rewrite_session(
    store: FileSessionStore,
    session_id: str,
    messages: Sequence[JsonObject],
    given: Mapping[str, Any] | None,
    *,
    mode: Mode,
    target: FileFormat | None = None,
    expected: Revision | None = None,
    cut: int = 0,
) -> Revision | None:
    """Write the whole session atomically, in the format it is stored in (caller holds the id lock).

    It holds ``messages`` (``"save"``, ``"restore"``: an unreadable file is set aside), the stored ones
    then ``messages`` (``"append"``), the stored ones but the last ``cut`` (``"truncate"``), or what
    is stored (``"compact"``, ``"convert"``). ``"truncate"``, ``"compact"`` and ``"convert"`` write
    nothing when the session is gone: ``None``. A new session takes the store's format,
    ``target`` converts. Every file of the session is read, written and removed under its
    ``flock`` (the root's while it has none: ``session_locked``), so no writer in another
    process comes between the read and the write (nor between the check of the ``expected``
    revision and the write), nor between the write and the removal of the file in the other
    format (the older of two, or the one converted from), which is removed only if its name
    still names the file locked. Its indexing comes after, under the new file's lock, and
    only while that is the file written (else a later writer indexes). Where a name comes
    or goes (a conversion, a file set aside) the root is locked too, so nobody looks for the
    session between the two names. A
    journal's bytes that did not verify are kept in a copy first, unless they are only an
    append cut short. Returns the revision written.
    """
    layout = store._layout
    keep = mode in ("compact", "convert")
    existing_only = keep or mode == "truncate"  # never creates the session
    fresh = mode in ("save", "append", "truncate")  # stamped anew, else the stamps are kept
    paths = [layout.path(session_id, file_format) for file_format in FORMATS]
    create_in = None if existing_only else store._make_root
    with ExitStack() as indexing:  # held from before the write until its indexing is done
        with session_locked(paths, layout.root, create_in=create_in) as fds:
            held = {file_format: fd for file_format, fd in zip(FORMATS, fds, strict=True) if fd is not None}
            store._case.check(session_id)  # under the locks: no other id's file comes meanwhile
            found = store._find(session_id, locked=True)
            existing: StoredSession | None = None
            corrupt_path = None
            if found is not None:
                try:
                    existing = store._decode(session_id, *found)
                except CorruptSessionError:
                    if mode not in ("save", "restore"):
                        raise
                    corrupt_path = layout.path(session_id, found[0])
            old = existing.metadata if existing is not None else None
            old_parent_id = old.parent_id if old is not None else None
            if existing_only and existing is None:
                return None
            if (fresh and corrupt_path is None) or mode == "restore":  # a restore expects what it read
                check_revision(session_id, expected, existing.revision if existing is not None else None)
            if keep:
                assert existing is not None
                messages, merged = existing.messages, existing.metadata
            elif mode == "restore":  # ``given`` is the whole metadata, stamps included
                merged = metadata_from_stored(session_id, given or {})
            else:
                if mode == "append" and existing is not None:
                    messages = [*existing.messages, *messages]
                elif mode == "truncate":
                    assert existing is not None
                    messages = existing.messages[: check_truncation(session_id, cut, len(existing.messages))]
                merged = merge_metadata(session_id, old, len(messages), given)
            file_format = target or (found[0] if found is not None else store.format)
            path = layout.path(session_id, file_format)
            encoded, merged, superseded, last_commit = encode_whole(
                file_format, merged, messages, existing, store._peek, layout, stamp=fresh
            )
            store._index.check(session_id, merged.parent_id)
            store._make_root()
            indexing.enter_context(store._index.held(merged.parent_id, [old_parent_id]))
            swaps = bool(held) and (file_format not in held or corrupt_path is not None)  # else none or held
            with root_locked(layout.root) if swaps else nullcontext():
                if corrupt_path is not None:
                    set_aside(corrupt_path)
                elif found is not None and existing is not None and existing.damage is not None:
                    where = layout.path(session_id, found[0])  # the damage's offset: where its state ends
                    keep_damage(where, found[1], existing.damage.offset, layout.file_mode, store._fsync)
                store._journals.pop(session_id)
                if found is None:  # a new session: the root's exclusive lock is held
                    store._case.creating(session_id, file_format)
                atomic_write(path, encoded, store._fsync, layout.file_mode)
                written = _inode(path)  # the file written, unless another writer came in since
                store._case.wrote(session_id, file_format)
                removed = remove_other(layout, session_id, file_format, held, store._fsync)
            if file_format == "jsonl":
                state = journal_state(path, encoded, merged, len(messages), superseded, last_commit)
                if state is not None:  # else rewritten or deleted since: the next append reads it
                    store._journals[session_id] = state
        if merged.parent_id is None and old_parent_id is None:
            return Revision.of(merged)  # no fork, then or now: nothing to index
        # under the new file's lock, and only while it is the one written: a write of the
        # session by another process, let in once the old file's lock went, indexes its own
        # file (this indexing, after it, would undo that: the parent it moved to unlinked)
        with file_locked(path) as fd:
            if fd is not None and os.fstat(fd).st_ino == written:
                store._index.index(session_id, merged.parent_id, old_parent_id, file_format)
                if removed and merged.parent_id is not None:  # after the new entry: forks() never misses it
                    store._index.unindex(merged.parent_id, session_id, (OTHER[file_format],))
            elif fd is not None and old_parent_id is not None:
                _overtaken(store, session_id, file_format, old_parent_id)
    return Revision.of(merged)


def _inode(path: str) -> int | None:
    """The inode ``path`` names, ``None`` when it is gone: once renamed, the new file is not
    locked, so another process's writer may replace or remove it at once (a conversion)."""
    try:
        return os.lstat(path).st_ino
    except FileNotFoundError:
        return None


def _overtaken(store: FileSessionStore, session_id: str, file_format: FileFormat, old_parent_id: str) -> None:
    """A rewrite's indexing overtaken by another writer's (under the lock of the file that
    writer wrote, as it): only the entry under the parent the session had before is its to
    remove, unless that is the parent it has now (its writer indexed it there, knowing it
    as the one this rewrite wrote). Ids alike but for case are left alone: one index where
    names compare without case."""
    try:
        current = store._read(session_id, file_format)
    except CorruptSessionError:
        return
    parent_id = current.metadata.parent_id if current is not None else None
    if current is not None and (parent_id or "").lower() != old_parent_id.lower():
        store._index.unindex(old_parent_id, session_id, SUFFIXES)
