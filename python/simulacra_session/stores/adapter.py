"""AdapterSessionStore: sessions kept by the application's own data layer, through four functions.

The original library's ``DrizzleSessionStore`` in Python: the store owns the rules (id
checks, the metadata merge, strict JSON, isolation, ordering) and the adapter only moves
rows. Any data layer fits: an ORM, a DB-API connection, a key-value client.
"""

from __future__ import annotations

import builtins
import inspect
import logging
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypedDict, cast, runtime_checkable

from pydantic import ValidationError

from .._backend import dumps, loads
from .._shared_locks import SharedLocks
from ..errors import CorruptSessionError, SessionError, StoreError
from ..ids import validate_session_id
from ..messages import JsonObject
from ..models import (
    Revision,
    SessionMetadata,
    StoredSession,
    check_revision,
    merge_metadata,
    metadata_from_stored,
    most_recent_first,
)
from ._cancellation import finish
from ._codec import check_save_args, encode_messages, encode_metadata, page
from ._restore import checked_restore

__all__ = ["AdapterSessionStore", "SessionAdapter", "SessionRow"]

_log = logging.getLogger("simulacra_session")

#: The lock of each session id that every ``AdapterSessionStore`` of the process holds to
#: write it, whatever its adapter and event loop: nothing tells whether two adapters reach
#: the same rows, so every store of the process takes the id's turn.
_WRITES = SharedLocks()


class SessionRow(TypedDict):
    """One session as the adapter stores it (the original library's ``DrizzleSessionRow``).

    ``metadata`` is the session's metadata without its id and ``messages`` its own messages:
    plain JSON values, fresh for each upsert (store them as JSON columns or ``json.dumps``
    them). ``updated_at`` repeats ``metadata["updated_at"]`` for an indexed column.
    """

    id: str
    metadata: dict[str, Any]
    messages: list[Any]
    updated_at: str


@runtime_checkable
class SessionAdapter(Protocol):
    """The four functions an ``AdapterSessionStore`` calls; each may be sync or ``async``.

    Rows handed back are mappings with ``id`` (``list`` only), ``metadata`` and ``messages``
    (``load`` only), as JSON values or JSON text.
    """

    def list(self) -> Iterable[Mapping[str, Any]] | Awaitable[Iterable[Mapping[str, Any]]]:
        """Every session row (``id`` and ``metadata``; ``messages`` may be left out)."""
        ...

    def load(self, id: str) -> Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None:
        """The row of ``id`` (``metadata`` and ``messages``), or ``None``."""
        ...

    def upsert(self, row: SessionRow) -> object:
        """Insert ``row``, or replace the row with its id."""
        ...

    def delete(self, id: str) -> bool | Awaitable[bool]:
        """Remove the row of ``id``; ``True`` when there was one."""
        ...


def _json(value: Any, what: str) -> Any:
    """A private copy of a JSON value handed over by the adapter (``str``/``bytes``: JSON text)."""
    try:
        return loads(value) if isinstance(value, (str, bytes, bytearray)) else loads(dumps(value))
    except (ValueError, SessionError) as error:
        raise CorruptSessionError(f"corrupt {what}: {error}") from None


class AdapterSessionStore:
    """A ``RevisionedSessionStore`` (with ``forks``) over an application's adapter (see
    ``SessionAdapter``).

    A save is a read of the row, the check of ``expected`` against it, and an upsert. Within
    the process, the writes of one id (``save``, ``delete``, ``restore``) never interleave,
    whatever the number of these stores, of their adapters and of the event loops they run
    on (one lock per id serves them all: an adapter must not itself write through another
    of these stores), so a stale writer of this process is refused. The adapter has no
    conditional write, so across processes the check and the upsert are not atomic: two
    processes saving one session at once may both pass the check, and the later upsert
    replaces the other's row, acknowledged messages included (where several processes
    write one session, use ``SqlSessionStore`` or ``FileSessionStore``). An adapter's own
    failure is raised as a ``StoreError`` naming the operation and session (the original
    exception as its cause). A cancelled write either never reached the adapter or
    completed before ``CancelledError`` reaches the caller.
    It has no ``load_tail`` nor ``truncate``: the adapter moves whole rows, so
    ``history.read_tail`` and ``history.truncate`` load and save the whole session here.
    """

    def __init__(self, adapter: SessionAdapter) -> None:
        missing = [
            name
            for name in ("list", "load", "upsert", "delete")
            if not callable(getattr(adapter, name, None))
        ]
        if missing:
            raise TypeError(f"adapter {type(adapter).__name__} lacks {', '.join(missing)}")
        self._adapter = adapter

    @property
    def adapter(self) -> SessionAdapter:
        """The adapter rows go through."""
        return self._adapter

    async def _adapter_call(self, operation: str, session_id: str | None, *args: Any) -> Any:
        """Call the adapter's ``operation`` (awaiting it when it is async); its failures as ``StoreError``."""
        try:
            result = getattr(self._adapter, operation)(*args)
            return await result if inspect.isawaitable(result) else result
        except SessionError:
            raise
        except Exception as error:
            subject = f"session {session_id!r}" if session_id is not None else "sessions"
            raise StoreError(
                f"adapter {operation} of {subject} failed: {type(error).__name__}: {error}"
            ) from error

    def _metadata(self, session_id: str, stored: Any) -> SessionMetadata:
        metadata = _json(stored, f"metadata of session {session_id!r}")
        if not isinstance(metadata, dict):
            raise CorruptSessionError(f"corrupt metadata of session {session_id!r}: expected a JSON object")
        try:
            return metadata_from_stored(session_id, metadata)
        except ValidationError as error:
            raise CorruptSessionError(f"corrupt metadata of session {session_id!r}: {error}") from None

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        """Metadata of the sessions, most recent first; rows that cannot be read are skipped (logged)."""
        rows = await self._adapter_call("list", None)
        found = []
        for row in rows:
            session_id = row.get("id")
            try:
                validate_session_id(session_id)
                found.append(self._metadata(session_id, row.get("metadata")))
            except (CorruptSessionError, ValueError) as error:
                _log.warning("skipping adapter row %r: %s", session_id, error)
        return page(most_recent_first(found), limit, offset)

    async def forks(self, id: str) -> builtins.list[SessionMetadata]:
        """Metadata of the sessions whose ``parent_id`` is ``id``, most recent first."""
        validate_session_id(id)
        return [meta for meta in await self.list() if meta.parent_id == id]

    async def load(self, id: str) -> StoredSession | None:
        """The session from the adapter's row, or ``None``; ``CorruptSessionError`` naming the id."""
        validate_session_id(id)
        row = await self._adapter_call("load", id, id)
        if row is None:
            return None
        messages = _json(row.get("messages"), f"messages of session {id!r}")
        if not isinstance(messages, builtins.list):
            raise CorruptSessionError(f"corrupt messages of session {id!r}: expected a JSON array")
        return StoredSession(self._metadata(id, row.get("metadata")), messages)

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        """Merge the metadata into the stored row's and upsert the new row; the new revision.

        Nothing reaches the adapter when a value is not JSON (``SerializationError``), or when
        the row read is not at revision ``expected`` (``ConflictError``; see the class).
        """
        check_save_args("save", id, metadata, messages)
        encoded = encode_messages(id, messages)
        return await finish(self._save(id, encoded, metadata, expected))

    async def _save(
        self,
        session_id: str,
        encoded: builtins.list[bytes],
        metadata: Mapping[str, Any] | None,
        expected: Revision | None,
    ) -> Revision:
        async with _WRITES.held(session_id):
            existing = await self._checked(session_id, expected)
            merged = merge_metadata(session_id, existing, len(encoded), metadata)
            await self._upsert(merged, encoded)
            return Revision.of(merged)

    async def _upsert(self, metadata: SessionMetadata, encoded: builtins.list[bytes]) -> None:
        """Hand the adapter the row of a session: fresh copies of its metadata and messages."""
        stored = loads(encode_metadata(metadata))
        copies = loads(b"[" + b",".join(encoded) + b"]")
        new_row = SessionRow(
            id=metadata.id,
            metadata=cast(dict[str, Any], stored),
            messages=cast(list[Any], copies),
            updated_at=metadata.updated_at,
        )
        await self._adapter_call("upsert", metadata.id, new_row)

    async def delete(self, id: str) -> bool:
        """Remove the session; ``True`` when the adapter had it."""
        validate_session_id(id)
        return await finish(self._delete(id))

    async def _delete(self, session_id: str) -> bool:
        async with _WRITES.held(session_id):
            return bool(await self._adapter_call("delete", session_id, session_id))

    async def restore(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: SessionMetadata,
        *,
        expected: Revision | None = None,
    ) -> None:
        """Upsert the session with ``messages`` and ``metadata`` as given, timestamps included
        (see ``RestorableSessionStore``). Nothing reaches the adapter when a value is not JSON,
        or when the row read is not at revision ``expected`` (``ConflictError``)."""
        checked, batch = checked_restore(id, messages, metadata)
        encoded = encode_messages(id, batch)
        await finish(self._restore(checked, encoded, expected))

    async def _restore(
        self, metadata: SessionMetadata, encoded: builtins.list[bytes], expected: Revision | None
    ) -> None:
        async with _WRITES.held(metadata.id):
            if expected is not None:
                await self._checked(metadata.id, expected)
            await self._upsert(metadata, encoded)

    async def _checked(self, session_id: str, expected: Revision | None) -> SessionMetadata | None:
        """The stored metadata (``None``: absent), read under the session's write lock;
        ``ConflictError`` unless the session is at revision ``expected`` (when given)."""
        row = await self._adapter_call("load", session_id, session_id)
        existing = None if row is None else self._metadata(session_id, row.get("metadata"))
        check_revision(session_id, expected, None if existing is None else Revision.of(existing))
        return existing
