"""Reading ``SqlSessionStore``'s rows: a session's metadata and messages from the JSON text
the statements return, each failure a ``CorruptSessionError`` naming the session and table."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import ValidationError

from .._backend import loads
from ..errors import CorruptSessionError
from ..models import SessionMetadata, StoredSession, metadata_from_stored

__all__ = ["parse_listing", "parse_metadata", "parse_session"]

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
