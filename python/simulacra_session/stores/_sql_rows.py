"""``SqlSessionStore``'s rows: a session's metadata and messages read from the JSON text the
statements return, each failure a ``CorruptSessionError`` naming the session and table, and
written (``write_rows``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from .._backend import loads
from ..errors import CorruptSessionError
from ..models import SessionMetadata, StoredSession, metadata_from_stored
from ..timestamps import format_timestamp
from ._codec import encode_metadata

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ._sql_schema import Statements

__all__ = ["parse_listing", "parse_metadata", "parse_session", "write_rows"]

_log = logging.getLogger("simulacra_session")


def parse_metadata(table: str, session_id: str, text: str) -> SessionMetadata:
    """The metadata of ``session_id`` from its row's JSON text."""
    try:
        stored = loads(text)
        if not isinstance(stored, dict):
            raise ValueError("expected a JSON object")
        return metadata_from_stored(session_id, stored)
    except (ValueError, ValidationError) as error:
        raise CorruptSessionError(
            f"corrupt session {session_id!r} in table {table!r}: invalid metadata: {error}"
        ) from None


def parse_session(table: str, session_id: str, docs: Sequence[str]) -> StoredSession:
    """The session from its rows' JSON: its metadata, then its messages in order."""
    metadata = parse_metadata(table, session_id, docs[0])
    try:
        history = loads("[" + ",".join(docs[1:]) + "]")
    except ValueError as error:
        raise CorruptSessionError(f"corrupt session {session_id!r} in table {table!r}: {error}") from None
    assert isinstance(history, list)
    return StoredSession(metadata, history)


def parse_listing(table: str, rows: Sequence[tuple[str, str]]) -> list[SessionMetadata]:
    """Metadata of listed rows; a row that cannot be read is skipped with a warning."""
    found = []
    for session_id, text in rows:
        try:
            found.append(parse_metadata(table, session_id, text))
        except CorruptSessionError as error:
            _log.warning("skipping session row: %s", error)
    return found


def write_rows(
    connection: sa.Connection, sql: Statements, merged: SessionMetadata, encoded: Sequence[bytes], start: int
) -> None:
    """Insert ``encoded`` messages from position ``start`` and store the merged metadata (the
    caller holds the session's row, ``SqlSessionStore._claim``)."""
    if encoded:
        rows = [
            {"session_id": merged.id, "seq": start + index, "message": message.decode()}
            for index, message in enumerate(encoded)
        ]
        connection.execute(sql.insert_messages, rows)
    values = {
        "sid": merged.id,
        "b_parent_id": merged.parent_id,
        "b_updated_at": format_timestamp(merged.updated),  # what list() orders by: see _sql_schema
        "b_message_count": merged.message_count,
        "b_metadata": encode_metadata(merged).decode(),
    }
    connection.execute(sql.update_session, values)
