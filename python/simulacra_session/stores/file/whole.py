"""A whole session file in either format: what a full rewrite writes, whether a conversion
has work to do, and the other file a rewrite removes."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from ..._beneath import open_nofollow
from ...errors import SessionNotFoundError
from ...messages import JsonObject
from ...models import SessionMetadata, StoredSession
from .._codec import encode_metadata
from . import journal
from .document import encode_document, stamp_document
from .files import OPEN_RO, fsync_dir
from .layout import OTHER, FileFormat, Layout
from .locks import remove_locked

__all__ = ["encode_whole", "journal_state", "needs_conversion", "remove_other"]


def encode_whole(
    file_format: FileFormat,
    metadata: SessionMetadata,
    messages: Sequence[JsonObject],
    existing: StoredSession | None,
    load: Callable[[str], StoredSession | None],
    layout: Layout,
    *,
    stamp: bool,
) -> tuple[bytes, SessionMetadata, int, int]:
    """The file of a session: its bytes, the metadata they hold, and for a journal the sizes of
    the metadata it already supersedes and of its last record (see ``journal.encode_full``).

    A ``.json`` document is written for the original library (see ``document``; ``load``
    reads a session, for a fork's parent, in ``layout``), stamped in whole milliseconds: after ``existing``'s
    with ``stamp`` (a save), else (a conversion) at its instants, rounded up.
    """
    if file_format == "jsonl":
        lines = journal.message_lines(metadata.id, messages, 0)
        encoded, superseded, last_commit = journal.encode_full(encode_metadata(metadata), lines)
        return encoded, metadata, superseded, last_commit
    metadata = stamp_document(metadata, existing.metadata if existing is not None else None, fresh=stamp)

    def shared(session_id: str) -> bool:
        return os.path.lexists(layout.path(session_id, "json"))

    return encode_document(metadata, messages, existing, load, shared), metadata, 0, 0


def needs_conversion(layout: Layout, session_id: str, file_format: FileFormat) -> bool:
    """Whether the session has a file in the format other than ``file_format``, to convert;
    ``SessionNotFoundError`` when it has no file at all."""
    if os.path.lexists(layout.path(session_id, OTHER[file_format])):
        return True
    if os.path.lexists(layout.path(session_id, file_format)):
        return False
    raise SessionNotFoundError(session_id)


def remove_other(
    layout: Layout, session_id: str, written: FileFormat, held: Mapping[FileFormat, int], fsync: bool
) -> bool:
    """Remove the session's file in the format other than the one just ``written`` (the older
    of two, or the one converted from), which the caller holds locked (``held``, by format),
    if its name still names that file; whether it was removed."""
    other = OTHER[written]
    if other not in held or not remove_locked(layout.path(session_id, other), held[other]):
        return False
    if fsync:
        fsync_dir(layout.root)
    return True


def journal_state(
    path: str, encoded: bytes, metadata: SessionMetadata, count: int, superseded: int, last_commit: int
) -> journal.JournalState | None:
    """What is known of the journal ``path`` just written whole (``encoded``, as ``encode_whole``
    made it, holding ``count`` messages), so the next append needs no read; ``None`` when
    ``path`` no longer ends as written (deleted or rewritten by another writer since)."""
    tail = encoded[len(encoded) - last_commit :]
    meta = metadata.to_json_dict()
    try:
        fd = open_nofollow(path, OPEN_RO)
    except FileNotFoundError:
        return None
    try:
        state = journal.JournalState(path, os.fstat(fd).st_ino, len(encoded), meta, count, superseded, tail)
        return state if journal.describes(fd, state) else None
    finally:
        os.close(fd)
