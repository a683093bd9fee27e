"""A write whose commit the store did not hear the answer to (the connection was lost during
``COMMIT``): the server may have committed it or rolled it back, and the store finds out
which from the session's row before it reports, so an acknowledged write is one the database
holds and an error means the write is not there (or says that nobody can tell yet)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, TypeVar

import sqlalchemy as sa

from ..errors import StoreError
from ..models import Revision
from ._sql_engine import failure
from ._sql_rows import parse_metadata
from ._sql_schema import CLAIMED, Statements

__all__ = [
    "LOCK_WAIT_SECONDS",
    "UNKNOWN",
    "Landed",
    "Unknown",
    "gone",
    "is_revision",
    "revision_under_lock",
    "settle",
]

T = TypeVar("T")
#: Whether a write that returned ``T`` is committed, given the session's revision read after it.
Landed = Callable[[Revision | None, T], bool]
_log = logging.getLogger("simulacra_session")


class Unknown:
    """The session's revision could not be read: the server is still out of reach."""


UNKNOWN: Final = Unknown()

#: How long the check waits for the row's lock, held by the lost transaction until the server
#: has ended it: a server that has not noticed the lost connection by then leaves it unknown.
LOCK_WAIT_SECONDS = 5


def revision_under_lock(
    connection: sa.Connection, sql: Statements, table: str, session_id: str
) -> Revision | None:
    """The session's committed revision (``None``: no session), read under its row's lock.

    The lock (the write's own ``claim``; run in a transaction the caller rolls back, so its
    placeholder row never stays) waits for a transaction still holding the row, the lost one
    included, to end: what it reads is final, not a state the lost commit may still change.
    """
    dialect = connection.dialect.name
    mysql = dialect in ("mysql", "mariadb")
    if dialect == "postgresql":
        connection.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
    elif mysql:
        connection.execute(sa.text(f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}"))
    try:
        connection.execute(sql.claim, {"sid": session_id})
        updated_at, text = connection.execute(sql.lock, {"sid": session_id}).one()
    finally:
        if mysql:  # a session setting: the pooled connection goes back as it was
            connection.execute(sa.text("SET SESSION innodb_lock_wait_timeout = DEFAULT"))
    return None if updated_at == CLAIMED else Revision.of(parse_metadata(table, session_id, text))


def settle(
    operation: str,
    session_id: str,
    table: str,
    result: T,
    landed: Landed[T],
    error: sa.exc.DBAPIError,
    now: Revision | Unknown | None,
) -> T:
    """``result`` when the write that returned it, whose commit failed with ``error``, is
    committed (the session is at revision ``now``): its answer was lost, not the write.
    Otherwise ``StoreError``: the write is not there, or (``now`` is ``UNKNOWN``) nobody can
    tell until the server answers again."""
    lost = failure(operation, session_id, table, error)
    if isinstance(now, Unknown):
        raise StoreError(f"{lost} (during its commit: whether it was committed is unknown)") from error
    if not landed(now, result):
        raise lost from error
    _log.warning(
        "%s of session %r: the connection was lost during the commit, which the database had made",
        operation,
        session_id,
    )
    return result


def is_revision(now: Revision | None, written: Revision) -> bool:
    """Whether a write that made revision ``written`` is the session's state ``now``."""
    return now == written


def gone(now: Revision | None, removed: bool) -> bool:
    """Whether a delete is committed: the session is gone (``now`` is ``None``)."""
    return now is None
