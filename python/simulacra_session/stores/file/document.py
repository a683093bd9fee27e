"""The ``{id}.json`` document, written so that the original library reads what we read.

The document is ``{"metadata": {...}, "messages": [...]}`` (``stores._codec``). Two
things the original reads differently from us are written its way here:

- **Timestamps** are whole milliseconds (``2026-01-02T03:04:05.123Z``): the original
  orders sessions by comparing ``updated_at`` as strings, and texts of one length compare
  as their instants do.
- **Forks it would resolve differently.** The original ignores ``fork_message_count``: a
  fork with no ``fork_message_id`` (its fork point has no id, or its parent was empty) is
  to it a fork of the parent's whole current history, which grows with the parent; and a
  parent kept as a journal it does not see at all. Such a fork is written as the
  original's *detached* fork holding a copy of what it inherits, followed by its own
  messages, with ``"copied_from_parent": N`` saying how many of them are copies. We read
  it back as what it is to us, an attached fork storing its own messages (the copies are
  reused when it is rewritten, and stand in for its parent should the parent be deleted:
  ``StoredSession.parent_copy``), so both libraries resolve it to the same history. A
  document whose copy count does not fit its messages (the original rewrote it) is read as
  the original reads it: a detached fork.

Damage: a document carries no checksum, since the original library reads and rewrites it
and would neither write one nor keep one true (its writes could not be told from damage).
What it has instead: it is only ever replaced whole, by an atomic rename, so never torn;
it must parse as JSON of the document's shape with valid metadata, else it is
``CorruptSessionError`` naming the file (``list()`` skips it) and is moved aside before a
save replaces it. A flipped bit inside a string is not detected: the journal format
(``journal``, ``records``) is the one that detects every damaged byte.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...history import inherits, resolve_history_sync
from ...messages import JsonObject
from ...models import SessionMetadata, StoredSession, metadata_from_stored
from ...timestamps import in_millis, next_timestamp
from .._codec import decode_session, dump_document, stored_metadata

__all__ = ["COPIED_KEY", "decode_document", "encode_document", "stamp_document"]

#: The metadata key counting the parent's messages copied at the start of a fork's document.
COPIED_KEY = "copied_from_parent"


def decode_document(session_id: str, data: bytes, where: str) -> StoredSession:
    """Parse a ``.json`` document (``CorruptSessionError`` naming ``where``), copies set apart."""
    stored = decode_session(session_id, data, where)
    metadata = stored.metadata
    count = (metadata.model_extra or {}).get(COPIED_KEY)
    if count is None or metadata.detached is not True:
        return stored
    if type(count) is not int or not 0 <= count <= min(len(stored.messages), metadata.message_count):
        return stored  # not copies we wrote: the fork the original library sees
    own = metadata.to_json_dict()
    del own[COPIED_KEY]
    own.update(detached=False, message_count=metadata.message_count - count)
    own_metadata = metadata_from_stored(session_id, own)
    return StoredSession(own_metadata, stored.messages[count:], stored.messages[:count])


def _copies(
    metadata: SessionMetadata,
    existing: StoredSession | None,
    load: Callable[[str], StoredSession | None],
    shared: Callable[[str], bool],
) -> list[dict[str, Any]] | None:
    """The parent's messages to copy into the fork's document, ``None`` for none.

    Only a fork the original library would resolve to more than it inherits gets copies:
    those ``existing`` holds when it is the same fork, else the first ``fork_message_count``
    messages of its parent's history, resolved through ``load``. None when the parent is
    gone: the original, like us, then sees the fork's own messages. ``shared(id)`` tells
    whether a session is a ``.json`` document, which the original reads.
    """
    count = metadata.fork_message_count
    parent_id = metadata.parent_id
    if not inherits(metadata) or count is None or parent_id is None:
        return None
    if metadata.fork_message_id is not None and count > 0 and shared(parent_id):  # it cuts there too
        return None
    if count == 0:
        return []
    kept = existing.parent_copy if existing is not None and existing.metadata.parent_id == parent_id else None
    if kept is not None and len(kept) == count:
        return kept
    resolved = resolve_history_sync(load, parent_id)
    if resolved is None or len(resolved.messages) < count:
        return None
    return resolved.messages[:count]


def encode_document(
    metadata: SessionMetadata,
    messages: Sequence[JsonObject],
    existing: StoredSession | None,
    load: Callable[[str], StoredSession | None],
    shared: Callable[[str], bool],
) -> bytes:
    """The document of a session (``existing``: as stored before), with copies of what it
    inherits when the original library needs them (see ``_copies``). ``SerializationError``
    naming the session and the path when a value is not JSON."""
    meta = stored_metadata(metadata)
    copied = _copies(metadata, existing, load, shared)
    if copied is not None:
        meta.update({"detached": True, "message_count": len(copied) + len(messages), COPIED_KEY: len(copied)})
        messages = [*copied, *messages]
    return dump_document(metadata.id, meta, messages)


def stamp_document(
    metadata: SessionMetadata, previous: SessionMetadata | None, *, fresh: bool
) -> SessionMetadata:
    """``metadata`` stamped in whole milliseconds: a save (``fresh``) after ``previous``'s stamp, a
    conversion with the instants it has, rounded up."""
    if not fresh:
        stamps = {"updated_at": in_millis(metadata.updated_at), "created_at": in_millis(metadata.created_at)}
        return metadata.model_copy(update=stamps)
    updated = next_timestamp(previous.updated_at if previous is not None else None, millis=True)
    created = previous.created_at if previous is not None else updated
    return metadata.model_copy(update={"updated_at": updated, "created_at": created})
