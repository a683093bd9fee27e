"""SqlSessionStore keeps any metadata exactly, ``"\\u0000"`` and lone surrogates included, on
every engine (schema version 2), and migrates a version 1 table in place when it opens one.

Version 1 kept metadata as ``JSONB`` on PostgreSQL and ``JSON`` on MySQL/MariaDB: the tests
build such tables with that DDL, fill them with rows as that release wrote them, and open
them with this one. Servers as in ``test_store_sql``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from simulacra_session import StoreError
from simulacra_session._backend import dumps
from simulacra_session.history import resolve_history
from simulacra_session.stores._codec import encode_metadata
from simulacra_session.stores._sql_schema import SCHEMA_NAME, Schema
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, run, texts
from test_store_sql import (
    BACKENDS,
    SERVER_BACKENDS,
    open_store,
    server_url,
    statements_counted,
    sync_engine_of,
)

#: Metadata JSONB refuses whole (``\u0000``, lone surrogates) and MariaDB's JSON in part (lone
#: surrogates), in keys and values, nested, in an order a JSON column would change.
AWKWARD = {
    "label": "Tell me about \ud83d",
    "zeta": "nul \x00 here",
    "alpha": ["\udc00", {"k\x00ey": "\ud800\x00", "b": 1, "a": 2}],
    "emoji": '\U0001f600 \u2028 "quoted" \\ back',
}

AWKWARD_EXTRA = {key: value for key, value in AWKWARD.items() if key != "label"}


def awkward_text(stored: Any) -> str:
    """The session's metadata as the store's ``dumps`` writes it (without its id)."""
    return encode_metadata(stored.metadata).decode()


def stored_metadata_text(store: SqlSessionStore, session_id: str) -> str:
    """The metadata column's text of ``session_id``, read around the store."""
    schema = Schema.named(store.table)
    column = schema.as_text(store.engine.dialect.name, schema.sessions.c.metadata)
    statement = sa.select(column).where(schema.sessions.c.id == session_id)

    async def read() -> str:
        engine = store.engine
        if isinstance(engine, AsyncEngine):
            async with engine.connect() as connection:
                return str((await connection.execute(statement)).scalar_one())
        with engine.connect() as connection:
            return str(connection.execute(statement).scalar_one())

    return run(read())


@pytest.mark.parametrize("backend", BACKENDS)
def test_any_metadata_round_trips_exactly(backend: str, tmp_path: Path) -> None:
    with open_store(backend, tmp_path) as store:
        run(store.save("root", [msg("hi \x00")], AWKWARD))
        run(store.save("fork", [msg("own")], {**AWKWARD, "parent_id": "root", "fork_message_count": 1}))
        run(store.append("root", [msg("more")], {"label": "cut \udbff"}))
        stored = run(store.load("root"))
        assert stored is not None
        extra = AWKWARD_EXTRA
        assert stored.metadata.label == "cut \udbff"
        assert stored.metadata.model_extra == extra
        assert dumps(stored.metadata.model_extra) == dumps(extra)  # every key in its order
        assert texts(stored.messages) == ["hi \x00", "more"]
        assert stored_metadata_text(store, "root") == awkward_text(stored)  # the dumps bytes
        listed = {meta.id: meta for meta in run(store.list())}
        assert listed["root"] == stored.metadata
        assert [meta.model_extra for meta in run(store.forks("root"))] == [extra]
        tail = run(store.load_tail("root", 1))
        assert tail is not None
        assert tail.metadata == stored.metadata
        run(store.truncate("root", 1))
        assert run(store.load("root")).metadata.model_extra == extra  # type: ignore[union-attr]
        chain = run(store.load_chain("fork"))
        assert [session.metadata.id for session in chain] == ["fork", "root"]
        resolved = run(resolve_history(store, "fork"))
        assert resolved is not None
        assert texts(resolved.messages) == ["hi \x00", "own"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_detached_fork_with_awkward_metadata_stops_the_chain(backend: str, tmp_path: Path) -> None:
    with open_store(backend, tmp_path) as store:
        run(store.save("root", [msg("root")], AWKWARD))
        run(store.save("detached", [msg("own")], {**AWKWARD, "parent_id": "root", "detached": True}))
        run(store.save("child", [msg("child")], {**AWKWARD, "parent_id": "detached"}))
        with statements_counted(store) as executed:
            chain = run(store.load_chain("child"))
        assert [session.metadata.id for session in chain] == ["child", "detached"]
        assert len(executed) == 1


# -- version 1 tables --------------------------------------------------------------------

#: The metadata column as version 1 made it.
V1_METADATA = (
    sa.Text().with_variant(postgresql.JSONB(), "postgresql").with_variant(mysql.JSON(), "mysql", "mariadb")
)


def write_v1_tables(engine: sa.Engine, table: str, *, metadata_type: Any = V1_METADATA) -> None:
    """Tables as version 1 made them, holding the sessions of ``scratch_sessions`` as version 1
    wrote them (the text ``dumps`` wrote, bound to the JSON column), version 1 recorded."""
    dialect = engine.dialect.name
    old = Schema.named(table)
    old.sessions.c.metadata.type = metadata_type
    current = Schema.named(table)  # binds JSON as text, as version 1 did
    sessions, messages = scratch_sessions()
    with engine.begin() as connection:
        old.create(connection, dialect)
        connection.execute(sa.insert(old.version).values(name=SCHEMA_NAME, version=1))
        connection.execute(sa.insert(current.sessions), sessions)
        connection.execute(sa.insert(current.messages), messages)


def scratch_sessions() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of a root, an attached fork, a detached fork and its attached child (metadata
    version 1 could hold), as a store writes them."""

    async def write(store: SqlSessionStore) -> None:
        await store.save("root", [msg("r0"), msg("r1")], {"label": "root", "z": 1, "a": [1.5, None]})
        await store.save("fork", [msg("f")], {"parent_id": "root", "fork_message_count": 2})
        await store.save("detached", [msg("d")], {"parent_id": "root", "detached": True})
        await store.save("child", [msg("c")], {"parent_id": "detached", "label": "é ✓"})

    scratch = SqlSessionStore("sqlite://", table="scratch")
    try:
        run(write(scratch))
        schema = scratch._schema
        with sync_engine_of(scratch).connect() as connection:
            sessions = [dict(row._mapping) for row in connection.execute(sa.select(schema.sessions))]
            messages = [dict(row._mapping) for row in connection.execute(sa.select(schema.messages))]
    finally:
        run(scratch.close())
    return sessions, messages


def recorded_version(engine: sa.Engine, table: str) -> list[tuple[str, int]]:
    version = Schema.named(table).version
    with engine.connect() as connection:
        return [(row[0], row[1]) for row in connection.execute(sa.select(version.c.name, version.c.version))]


def check_v1_sessions(store: SqlSessionStore) -> None:
    """What ``scratch_sessions`` wrote, read through ``store``."""
    root = run(store.load("root"))
    assert root is not None
    assert (root.metadata.label, root.metadata.model_extra) == ("root", {"z": 1, "a": [1.5, None]})
    assert {"child", "detached", "fork", "root"} <= {meta.id for meta in run(store.list())}
    resolved = run(resolve_history(store, "fork"))
    assert resolved is not None
    assert texts(resolved.messages) == ["r0", "r1", "f"]
    # JSONB and MySQL's JSON wrote "detached": true back with a space: the walk still stops there
    chain = Schema.named(store.table).statements(store.engine.dialect.name).chain
    with sync_engine_of(store).connect() as connection:
        assert {row[0] for row in connection.execute(chain, {"sid": "child"})} == {"child", "detached"}
    assert [session.metadata.label for session in run(store.load_chain("child"))] == ["é ✓", None]


V1 = tuple[str, Any, sa.Engine, str]


@pytest.fixture(params=SERVER_BACKENDS)
def v1(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | sa.URL, sa.Engine, str]]:
    """``(backend, url, engine, table)``: a database, a sync engine on it and a table name of
    the test's own (the tables dropped afterwards)."""
    backend: str = request.param
    url: str | sa.URL = f"sqlite:///{tmp_path / 'sessions.db'}"
    if backend != "sqlite":
        url = server_url("postgres" if backend == "postgresql" else "mysql")
    engine = sa.create_engine(url)
    table = f"t{uuid.uuid4().hex[:12]}"
    try:
        yield backend, url, engine, table
    finally:
        Schema.named(table).meta.drop_all(engine, checkfirst=True)
        engine.dispose()


def test_version_1_refused_what_version_2_keeps(v1: V1) -> None:
    """The bug: a version 1 table's JSON column refuses a lone surrogate (PostgreSQL, MariaDB)."""
    backend, _, engine, table = v1
    if backend == "sqlite":
        pytest.skip("SQLite's version 1 column was TEXT already")
    write_v1_tables(engine, table)
    sessions = Schema.named(table).sessions
    refused = sa.update(sessions).where(sessions.c.id == "root").values(metadata='{"label":"\\ud800"}')
    with engine.begin() as connection, pytest.raises(sa.exc.DBAPIError):
        connection.execute(refused)


def test_a_version_1_table_is_migrated_in_place(v1: V1) -> None:
    backend, url, engine, table = v1
    write_v1_tables(engine, table)
    store = SqlSessionStore(url, table=table)
    try:
        check_v1_sessions(store)
        assert recorded_version(engine, table) == [(SCHEMA_NAME, 2)]
        column = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns(table)}["metadata"]
        expected = {"sqlite": "TEXT", "postgresql": "JSON", "mysql": "LONGTEXT"}[backend]
        assert column.compile(dialect=engine.dialect) == expected
        run(store.save("awkward", [msg("new")], AWKWARD))
        stored = run(store.load("awkward"))
        assert stored is not None
        assert stored.metadata.label == AWKWARD["label"]
        assert stored.metadata.model_extra == AWKWARD_EXTRA
        assert stored_metadata_text(store, "awkward") == awkward_text(stored)
    finally:
        run(store.close())
    again = SqlSessionStore(url, table=table)  # a version 2 table: opened as it is
    try:
        assert run(again.load("awkward")) == stored
        assert recorded_version(engine, table) == [(SCHEMA_NAME, 2)]
    finally:
        run(again.close())


def test_an_async_engine_migrates_too(v1: V1) -> None:
    backend, url, engine, table = v1
    drivers = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
    if backend not in drivers:
        pytest.skip("no async MySQL driver among the test dependencies")
    write_v1_tables(engine, table)
    target = create_async_engine(sa.make_url(url).set(drivername=drivers[backend]), poolclass=NullPool)
    store = SqlSessionStore(target, table=table)
    try:
        run(store.save("awkward", [], AWKWARD))
        stored = run(store.load("awkward"))
        assert stored is not None
        assert stored.metadata.model_extra == AWKWARD_EXTRA
        assert recorded_version(engine, table) == [(SCHEMA_NAME, 2)]
    finally:
        run(store.close())
        run(target.dispose())


def test_a_migration_cut_short_after_its_alter_runs_again(v1: V1) -> None:
    """MySQL commits the ALTER by itself: version 1 may be left on a column already changed."""
    _, url, engine, table = v1
    write_v1_tables(engine, table, metadata_type=Schema.named(table).sessions.c.metadata.type)
    store = SqlSessionStore(url, table=table)
    try:
        check_v1_sessions(store)
        assert recorded_version(engine, table) == [(SCHEMA_NAME, 2)]
    finally:
        run(store.close())


def test_stores_opening_a_version_1_table_together_migrate_it_once(v1: V1) -> None:
    _, url, engine, table = v1
    write_v1_tables(engine, table)
    stores = [SqlSessionStore(url, table=table) for _ in range(6)]
    start = threading.Barrier(len(stores))

    def first_use(store: SqlSessionStore, index: int) -> None:
        start.wait()
        run(store.save(f"s{index}", [msg(str(index))], {"nul": "\x00", "lone": "\ud800"}))

    try:
        with ThreadPoolExecutor(len(stores)) as pool:  # each on a connection of its own
            list(pool.map(first_use, stores, range(len(stores))))  # the first failure raises
        assert recorded_version(engine, table) == [(SCHEMA_NAME, 2)]
        check_v1_sessions(stores[0])
        for index in range(len(stores)):
            stored = run(stores[0].load(f"s{index}"))
            assert stored is not None
            assert stored.metadata.model_extra == {"nul": "\x00", "lone": "\ud800"}
    finally:
        for store in stores:
            run(store.close())


def test_create_false_leaves_a_version_1_table_alone(v1: V1) -> None:
    _, url, engine, table = v1
    write_v1_tables(engine, table)
    store = SqlSessionStore(url, table=table, create=False)
    refused = (
        rf"'{table}_schema' records schema version 1; this release reads version 2 "
        r"\(create=False: open it once with create=True to migrate it\)"
    )
    try:
        with pytest.raises(StoreError, match=refused):
            run(store.list())
    finally:
        run(store.close())
    assert recorded_version(engine, table) == [(SCHEMA_NAME, 1)]
