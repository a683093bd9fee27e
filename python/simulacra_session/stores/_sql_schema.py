"""The relational schema of ``SqlSessionStore``: its tables, column types and dialect statements.

Three tables, named after the ``table`` argument (default ``simulacra_sessions``)::

    {table}           id (primary key), parent_id (indexed), updated_at (indexed), message_count,
                      metadata: the session's metadata without its id, a JSON object
    {table}_messages  session_id -> {table}.id (on delete cascade), seq, message;
                      primary key (session_id, seq): the session's own messages in order
    {table}_schema    name, version: ("simulacra-session", 2), so later releases can migrate

JSON is bound and read as text, exactly the bytes the hot-path ``dumps`` writes, in ``json``
on PostgreSQL (kept verbatim), ``LONGTEXT`` on MySQL/MariaDB (MySQL's ``JSON`` would reorder
keys) and ``TEXT`` on SQLite, metadata and messages alike: so every JSON value round-trips,
``"\\u0000"`` and lone surrogate escapes included. Version 1 kept metadata as ``JSONB`` on
PostgreSQL, which refuses both, and ``JSON`` on MySQL/MariaDB, which reorders keys (MySQL)
or refuses a lone surrogate (MariaDB): ``_sql_migrate`` changes the column in place.
Nothing parses the JSON in the database (see ``Schema._inherits``). ``updated_at`` is the
metadata's stamp in the fixed-width ISO 8601 UTC form this library writes (a restored stamp
in any other form is rewritten in it; the metadata keeps the text), so it sorts
chronologically. Ids compare case-sensitively everywhere (a binary collation on
MySQL/MariaDB, whose default one ignores case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql.compiler import TypeCompiler

__all__ = [
    "CHAIN_DEPTH",
    "CLAIMED",
    "DIALECTS",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "Schema",
    "Statements",
    "check_table_name",
]

SCHEMA_NAME = "simulacra-session"
SCHEMA_VERSION = 2
#: Dialect names the store knows how to lock rows on (MariaDB reports "mariadb" or "mysql").
DIALECTS = frozenset({"sqlite", "postgresql", "mysql", "mariadb"})
#: Ancestors one ``chain`` statement follows at most: below MySQL's default
#: ``cte_max_recursion_depth`` (1000), and a bound on what a corrupt cycle makes it read.
CHAIN_DEPTH = 500
#: The ``updated_at`` of a row a write has claimed, not yet written (``Statements.claim``):
#: no session. It never outlives the write's transaction, where reads meet it.
CLAIMED = ""
#: The longest name made from it, ``ix_{table}_updated_at``, stays within PostgreSQL's 63.
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}")


def check_table_name(name: object) -> str:
    """``name`` when it is a plain SQL identifier of at most 48 characters, else ``ValueError``."""
    if not isinstance(name, str) or _TABLE_NAME.fullmatch(name) is None:
        raise ValueError(
            f"table must be 1-48 characters of A-Z a-z 0-9 _, not starting with a digit: {name!r}"
        )
    return name


class JsonText(sa.types.UserDefinedType[str]):
    """JSON kept as text in Python and in the database, in a column that keeps it verbatim.

    A user-defined type, so no driver-side JSON encoding or bind cast gets in the way: the
    store binds the ``dumps`` bytes as a string and reads the column back cast to text.
    """

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "TEXT"


@compiles(JsonText, "postgresql")
def _postgresql_json(element: JsonText, compiler: TypeCompiler, **kw: Any) -> str:
    return "JSON"


@compiles(JsonText, "mysql")
@compiles(JsonText, "mariadb")
def _mysql_json(element: JsonText, compiler: TypeCompiler, **kw: Any) -> str:
    return "LONGTEXT"


def _id_type() -> sa.types.TypeEngine[str]:
    binary = mysql.VARCHAR(128, charset="ascii", collation="ascii_bin")
    return sa.String(128).with_variant(binary, "mysql", "mariadb")


@dataclass(frozen=True)
class Schema:
    """The three tables of one store, and the statements that differ between dialects."""

    meta: sa.MetaData
    sessions: sa.Table
    messages: sa.Table
    version: sa.Table

    @classmethod
    def named(cls, table: str) -> Schema:
        meta = sa.MetaData()
        options: dict[str, Any] = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}
        sessions = sa.Table(
            table,
            meta,
            sa.Column("id", _id_type(), primary_key=True),
            sa.Column("parent_id", _id_type(), nullable=True, index=True),
            sa.Column("updated_at", sa.String(32), nullable=False, index=True),
            sa.Column("message_count", sa.Integer, nullable=False),
            sa.Column("metadata", JsonText(), nullable=False),
            **options,
        )
        messages = sa.Table(
            f"{table}_messages",
            meta,
            sa.Column(
                "session_id",
                _id_type(),
                # named: MariaDB refuses the name it would make (f"{table}_messages_ibfk_1") at 64
                sa.ForeignKey(sessions.c.id, ondelete="CASCADE", name=f"{table}_messages_fk"),
                primary_key=True,
            ),
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("message", JsonText(), nullable=False),
            **options,
        )
        version = sa.Table(
            f"{table}_schema",
            meta,
            sa.Column("name", sa.String(64), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            **options,
        )
        return cls(meta, sessions, messages, version)

    def create(self, connection: sa.Connection, dialect: str) -> None:
        """Create the tables and indexes that are missing.

        SQLite and PostgreSQL get ``IF NOT EXISTS``, so stores starting together in several
        processes never trip over each other's tables. MySQL has no ``CREATE INDEX IF NOT
        EXISTS``: there each object is checked first, and a lost race is tried again.
        """
        if dialect not in ("sqlite", "postgresql"):
            self.meta.create_all(connection, checkfirst=True)
            return
        for table in self.meta.sorted_tables:
            connection.execute(CreateTable(table, if_not_exists=True))
            for index in sorted(table.indexes, key=lambda index: str(index.name)):
                connection.execute(CreateIndex(index, if_not_exists=True))

    def record_version(self, dialect: str) -> sa.Executable:
        """Insert this release's schema version unless a version is recorded already."""
        values = {"name": SCHEMA_NAME, "version": SCHEMA_VERSION}
        return _insert_if_absent(dialect, self.version, values, "name")

    def as_text(self, dialect: str, column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
        """``column`` as the JSON text stored (PostgreSQL drivers would otherwise parse it)."""
        return sa.cast(column, sa.Text) if dialect == "postgresql" else column

    def _inherits(self, dialect: str, sessions: sa.FromClause) -> sa.ColumnElement[int]:
        """1 where the row is an attached fork (a parent, not ``detached``), else 0.

        Only a bound on how far ``chain`` reads: the store decides from the parsed metadata.
        A match on the JSON text, never a parse in the database (PostgreSQL's ``->>`` fails on
        a document holding ``\\u0000`` or a lone surrogate, MariaDB's ``JSON_EXTRACT`` gives
        NULL): ``"detached":true`` as ``dumps`` writes it, or ``"detached": true`` as a
        version 1 table's ``JSONB`` or ``JSON`` column left it. The same pair nested in some
        other value also stops the walk there, which costs one more statement, nothing else.
        """
        text = sa.type_coerce(self.as_text(dialect, sessions.c.metadata), sa.Text)
        detached = sa.or_(text.contains('"detached":true'), text.contains('"detached": true'))
        parent = sessions.c.parent_id
        attached = sa.and_(parent.is_not(None), parent != "", sa.not_(detached))
        return sa.case((attached, sa.literal_column("1")), else_=sa.literal_column("0"))

    def _chain(self, dialect: str, sid: sa.BindParameter[str]) -> sa.CompoundSelect[str, int, str]:
        """The session, and the ancestors it inherits from up to ``CHAIN_DEPTH``: (id, seq, doc)
        rows, ``seq`` -1 for a session's metadata, then its messages, ordered by id and seq."""
        sessions, messages = self.sessions, self.messages
        start = sa.select(
            sessions.c.id,
            sessions.c.parent_id,
            self._inherits(dialect, sessions).label("inherits"),
            sa.literal_column("0").label("depth"),
        ).where(sessions.c.id == sid)
        walk = start.cte("chain", recursive=True)
        ancestor = sessions.alias("ancestor")
        walk = walk.union_all(
            sa.select(
                ancestor.c.id,
                ancestor.c.parent_id,
                self._inherits(dialect, ancestor),
                walk.c.depth + sa.literal_column("1"),
            ).where(ancestor.c.id == walk.c.parent_id, walk.c.inherits == 1, walk.c.depth < CHAIN_DEPTH)
        )
        members = sa.select(walk.c.id)
        return sa.union_all(
            sa.select(
                sessions.c.id, sa.literal(-1).label("seq"), self.as_text(dialect, sessions.c.metadata)
            ).where(sessions.c.id.in_(members)),
            sa.select(messages.c.session_id, messages.c.seq, self.as_text(dialect, messages.c.message)).where(
                messages.c.session_id.in_(members)
            ),
        ).order_by(sa.literal_column("1"), sa.literal_column("2"))

    def _tail(self, dialect: str, sid: sa.BindParameter[str]) -> sa.CompoundSelect[int, str]:
        """The session's metadata (``seq`` -1) and its own messages ``[max(0, end - count),
        end)``, ``end`` clamped to ``message_count``: (seq, doc) rows in order. One statement,
        so one committed state, and a range of the messages' primary key: its cost is the
        ``b_count`` rows it reads, whatever the session's length (``b_end``: the end, or a
        bound above every count)."""
        sessions, messages = self.sessions, self.messages
        count = sa.select(sessions.c.message_count).where(sessions.c.id == sid).scalar_subquery()
        end: sa.BindParameter[int] = sa.bindparam("b_end", type_=sa.Integer)
        stop = sa.case((count < end, count), else_=end)
        return sa.union_all(
            sa.select(
                sa.literal(-1).label("seq"), self.as_text(dialect, sessions.c.metadata).label("doc")
            ).where(sessions.c.id == sid),
            sa.select(messages.c.seq, self.as_text(dialect, messages.c.message)).where(
                messages.c.session_id == sid,
                messages.c.seq >= stop - sa.bindparam("b_count", type_=sa.Integer),
                messages.c.seq < stop,
            ),
        ).order_by(sa.literal_column("seq"))

    def statements(self, dialect: str) -> Statements:
        """The store's statements for ``dialect``, built once: executing them skips SQLAlchemy's
        statement construction, and their compiled form is cached."""
        sessions, messages = self.sessions, self.messages
        sid: sa.BindParameter[str] = sa.bindparam("sid")
        claim_values = {"id": sid, "updated_at": CLAIMED, "message_count": 0, "metadata": "{}"}
        metadata = self.as_text(dialect, sessions.c.metadata)
        return Statements(
            claim=_insert_if_absent(dialect, sessions, claim_values, "id"),
            lock=sa.select(sessions.c.updated_at, metadata).where(sessions.c.id == sid).with_for_update(),
            insert_messages=sa.insert(messages),
            update_session=sa.update(sessions)
            .where(sessions.c.id == sid)
            .values(
                parent_id=sa.bindparam("b_parent_id"),
                updated_at=sa.bindparam("b_updated_at"),
                message_count=sa.bindparam("b_message_count"),
                metadata=sa.bindparam("b_metadata", type_=JsonText()),
            ),
            clear_messages=sa.delete(messages).where(messages.c.session_id == sid),
            delete_session=sa.delete(sessions).where(sessions.c.id == sid),
            load=sa.union_all(
                sa.select(sa.literal(-1).label("seq"), metadata.label("doc")).where(sessions.c.id == sid),
                sa.select(messages.c.seq, self.as_text(dialect, messages.c.message)).where(
                    messages.c.session_id == sid
                ),
            ).order_by(sa.literal_column("seq")),
            tail=self._tail(dialect, sid),
            cut_messages=sa.delete(messages).where(
                messages.c.session_id == sid, messages.c.seq >= sa.bindparam("b_kept", type_=sa.Integer)
            ),
            chain=self._chain(dialect, sid),
            listing=sa.select(sessions.c.id, metadata).order_by(sessions.c.updated_at.desc(), sessions.c.id),
            ids_starting=sa.select(sessions.c.id).where(
                sa.func.substr(sessions.c.id, 1, sa.bindparam("b_length", type_=sa.Integer)) == sid
            ),
        )


@dataclass(frozen=True)
class Statements:
    """What a store executes; ``sid`` binds the session id, ``b_*`` the new row's values.

    ``claim`` inserts a placeholder row for the session unless it exists, taking its write
    lock either way (so no delete commits between it and ``lock``): a write transaction
    starts with it, so SQLite takes its write lock before reading (its busy handler only
    retries then), and concurrent first saves of one id on PostgreSQL and MySQL queue on the
    row instead of failing or deadlocking. The placeholder (``updated_at`` empty) never
    outlives the transaction. ``lock`` then reads the row. ``tail`` binds ``b_count`` and
    ``b_end`` (see ``Schema._tail``); ``cut_messages`` removes the messages from position
    ``b_kept`` on. ``ids_starting`` selects the ids whose first ``b_length`` characters are
    ``sid`` (compared as ids are, case-sensitively; a ``LIKE`` ignores case on SQLite).
    """

    claim: sa.Executable
    lock: sa.Select[str, str]
    insert_messages: sa.Insert
    update_session: sa.Update
    clear_messages: sa.Delete
    delete_session: sa.Delete
    load: sa.CompoundSelect[int, str]
    tail: sa.CompoundSelect[int, str]
    cut_messages: sa.Delete
    chain: sa.CompoundSelect[str, int, str]
    listing: sa.Select[str, str]
    ids_starting: sa.Select[str]


def _insert_if_absent(dialect: str, table: sa.Table, values: dict[str, Any], key: str) -> sa.Executable:
    """Insert the row unless one with its ``key`` exists, and hold that row's write lock
    either way (SQLite: the database's, which the statement takes)."""
    if dialect == "sqlite":
        return sqlite.insert(table).values(values).on_conflict_do_nothing()
    if dialect == "postgresql":
        # DO UPDATE ... WHERE false locks an existing row and writes nothing; DO NOTHING would
        # leave it unlocked, so a delete could commit before the write's next statement
        upsert = postgresql.insert(table).values(values)
        return upsert.on_conflict_do_update(
            index_elements=[key], set_={key: upsert.excluded[key]}, where=sa.false()
        )
    statement = mysql.insert(table).values(values)
    # an update, not INSERT IGNORE: it takes the row's exclusive lock, never a shared one
    return statement.on_duplicate_key_update({key: statement.inserted[key]})
