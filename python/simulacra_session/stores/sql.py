"""SqlSessionStore: sessions in SQLite, PostgreSQL or MySQL/MariaDB through SQLAlchemy.

Needs the ``sql`` extra (``pip install simulacra-session[sql]``; ``[postgres]`` and
``[mysql]`` add a driver). The schema is described in ``_sql_schema``. Every write is one
transaction that first claims the session's row (see ``Schema.claim``), so concurrent saves
of one id, from any number of connections or processes, queue instead of mixing: the last
complete save wins and every metadata merge is kept, and a write given the ``expected``
revision compares it under that lock (``ConflictError``). A load reads metadata and messages
in one statement, so it always sees one committed save. The revision is the row's
``message_count`` and ``updated_at``, columns every version of the schema has.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

try:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncEngine
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("SqlSessionStore needs SQLAlchemy: pip install 'simulacra-session[sql]'") from error


from ..errors import SessionNotFoundError
from ..history import inherits
from ..ids import validate_session_id
from ..messages import JsonObject
from ..models import (
    Revision,
    SessionMetadata,
    StoredSession,
    check_revision,
    merge_metadata,
)
from ._cancellation import finish
from ._codec import (
    check_count,
    check_page,
    check_save_args,
    check_truncation,
    encode_messages,
    starts_ids,
)
from ._restore import checked_restore
from ._sql_engine import engine_for
from ._sql_rows import parse_listing, parse_metadata, parse_session, parse_tail, write_rows
from ._sql_runner import Runner
from ._sql_schema import CLAIMED, DIALECTS, Schema, check_table_name
from ._sql_unsure import gone, is_revision

__all__ = ["SqlSessionStore"]

_NO_END = 2**31 - 1  # load_tail's end when none is given: above any message_count (an INTEGER)
_NO_LIMIT = 2**63 - 1  # the most rows a LIMIT or OFFSET names on every engine (a BIGINT)


class SqlSessionStore:
    """A ``RevisionedSessionStore`` (with ``forks``, ``append``, ``load_chain``, ``load_tail``
    and ``truncate``) in a relational database.

    ``target`` is an SQLAlchemy ``Engine``, an ``AsyncEngine`` or a URL (``sqlite:///path.db``,
    ``postgresql+psycopg://...``, ``mysql+pymysql://...``; an async driver's URL makes an
    async engine). With a sync engine the blocking calls run in a worker thread; with an async
    one they run on the event loop (its pooled connections belong to that loop: use the store
    from one loop, or give the engine ``poolclass=NullPool``). On an engine whose pool is one
    connection (``StaticPool``, as for an in-memory SQLite database) the stores using it run
    one transaction at a time. ``create`` makes the tables when they are missing and migrates
    an earlier release's in place (``_sql_migrate``); either way their schema version is
    checked on first use. An engine passed in stays the caller's; one made from a URL is
    disposed by :meth:`close` (or leaving ``async with``), and tests a pooled connection
    before using it (``pool_pre_ping``: one the server dropped is replaced, not failed on).

    Database and connection failures raise ``StoreError`` naming the operation and session. A
    write whose connection was lost during its commit is looked up in the session's row: one
    the database committed returns; else ``StoreError`` (saying so when nobody can tell yet).
    A cancelled write either never started or was committed (or rolled back) before
    ``CancelledError`` reaches the caller.
    """

    def __init__(
        self,
        target: sa.Engine | AsyncEngine | str | sa.URL,
        *,
        table: str = "simulacra_sessions",
        create: bool = True,
    ) -> None:
        self._table = check_table_name(table)
        self._owned = isinstance(target, (str, sa.URL))
        engine = engine_for(target) if isinstance(target, (str, sa.URL)) else target
        if not isinstance(engine, (sa.Engine, AsyncEngine)):
            raise TypeError(f"target must be an Engine, an AsyncEngine or a URL, got {type(target).__name__}")
        self._dialect = engine.dialect.name
        if self._dialect not in DIALECTS:
            raise ValueError(
                f"SqlSessionStore supports SQLite, PostgreSQL and MySQL/MariaDB, not {self._dialect!r}"
            )
        self._engine = engine
        self._schema = Schema.named(table)
        self._sql = self._schema.statements(self._dialect)
        self._runner = Runner(engine, self._schema, self._sql, self._dialect, self._table, create)
        self._run = self._runner.run  # each call one transaction (see _sql_runner)

    @property
    def engine(self) -> sa.Engine | AsyncEngine:
        """The SQLAlchemy engine the store runs on."""
        return self._engine

    @property
    def table(self) -> str:
        """The name of the sessions table (the others are named after it)."""
        return self._table

    def __repr__(self) -> str:
        url = self._engine.url.render_as_string(hide_password=True)
        return f"SqlSessionStore({url!r}, table={self._table!r})"

    async def close(self) -> None:
        """Dispose of the engine when the store made it from a URL; a given engine is left alone."""
        if not self._owned:
            return
        if isinstance(self._engine, AsyncEngine):
            await self._engine.dispose()
        else:
            self._engine.dispose()

    async def __aenter__(self) -> SqlSessionStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- rows ----------------------------------------------------------------------------

    def _claim(
        self, connection: sa.Connection, session_id: str, expected: Revision | None = None
    ) -> SessionMetadata | None:
        """Lock the session's row for this transaction; its metadata, ``None`` when it is new.
        ``ConflictError`` (the transaction rolls back) unless it is at revision ``expected``."""
        connection.execute(self._sql.claim, {"sid": session_id})
        updated_at, text = connection.execute(self._sql.lock, {"sid": session_id}).one()
        existing = None if updated_at == CLAIMED else parse_metadata(self._table, session_id, text)
        check_revision(session_id, expected, None if existing is None else Revision.of(existing))
        return existing

    async def _listing(
        self, operation: str, session_id: str | None, statement: sa.Select[str, str]
    ) -> builtins.list[SessionMetadata]:
        """Metadata of the sessions ``statement`` selects (id, metadata), no message read."""

        def work(connection: sa.Connection) -> builtins.list[tuple[str, str]]:
            return [(row[0], row[1]) for row in connection.execute(statement)]

        return parse_listing(self._table, await self._run(operation, session_id, work))

    # -- the store -----------------------------------------------------------------------

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        """Metadata of the sessions, most recently updated first (``limit``/``offset`` page it).

        Reads the sessions table only, never a message.
        """
        check_page(limit, offset)
        statement = self._sql.listing
        if offset:
            statement = statement.offset(min(offset, _NO_LIMIT))
        if limit is not None:
            statement = statement.limit(min(limit, _NO_LIMIT))
        return await self._listing("list", None, statement)

    async def ids_starting(self, prefix: str) -> builtins.list[str]:
        """The ids of the sessions whose id starts with ``prefix``, sorted as Python sorts them
        (the database's collation may not): the ids alone read, in one query (the command
        line's lookup of an id by a prefix of it)."""
        if not starts_ids(prefix):
            return []
        bound = {"sid": prefix, "b_length": len(prefix)}

        def work(connection: sa.Connection) -> builtins.list[str]:
            return sorted(row[0] for row in connection.execute(self._sql.ids_starting, bound))

        return await self._run("ids_starting", None, work)

    async def forks(self, id: str) -> builtins.list[SessionMetadata]:
        """Metadata of the sessions whose ``parent_id`` is ``id``, most recent first (an index lookup)."""
        validate_session_id(id)
        return await self._listing(
            "forks", id, self._sql.listing.where(self._schema.sessions.c.parent_id == id)
        )

    async def load(self, id: str) -> StoredSession | None:
        """The session's metadata and messages from one committed save, or ``None`` when absent."""
        validate_session_id(id)

        def work(connection: sa.Connection) -> builtins.list[str]:
            return [row[1] for row in connection.execute(self._sql.load, {"sid": id})]

        rows = await self._run("load", id, work)
        return parse_session(self._table, id, rows) if rows else None

    async def load_tail(self, id: str, count: int, *, end: int | None = None) -> StoredSession | None:
        """The metadata and the own messages ``[max(0, end - count), end)`` (see
        ``TailReadingStore``), in one statement reading only those rows (a range of ``seq``)."""
        validate_session_id(id)
        check_count("count", count)
        check_count("end", end)
        last = _NO_END if end is None else min(end, _NO_END)
        bounds = {"sid": id, "b_count": min(count, _NO_END), "b_end": last}

        def work(connection: sa.Connection) -> builtins.list[tuple[int, str]]:
            return [(row[0], row[1]) for row in connection.execute(self._sql.tail, bounds)]

        rows = await self._run("load_tail", id, work)
        return parse_tail(self._table, id, rows, count, last) if rows else None

    async def load_chain(self, id: str) -> builtins.list[StoredSession]:
        """The session and the ancestors it inherits from, nearest first, in one statement
        (a recursive CTE over ``parent_id``, up to ``CHAIN_DEPTH`` ancestors): see
        ``ChainLoadingStore``."""
        validate_session_id(id)

        def work(connection: sa.Connection) -> builtins.list[tuple[str, int, str]]:
            return [(row[0], row[1], row[2]) for row in connection.execute(self._sql.chain, {"sid": id})]

        rows: dict[str, builtins.list[str]] = {}
        for session_id, seq, doc in await self._run("load_chain", id, work):
            if seq == -1:
                rows[session_id] = [doc]
            else:
                rows[session_id].append(doc)
        chain: builtins.list[StoredSession] = []
        current: str | None = id
        while current is not None and current in rows:
            stored = parse_session(self._table, current, rows.pop(current))
            chain.append(stored)
            current = stored.metadata.parent_id if inherits(stored.metadata) else None
        return chain

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        """Replace the messages and merge the metadata, in one transaction.

        A value that is not JSON raises ``SerializationError`` before anything is written;
        ``ConflictError`` unless the session is at revision ``expected`` (when given),
        compared under the row's lock. Returns the new revision.
        """
        check_save_args("save", id, metadata, messages)
        encoded = encode_messages(id, messages)

        def work(connection: sa.Connection) -> Revision:
            existing = self._claim(connection, id, expected)
            merged = merge_metadata(id, existing, len(encoded), metadata)
            connection.execute(self._sql.clear_messages, {"sid": id})
            write_rows(connection, self._sql, merged, encoded, 0)
            return Revision.of(merged)

        return await finish(self._run("save", id, work, landed=is_revision))

    async def append(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        """Insert only the new messages and update the metadata, in one transaction.

        Costs what the new messages cost, whatever the session's length; a session that does
        not exist yet is created. ``ConflictError`` unless the session is at revision
        ``expected`` (when given). Returns the new revision.
        """
        check_save_args("append", id, metadata, messages)
        batch = list(messages)  # listed once, before the transaction: a retry reads it again

        def work(connection: sa.Connection) -> Revision:
            existing = self._claim(connection, id, expected)
            start = existing.message_count if existing is not None else 0
            encoded = encode_messages(id, batch, start)
            merged = merge_metadata(id, existing, start + len(encoded), metadata)
            write_rows(connection, self._sql, merged, encoded, start)
            return Revision.of(merged)

        return await finish(self._run("append", id, work, landed=is_revision))

    async def truncate(self, id: str, count: int, *, expected: Revision | None = None) -> Revision:
        """Delete the last ``count`` message rows and update the metadata, in one transaction
        under the row's lock (see ``TruncatableStore``); ``ConflictError`` unless the session
        is at revision ``expected`` (when given). Returns the new revision."""
        validate_session_id(id)
        check_count("count", count)

        def work(connection: sa.Connection) -> Revision:
            existing = self._claim(connection, id)
            if existing is None:  # the placeholder row goes with the rollback
                raise SessionNotFoundError(id)
            check_revision(id, expected, Revision.of(existing))
            kept = check_truncation(id, count, existing.message_count)
            merged = merge_metadata(id, existing, kept, None)
            connection.execute(self._sql.cut_messages, {"sid": id, "b_kept": kept})
            write_rows(connection, self._sql, merged, [], kept)
            return Revision.of(merged)

        return await finish(self._run("truncate", id, work, landed=is_revision))

    async def restore(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: SessionMetadata,
        *,
        expected: Revision | None = None,
    ) -> None:
        """Replace the session with ``messages`` and ``metadata`` as given, stamps included (see
        ``RestorableSessionStore``), in one transaction; over revision ``expected`` only, if given."""
        checked, batch = checked_restore(id, messages, metadata)
        encoded = encode_messages(id, batch)

        def work(connection: sa.Connection) -> Revision:
            self._claim(connection, id, expected)
            connection.execute(self._sql.clear_messages, {"sid": id})
            write_rows(connection, self._sql, checked, encoded, 0)
            return Revision.of(checked)

        await finish(self._run("restore", id, work, landed=is_revision))

    async def drop_tables(self) -> None:
        """Drop the store's tables, and every session in them (for tests and benchmarks).

        The next operation creates them again (when ``create`` allows).
        """

        def work(connection: sa.Connection) -> None:
            self._schema.meta.drop_all(connection, checkfirst=True)

        await self._run("drop", None, work, prepare=False)
        self._runner.ready = False

    async def delete(self, id: str) -> bool:
        """Remove the session and its messages; ``True`` when it existed."""
        validate_session_id(id)

        def work(connection: sa.Connection) -> bool:
            # the session row first, in the order saves lock; then the messages, which the
            # foreign key cascades to except on SQLite connections without foreign_keys=ON
            removed = connection.execute(self._sql.delete_session, {"sid": id}).rowcount > 0
            connection.execute(self._sql.clear_messages, {"sid": id})
            return removed

        return await finish(self._run("delete", id, work, landed=gone))
