"""SqlSessionStore: the conformance suite on every engine, and what is particular to SQL.

PostgreSQL and MySQL/MariaDB run against real servers named by ``SIMULACRA_TEST_POSTGRES_URL``
and ``SIMULACRA_TEST_MYSQL_URL`` (``scripts/db-servers.sh`` starts both and prints them);
without them those tests skip, except under ``CI=true``, where a missing server fails the run.
Each test gets tables of its own, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from integration_stores import Processes
from simulacra_session import (
    CorruptSessionError,
    LifecycleErrorEvent,
    SessionManager,
    SimpleConversation,
    StoreError,
)
from simulacra_session._backend import dumps
from simulacra_session.history import resolve_history
from simulacra_session.stores import _sql_schema as sql_schema
from simulacra_session.stores._sql_schema import Schema
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import SessionStoreConformance, msg, run, texts

BACKENDS = ["sqlite", "sqlite-memory", "sqlite-async", "postgresql", "postgresql-async", "mysql"]
SERVER_BACKENDS = ["sqlite", "postgresql", "mysql"]  # one engine per database, for the cross-checks


def server_url(name: str) -> sa.URL:
    """The test server's URL from the environment; skip (or fail under CI) without it."""
    variable = f"SIMULACRA_TEST_{name.upper()}_URL"
    url = os.environ.get(variable)
    if not url:
        reason = f'{variable} is not set: run `eval "$(bash scripts/db-servers.sh)"` to start the servers'
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return sa.make_url(url)


def make_target(backend: str, tmp_path: Path) -> sa.Engine | AsyncEngine | str:
    """What a user would pass to SqlSessionStore for ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    if backend == "sqlite-memory":
        return "sqlite://"
    # the suite runs each step in its own event loop: async engines open a connection per use
    if backend == "sqlite-async":
        return create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}", poolclass=NullPool)
    if backend == "postgresql":
        return sa.create_engine(server_url("postgres"))
    if backend == "postgresql-async":
        url = server_url("postgres").set(drivername="postgresql+asyncpg")
        return create_async_engine(url, poolclass=NullPool)
    assert backend == "mysql"
    return sa.create_engine(server_url("mysql"))


async def _dispose(engine: sa.Engine | AsyncEngine) -> None:
    if isinstance(engine, AsyncEngine):
        await engine.dispose()
    else:
        engine.dispose()


@contextmanager
def open_store(backend: str, tmp_path: Path, **options: Any) -> Iterator[SqlSessionStore]:
    """A fresh, empty store on ``backend`` (its own tables), dropped and closed afterwards."""
    target = make_target(backend, tmp_path)
    table = options.pop("table", f"t{uuid.uuid4().hex[:12]}")
    store = SqlSessionStore(target, table=table, **options)
    try:
        yield store
    finally:
        try:
            if store.engine.dialect.name != "sqlite":  # a SQLite file goes with tmp_path
                run(store.drop_tables())
        finally:
            run(store.close())
            if not isinstance(target, str):  # an engine of the test's own
                run(_dispose(target))


class TestSqlSessionStore(SessionStoreConformance):
    @pytest.fixture(params=BACKENDS)
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlSessionStore]:
        with open_store(request.param, tmp_path) as store:
            yield store

    def test_ids_are_case_sensitive(self, store: SqlSessionStore) -> None:
        run(store.save("abc", [msg("lower")]))
        run(store.save("ABC", [msg("upper")]))
        assert sorted(m.id for m in run(store.list())) == ["ABC", "abc"]
        assert texts(run(store.load("abc")).messages) == ["lower"]  # type: ignore[union-attr]
        run(store.save("child", [], {"parent_id": "ABC"}))
        assert run(store.forks("abc")) == []

    def test_message_rows_hold_the_hot_path_bytes(self, store: SqlSessionStore) -> None:
        messages = [msg("plain"), msg('é ✓ 🎉 \u2028 \x00 "quoted"', "assistant", n=1.5, big=2**70)]
        run(store.save("a", messages))
        run(store.append("a", [msg("appended")]))
        schema = Schema.named(store.table)
        column = schema.as_text(store.engine.dialect.name, schema.messages.c.message)
        statement = sa.select(column).order_by(schema.messages.c.seq)

        async def stored_texts() -> list[str]:
            if isinstance(store.engine, AsyncEngine):
                async with store.engine.connect() as connection:
                    return list((await connection.execute(statement)).scalars())
            with store.engine.connect() as connection:
                return list(connection.execute(statement).scalars())

        expected = [dumps(m) for m in [*messages, msg("appended")]]
        assert [text.encode() for text in run(stored_texts())] == expected

    def test_list_reads_no_message_and_load_names_a_corrupt_row(
        self, store: SqlSessionStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        run(store.save("good", [msg("x")]))
        run(store.save("bad", [msg("y")]))
        schema = Schema.named(store.table)
        corrupt_message = sa.update(schema.messages).values(message='{"unterminated": [1, 2')
        broken_metadata = sa.update(schema.sessions).where(schema.sessions.c.id == "bad")
        engine = store.engine

        async def execute(*statements: sa.Executable) -> None:
            if isinstance(engine, AsyncEngine):
                async with engine.begin() as connection:
                    for statement in statements:
                        await connection.execute(statement)
            else:
                with engine.begin() as connection:
                    for statement in statements:
                        connection.execute(statement)

        if engine.dialect.name == "sqlite":  # other engines check the JSON columns themselves
            run(execute(corrupt_message))
            assert sorted(m.id for m in run(store.list())) == ["bad", "good"]
            with pytest.raises(CorruptSessionError, match=rf"'good' in table '{store.table}'"):
                run(store.load("good"))
        run(execute(broken_metadata.values(metadata='{"created_at": "not a time"}')))
        with caplog.at_level(logging.WARNING, logger="simulacra_session"):
            assert [m.id for m in run(store.list())] == ["good"]
        assert "'bad'" in caplog.text
        with pytest.raises(CorruptSessionError, match=rf"'bad' in table '{store.table}': invalid metadata"):
            run(store.load("bad"))


def sync_engine_of(store: SqlSessionStore) -> sa.Engine:
    """The store's engine, or the sync engine under its async one (where events are heard)."""
    engine = store.engine
    return engine.sync_engine if isinstance(engine, AsyncEngine) else engine


@contextmanager
def statements_counted(store: SqlSessionStore) -> Iterator[list[str]]:
    """The SQL statements the store's engine executes meanwhile."""
    sync_engine = sync_engine_of(store)
    executed: list[str] = []

    def count(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        executed.append(statement)

    sa.event.listen(sync_engine, "before_cursor_execute", count)
    try:
        yield executed
    finally:
        sa.event.remove(sync_engine, "before_cursor_execute", count)


def fork_chain(store: SqlSessionStore, depth: int) -> str:
    """Sessions ``c0`` (a root) to ``c{depth}``, each an attached fork of the one before that
    inherits its whole history and adds one message; the id of the deepest."""

    async def build() -> None:
        await store.save("c0", [msg("m0")])
        for level in range(1, depth + 1):
            metadata = {"parent_id": f"c{level - 1}", "fork_message_count": level}
            await store.save(f"c{level}", [msg(f"m{level}")], metadata)

    run(build())
    return f"c{depth}"


#: For an async backend, the sync one over the same database: its engine pools connections.
_SYNC_TWIN = {"sqlite-async": "sqlite", "postgresql-async": "postgresql"}


def fork_chain_written_pooled(backend: str, store: SqlSessionStore, tmp_path: Path, depth: int) -> str:
    """``fork_chain(store, depth)``, its saves made through a sync engine over the same tables
    where ``store``'s engine is async: the suite gives those ``NullPool`` (a new connection per
    call, each a server process and a handshake on PostgreSQL: ~1.5 s of CPU for 121 saves).
    ``store`` then makes a first call of its own (its schema check), as the saves made it."""
    twin_backend = _SYNC_TWIN.get(backend)
    if twin_backend is None:
        return fork_chain(store, depth)
    target = make_target(twin_backend, tmp_path)
    twin = SqlSessionStore(target, table=store.table)
    try:
        deepest = fork_chain(twin, depth)
    finally:
        run(twin.close())
        if isinstance(target, sa.Engine):  # an engine of the test's own
            target.dispose()
    assert run(store.load("c0")) is not None
    return deepest


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_fork_chain_resolves_in_two_statements(backend: str, tmp_path: Path) -> None:
    """The fork itself, then its every ancestor at once (a recursive CTE), whatever the depth."""
    with open_store(backend, tmp_path) as store:
        deepest = fork_chain_written_pooled(backend, store, tmp_path, 120)
        with statements_counted(store) as executed:
            resolved = run(resolve_history(store, deepest))
        assert resolved is not None
        assert texts(resolved.messages) == [f"m{level}" for level in range(121)]
        assert len(executed) == 2, executed


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_a_chain_deeper_than_one_fetch_resolves_in_several(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_schema, "CHAIN_DEPTH", 3)  # ancestors one statement follows
    with open_store(backend, tmp_path) as store:
        deepest = fork_chain(store, 10)
        assert [s.metadata.id for s in run(store.load_chain(deepest))] == ["c10", "c9", "c8", "c7"]
        with statements_counted(store) as executed:
            resolved = run(resolve_history(store, deepest))
        assert resolved is not None
        assert texts(resolved.messages) == [f"m{level}" for level in range(11)]
        assert len(executed) == 1 + 3  # c10 alone, then c9-c6, c5-c2, c1-c0


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_load_chain_stops_at_a_detached_fork_and_reads_nothing_above_it(backend: str, tmp_path: Path) -> None:
    with open_store(backend, tmp_path) as store:
        fork_chain(store, 5)
        run(store.save("detached", [msg("own")], {"parent_id": "c5", "detached": True}))
        run(store.save("child", [msg("child")], {"parent_id": "detached"}))
        with statements_counted(store) as executed:
            loaded = run(store.load_chain("child"))
        assert [s.metadata.id for s in loaded] == ["child", "detached"]
        assert len(executed) == 1
        chain = Schema.named(store.table).statements(store.engine.dialect.name).chain
        with sync_engine_of(store).connect() as connection:  # the database's own bound, not the store's
            assert {row[0] for row in connection.execute(chain, {"sid": "child"})} == {"child", "detached"}
        resolved = run(resolve_history(store, "child"))
        assert resolved is not None
        assert texts(resolved.messages) == ["own", "child"]


@pytest.fixture(params=SERVER_BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, sa.URL | str]]:
    """A database to share between several stores: ``(backend, url)``; tables dropped afterwards."""
    if request.param == "sqlite":
        target = make_target("sqlite", tmp_path)
        assert isinstance(target, str)
        yield "sqlite", target
        return
    url = server_url("postgres" if request.param == "postgresql" else "mysql")
    yield request.param, url


def test_schema_is_created_once_with_its_version(database: tuple[str, Any], tmp_path: Path) -> None:
    backend, url = database
    table = f"t{uuid.uuid4().hex[:12]}"
    with open_store(backend, tmp_path, table=table) as store:
        run(store.save("a", [msg("x")]))
        again = SqlSessionStore(url, table=table)
        assert texts(run(again.load("a")).messages) == ["x"]  # type: ignore[union-attr]
        run(again.close())
        engine = store.engine
        assert isinstance(engine, sa.Engine), engine  # open_store makes a sync engine
        inspector = sa.inspect(engine)
        assert {table, f"{table}_messages", f"{table}_schema"} <= set(inspector.get_table_names())
        indexed = {column for index in inspector.get_indexes(table) for column in index["column_names"]}
        assert {"parent_id", "updated_at"} <= indexed
        version = Schema.named(table).version
        with engine.begin() as connection:
            assert connection.execute(sa.select(version.c.name, version.c.version)).all() == [
                ("simulacra-session", 2)
            ]
            connection.execute(sa.update(version).values(version=3))
        newer = SqlSessionStore(url, table=table)
        newer_version = rf"'{table}_schema' records schema version 3; this release reads version 2"
        with pytest.raises(StoreError, match=newer_version):
            run(newer.list())
        run(newer.close())


def test_create_false_needs_the_tables(database: tuple[str, Any]) -> None:
    _, url = database
    table = f"t{uuid.uuid4().hex[:12]}"
    store = SqlSessionStore(url, table=table, create=False)
    with pytest.raises(StoreError, match=rf"list of sessions in table '{table}' failed"):
        run(store.list())
    assert not sa.inspect(store.engine).has_table(table)
    run(store.close())


def test_saves_from_several_connections_never_mix(database: tuple[str, Any], tmp_path: Path) -> None:
    backend, url = database
    table = f"t{uuid.uuid4().hex[:12]}"
    with open_store(backend, tmp_path, table=table):
        stores = [SqlSessionStore(url, table=table) for _ in range(4)]
        errors: list[BaseException] = []

        def writer(index: int) -> None:
            try:
                for round_ in range(5):
                    size = index * 5 + round_ + 1
                    run(stores[index].save("shared", [msg(f"{size}")] * size, {f"w{index}": round_}))
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=writer, args=(index,)) for index in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        stored = run(stores[0].load("shared"))
        assert stored is not None
        count = stored.metadata.message_count
        assert stored.messages == [msg(f"{count}")] * count  # one save's messages, never a mix
        assert stored.metadata.model_extra == {f"w{index}": 4 for index in range(4)}
        for store in stores:
            run(store.close())


_WORKER = """
import asyncio, sys
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg

async def main(url, table, worker):
    store = SqlSessionStore(url, table=table)
    for round_ in range(10):
        await store.append("shared", [msg(f"{worker}:{round_}")], {f"p{worker}": round_})
    await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def test_appends_from_several_processes_are_all_kept(database: tuple[str, Any], tmp_path: Path) -> None:
    backend, url = database
    table = f"t{uuid.uuid4().hex[:12]}"
    with open_store(backend, tmp_path, table=table) as store:
        run(store.save("shared", []))
        rendered = url if isinstance(url, str) else url.render_as_string(hide_password=False)
        with Processes(_WORKER, [[rendered, table, str(worker)] for worker in range(3)]) as workers:
            ends = workers.finish()  # they append as soon as they start
        assert [status for status, _ in ends] == [0, 0, 0], ends
        stored = run(store.load("shared"))
        assert stored is not None
        assert stored.metadata.message_count == len(stored.messages) == 30
        for worker in range(3):  # each process's appends, in its order
            assert [t for t in texts(stored.messages) if t.startswith(f"{worker}:")] == [
                f"{worker}:{round_}" for round_ in range(10)
            ]
        assert stored.metadata.model_extra == {f"p{worker}": 9 for worker in range(3)}


def test_unreachable_server_is_a_store_error_without_credentials() -> None:
    store = SqlSessionStore("postgresql+psycopg://someone:s3cret-pw@127.0.0.1:9/nowhere")
    assert "s3cret-pw" not in repr(store)
    failed = r"save of session 'a' in table 'simulacra_sessions' failed"
    with pytest.raises(StoreError, match=failed) as caught:
        run(store.save("a", [msg("x")]))
    assert "s3cret-pw" not in str(caught.value)
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    errors: list[LifecycleErrorEvent] = []
    manager.on("lifecycle_error", errors.append)

    async def talk() -> None:
        manager.start_new()
        conversation.append(msg("lost to the network"))
        await manager.flush()

    run(talk())
    assert errors
    assert all(isinstance(event.error, StoreError) for event in errors)
    assert {event.operation for event in errors} == {"save"}
    run(store.close())


def test_bad_arguments() -> None:
    for table in ("", "1x", "a-b", "drop table;", "x" * 49):
        with pytest.raises(ValueError, match="table must be"):
            SqlSessionStore("sqlite://", table=table)
    with pytest.raises(TypeError, match="Engine, an AsyncEngine or a URL"):
        SqlSessionStore(42)  # type: ignore[arg-type]
    store = SqlSessionStore("sqlite://")
    with pytest.raises(ValueError, match="must not be negative"):
        run(store.list(limit=-1))
    run(store.close())


def test_a_given_engine_stays_open(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'mine.db'}")
    store = SqlSessionStore(engine)
    run(store.save("a", []))
    run(store.close())
    with engine.connect() as connection:
        assert connection.execute(sa.text("select count(*) from simulacra_sessions")).scalar() == 1
    engine.dispose()


def test_concurrent_first_saves_of_many_sessions(database: tuple[str, Any], tmp_path: Path) -> None:
    """InnoDB makes some of these deadlock (gap locks): the victims are run again, none is lost."""
    backend, url = database
    engines = [url, sa.create_engine(url)]  # ours (READ COMMITTED on MySQL), and the default level
    for target in engines:
        table = f"t{uuid.uuid4().hex[:12]}"
        with open_store(backend, tmp_path, table=table):
            store = SqlSessionStore(target, table=table)

            async def burst(store: SqlSessionStore, round_: int) -> list[Any]:
                saves = [
                    store.save(f"r{round_}-{i}", [msg(str(i))] * 3, {"parent_id": "p"}) for i in range(6)
                ]
                return await asyncio.gather(*saves, return_exceptions=True)

            async def rounds(store: SqlSessionStore) -> list[Any]:
                return [result for round_ in range(10) for result in await burst(store, round_)]

            assert [r for r in run(rounds(store)) if isinstance(r, BaseException)] == []
            assert len(run(store.forks("p"))) == 60
            run(store.close())
        if isinstance(target, sa.Engine):
            target.dispose()


def test_stores_starting_together_create_the_schema_once(database: tuple[str, Any], tmp_path: Path) -> None:
    backend, url = database
    table = f"t{uuid.uuid4().hex[:12]}"
    with open_store(backend, tmp_path, table=table):
        stores = [SqlSessionStore(url, table=table) for _ in range(8)]
        start = threading.Barrier(len(stores))
        errors: list[BaseException] = []

        def first_use(store: SqlSessionStore, index: int) -> None:
            start.wait()
            try:
                run(store.save(f"s{index}", [msg(str(index))]))
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=first_use, args=(s, i)) for i, s in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(m.id for m in run(stores[0].list())) == [f"s{index}" for index in range(8)]
        for store in stores:
            run(store.close())
