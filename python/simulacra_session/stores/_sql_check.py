"""The SQL store's part of the store check (``doctor``): message rows against ``message_count``.

A session's rows must be numbered ``0 .. message_count - 1``: a load returns every row in
order, and an append inserts after ``message_count``. A repair, in one transaction holding
the session's row lock (as every write does), renumbers the rows in their order and sets
``message_count`` (column and metadata) to how many there are; no row is removed. Rows
whose session row is gone (possible only where foreign keys were off) are named, not removed.
Every other session is read as a load reads it: one that cannot be (a row nesting deeper
than a load reads, written by an older release or by hand) is named ``unreadable``, with
the row at fault and why, and left as it is: no repair reads it better.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..doctor import Problem
from ..errors import CorruptSessionError
from ._sql_rows import write_rows
from ._sql_schema import CLAIMED
from .sql import SqlSessionStore

__all__ = ["check_rows"]


def _mismatches(store: SqlSessionStore) -> sa.Select[str, int, int, int]:
    """Sessions whose rows are not numbered ``0 .. message_count - 1``: id, count, rows, top seq."""
    sessions, messages = store._schema.sessions, store._schema.messages
    counts = (
        sa.select(
            messages.c.session_id,
            sa.func.count().label("rows"),
            sa.func.max(messages.c.seq).label("top"),
        )
        .group_by(messages.c.session_id)
        .subquery()
    )
    rows = sa.func.coalesce(counts.c.rows, 0)
    top = sa.func.coalesce(counts.c.top, -1)
    return (
        sa.select(sessions.c.id, sessions.c.message_count, rows, top)
        .select_from(sessions.outerjoin(counts, counts.c.session_id == sessions.c.id))
        .where(sessions.c.updated_at != CLAIMED, sa.or_(rows != sessions.c.message_count, top != rows - 1))
        .order_by(sessions.c.id)
    )


def _orphans(store: SqlSessionStore) -> sa.Select[str, int]:
    sessions, messages = store._schema.sessions, store._schema.messages
    owner = sa.select(sessions.c.id).where(sessions.c.id == messages.c.session_id).exists()
    return (
        sa.select(messages.c.session_id, sa.func.count())
        .where(sa.not_(owner))
        .group_by(messages.c.session_id)
        .order_by(messages.c.session_id)
    )


async def _renumber(store: SqlSessionStore, session_id: str) -> None:
    """Renumber the session's rows in order and count them, under its row lock."""

    def work(connection: sa.Connection) -> None:
        metadata = store._claim(connection, session_id)
        if metadata is None:
            return  # deleted meanwhile
        docs = [row[1] for row in connection.execute(store._sql.load, {"sid": session_id})][1:]
        connection.execute(store._sql.clear_messages, {"sid": session_id})
        counted = metadata.model_copy(update={"message_count": len(docs)})
        write_rows(connection, store._sql, counted, [doc.encode() for doc in docs], 0)

    await store._run("repair", session_id, work)


async def check_rows(store: SqlSessionStore, repair: bool) -> list[Problem]:
    """The sessions whose message rows disagree with ``message_count``, repaired with ``repair``."""

    def work(
        connection: sa.Connection,
    ) -> tuple[list[tuple[str, int, int, int]], list[tuple[str, int]], list[str]]:
        found = [(row[0], row[1], row[2], row[3]) for row in connection.execute(_mismatches(store))]
        sessions = store._schema.sessions
        ids = sa.select(sessions.c.id).where(sessions.c.updated_at != CLAIMED).order_by(sessions.c.id)
        orphans = [(row[0], row[1]) for row in connection.execute(_orphans(store))]
        return found, orphans, [row[0] for row in connection.execute(ids)]

    mismatched, orphans, ids = await store._run("check", None, work)
    where = f"table {store.table!r}"
    problems = []
    for session_id, count, rows, top in mismatched:
        detail = f"message_count is {count}, its {rows} message rows are numbered up to {top}"
        if repair:
            await _renumber(store, session_id)
            detail += f": rows renumbered, message_count set to {rows}"
        problems.append(Problem("message_count", session_id, where, detail, repair))
    for session_id, rows in orphans:
        detail = f"{rows} message rows of a session that has no row: left as they are"
        problems.append(Problem("message_count", session_id, where, detail, False))
    counted = {found[0] for found in mismatched}  # named above: their loads say the same
    for session_id in ids:
        if session_id not in counted:
            try:
                await store.load(session_id)
            except CorruptSessionError as error:
                problems.append(Problem("unreadable", session_id, where, f"{error}: left as it is", False))
    return problems
