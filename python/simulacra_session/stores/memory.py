"""InMemorySessionStore: sessions in a dict, for tests and development; gone on exit."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._backend import dumps
from ..errors import SessionNotFoundError
from ..ids import validate_session_id
from ..messages import JsonObject
from ..models import (
    Revision,
    SessionMetadata,
    StoredSession,
    auto_saved_metadata,
    check_revision,
    dump_metadata,
    merge_metadata,
    most_recent_first,
)
from ._codec import (
    check_count,
    check_save_args,
    check_truncation,
    decode_session,
    encode_messages,
    page,
    stored_metadata,
)
from ._restore import checked_restore

__all__ = ["InMemorySessionStore"]


@dataclass(frozen=True)
class _Entry:
    """One session as bytes: its metadata, and each message serialized on its own; also the
    metadata's JSON dict, never handed out, for auto-saves to update without a model."""

    metadata: bytes
    messages: list[bytes]
    meta: dict[str, Any]
    stamp: tuple[str, int] | None = None  # ``updated_at`` and its instant, when an auto-save made it

    @classmethod
    def of(cls, metadata: SessionMetadata, messages: list[bytes]) -> _Entry:
        meta = stored_metadata(metadata)
        return cls(dump_metadata(meta), messages, meta)  # checked as deep as ``document`` holds it

    def document(self, messages: list[bytes] | None = None) -> bytes:
        chosen = self.messages if messages is None else messages
        return b'{"metadata":%b,"messages":[%b]}' % (self.metadata, b",".join(chosen))

    def decoded_metadata(self, session_id: str) -> SessionMetadata:
        return decode_session(session_id, self.document_head(), f"id {session_id!r}").metadata

    def document_head(self) -> bytes:
        return b'{"metadata":%b,"messages":[]}' % self.metadata

    @property
    def revision(self) -> Revision:
        return Revision(len(self.messages), self.meta["updated_at"])


class InMemorySessionStore:
    """A non-persistent ``RevisionedSessionStore`` (with ``forks``, ``append``, ``load_tail``
    and ``truncate``) holding serialized bytes.

    Keeping bytes rather than objects means nothing a caller mutates after ``save`` or
    ``load`` leaks in or out, and it rejects exactly what the file store rejects. Messages
    are serialized one by one, so ``append`` costs only the new ones. Each method runs
    without yielding to the event loop, so a save's read-merge-write never interleaves, and
    a cancelled call either never started or completed. A lock makes the same hold between
    threads, each with its own event loop (LangChain's sync calls run on a loop thread of
    their own): reads copy what they decode under it, writes run whole under it.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        """Metadata of the sessions, most recently updated first (``limit``/``offset`` page it)."""
        with self._lock:
            entries = builtins.list(self._sessions.items())
        found = [entry.decoded_metadata(key) for key, entry in entries]
        return page(most_recent_first(found), limit, offset)

    async def load(self, id: str) -> StoredSession | None:
        """The session, decoded afresh from its bytes, or ``None`` when absent."""
        validate_session_id(id)
        with self._lock:
            entry = self._sessions.get(id)
            document = None if entry is None else entry.document()
        return None if document is None else decode_session(id, document, f"id {id!r}")

    async def load_tail(self, id: str, count: int, *, end: int | None = None) -> StoredSession | None:
        """The metadata and the own messages ``[max(0, end - count), end)`` (see
        ``TailReadingStore``), decoding only those."""
        validate_session_id(id)
        check_count("count", count)
        check_count("end", end)
        with self._lock:
            entry = self._sessions.get(id)
            if entry is None:
                return None
            stop = len(entry.messages) if end is None else min(end, len(entry.messages))
            document = entry.document(entry.messages[max(0, stop - count) : stop])
        return decode_session(id, document, f"id {id!r}")

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        """Replace the messages and merge the metadata; the old bytes stay on any error.
        ``ConflictError`` unless the session is at revision ``expected`` (when given)."""
        with self._lock:
            return self._save_now(id, messages, metadata, expected, "save")

    async def append(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        """Add messages after the stored ones and merge the metadata; all or nothing.
        ``ConflictError`` unless the session is at revision ``expected`` (when given)."""
        with self._lock:
            return self._append_now(id, messages, metadata, expected)

    def _save_now(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None,
        expected: Revision | None,
        method: str,
    ) -> Revision:
        check_save_args(method, id, metadata, messages)
        encoded = encode_messages(id, messages)
        previous = self._sessions.get(id)
        check_revision(id, expected, previous.revision if previous else None)
        existing = previous.decoded_metadata(id) if previous else None
        entry = self._sessions[id] = _Entry.of(merge_metadata(id, existing, len(encoded), metadata), encoded)
        return entry.revision

    def _append_now(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None,
        expected: Revision | None,
    ) -> Revision:
        check_save_args("append", id, metadata, messages)
        previous = self._sessions.get(id)
        if previous is None:
            return self._save_now(id, messages, metadata, expected, "append")
        encoded = encode_messages(id, messages, len(previous.messages))
        check_revision(id, expected, previous.revision)
        count = len(previous.messages) + len(encoded)
        if metadata:
            merged = merge_metadata(id, previous.decoded_metadata(id), count, metadata)
            entry = _Entry.of(merged, previous.messages)
        else:  # an auto-save: merge_metadata's rule, without the model
            meta, stamp = auto_saved_metadata(previous.meta, count, previous.stamp)
            entry = _Entry(dumps(meta), previous.messages, meta, stamp)
        entry.messages.extend(encoded)  # nothing can fail now: the list is only ever extended
        self._sessions[id] = entry
        return entry.revision

    async def truncate(self, id: str, count: int, *, expected: Revision | None = None) -> Revision:
        """Remove the last ``count`` own messages (see ``TruncatableStore``); all or nothing.
        ``ConflictError`` unless the session is at revision ``expected`` (when given)."""
        validate_session_id(id)
        check_count("count", count)
        with self._lock:
            previous = self._sessions.get(id)
            if previous is None:
                raise SessionNotFoundError(id)
            check_revision(id, expected, previous.revision)
            kept = check_truncation(id, count, len(previous.messages))
            meta, stamp = auto_saved_metadata(previous.meta, kept, previous.stamp)
            entry = _Entry(dumps(meta), previous.messages, meta, stamp)
            del entry.messages[kept:]  # nothing can fail now; no other entry holds the list
            self._sessions[id] = entry
            return entry.revision

    async def delete(self, id: str) -> bool:
        """Remove the session; ``True`` when it existed."""
        validate_session_id(id)
        with self._lock:
            return self._sessions.pop(id, None) is not None

    async def forks(self, id: str) -> builtins.list[SessionMetadata]:
        """Metadata of the sessions whose ``parent_id`` is ``id``, most recent first."""
        validate_session_id(id)
        return [meta for meta in await self.list() if meta.parent_id == id]

    async def restore(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: SessionMetadata,
        *,
        expected: Revision | None = None,
    ) -> None:
        """Replace the session with ``messages`` and ``metadata`` as given, timestamps included
        (see ``RestorableSessionStore``); the old bytes stay on any error. ``ConflictError``
        unless the session is at revision ``expected`` (when given)."""
        checked, batch = checked_restore(id, messages, metadata)
        entry = _Entry.of(checked, encode_messages(id, batch))
        with self._lock:
            previous = self._sessions.get(id)
            check_revision(id, expected, previous.revision if previous else None)
            self._sessions[id] = entry
