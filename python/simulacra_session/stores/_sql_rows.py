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
from ._codec import TOO_DEEP, encode_metadata, too_deep

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ._sql_schema import Statements

__all__ = ["parse_listing", "parse_metadata", "parse_session", "parse_tail", "write_rows"]

_log = logging.getLogger("simulacra_session")


def _why(error: ValueError) -> str:
    """The parser's ``error`` in words: too deep, with its reason, or the reason alone."""
    return f"{TOO_DEEP} ({error})" if too_deep(str(error)) else str(error)


def parse_metadata(table: str, session_id: str, text: str) -> SessionMetadata:
    """The metadata of ``session_id`` from its row's JSON text."""
    try:
        stored = loads(text)
        if not isinstance(stored, dict):
            raise ValueError("expected a JSON object")
        return metadata_from_stored(session_id, stored)
    except ValidationError as error:
        why = str(error)
    except ValueError as error:
        why = _why(error)
    raise CorruptSessionError(f"corrupt session {session_id!r} in table {table!r}: invalid metadata: {why}")


def parse_session(table: str, session_id: str, docs: Sequence[str]) -> StoredSession:
    """The session from its rows' JSON: its metadata, then all its messages in order.

    Rows that do not hold as many messages as the metadata counts (a row holding two, a
    count the rows do not make: edited by hand) are a ``CorruptSessionError``, never loaded
    as the session: a truncate or an append would then remove or number the wrong ones.
    """
    stored = _parse(table, session_id, docs, range(len(docs) - 1))
    count = stored.metadata.message_count
    if len(stored.messages) != count or len(docs) - 1 != count:
        raise _miscounted(table, session_id, docs, stored, f"its metadata says {count}")
    return stored


def parse_tail(
    table: str, session_id: str, rows: Sequence[tuple[int, str]], count: int, end: int
) -> StoredSession:
    """The session's metadata and its messages ``[max(0, stop - count), stop)``, ``stop`` the
    least of ``end`` and ``message_count``, from ``load_tail``'s (seq, JSON) rows; rows
    numbered otherwise, or holding another number of messages, are a ``CorruptSessionError``
    as in ``parse_session`` (the statement bounds them by the ``message_count`` column)."""
    docs = [row[1] for row in rows]
    stored = _parse(table, session_id, docs, [row[0] for row in rows[1:]])
    stop = min(end, stored.metadata.message_count)
    start = max(0, stop - count)
    wanted = stop - start
    if (
        len(stored.messages) != wanted
        or len(rows) - 1 != wanted
        or (wanted and (rows[1][0], rows[-1][0]) != (start, stop - 1))  # seqs are unique
    ):
        said = f"its metadata says {stored.metadata.message_count}: {wanted} from message {start}"
        raise _miscounted(table, session_id, docs, stored, said)
    return stored


def _parse(table: str, session_id: str, docs: Sequence[str], seqs: Sequence[int]) -> StoredSession:
    """The metadata (``docs[0]``) and the messages the other rows (numbered ``seqs``) hold."""
    metadata = parse_metadata(table, session_id, docs[0])
    try:
        history = loads("[" + ",".join(docs[1:]) + "]")
    except ValueError as error:
        raise _unreadable(table, session_id, docs[1:], seqs, error) from None
    assert isinstance(history, list)
    return StoredSession(metadata, history)


def _unreadable(
    table: str, session_id: str, docs: Sequence[str], seqs: Sequence[int], error: ValueError
) -> CorruptSessionError:
    """The error naming the first message row that cannot be read, its number and why (the
    rows are read as one array, so the parser's own position says nothing of which row).
    Each row is read in an array of its own, as deep as in theirs: one 128 deep is named."""
    where = f"corrupt session {session_id!r} in table {table!r}"
    for seq, doc in zip(seqs, docs, strict=True):
        try:
            loads("[" + doc + "]")
        except ValueError as fault:
            return CorruptSessionError(f"{where}: its message {seq} {_why_row(fault)}")
    return CorruptSessionError(f"{where}: {error}")  # each row reads: "[" + rows + "]" does not


def _why_row(error: ValueError) -> str:
    """Why a message row cannot be read, in the words a journal record's fault has."""
    why = _why(error)
    return why if why.startswith(TOO_DEEP) else f"cannot be read ({why})"


def _miscounted(
    table: str, session_id: str, docs: Sequence[str], stored: StoredSession, said: str
) -> CorruptSessionError:
    held = f"{len(docs) - 1} message rows holding {len(stored.messages)} messages"
    return CorruptSessionError(f"corrupt session {session_id!r} in table {table!r}: {held}, {said}")


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
