"""SqlSessionStore where engines differ: one shared connection (async in-memory SQLite), a
delete racing a write (PostgreSQL), pooled connections the server closed, the longest table
name, and restored timestamps in every ISO 8601 form. Servers as in ``test_store_sql``.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from simulacra_session import Revision, SessionNotFoundError
from simulacra_session.models import SessionMetadata
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, run, texts
from test_store_sql import BACKENDS, SERVER_BACKENDS, open_store, server_url

# -- one shared connection -------------------------------------------------------------------


async def _append_from_tasks(store: SqlSessionStore, session_id: str, tasks: int, rounds: int) -> None:
    async def writer(task: int) -> None:
        for round_ in range(rounds):
            await store.append(session_id, [msg(f"{task}-{round_}")])

    await asyncio.gather(*(writer(task) for task in range(tasks)))


def _written(tasks: int, rounds: int) -> list[str]:
    return sorted(f"{task}-{round_}" for task in range(tasks) for round_ in range(rounds))


def test_async_in_memory_sqlite_keeps_every_concurrent_append() -> None:
    """Every task's transaction runs on the one connection in turn, never inside another's."""

    async def scenario() -> Any:
        async with SqlSessionStore("sqlite+aiosqlite://") as store:
            await store.save("shared", [])
            await _append_from_tasks(store, "shared", tasks=5, rounds=10)
            return await store.load("shared")

    stored = run(scenario())
    assert stored is not None
    assert stored.metadata.message_count == len(stored.messages) == 50
    assert sorted(texts(stored.messages)) == _written(5, 10)


def test_stores_sharing_one_async_connection_take_turns() -> None:
    """Two stores on one caller's engine whose pool is a single connection: the turns are the engine's."""
    engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)

    async def scenario() -> list[Any]:
        stores = [SqlSessionStore(engine, table=table) for table in ("first", "second")]
        try:
            await asyncio.gather(*(_append_from_tasks(store, "s", tasks=3, rounds=8) for store in stores))
            return [await store.load("s") for store in stores]
        finally:
            await engine.dispose()

    for stored in run(scenario()):
        assert stored is not None
        assert stored.metadata.message_count == len(stored.messages) == 24
        assert sorted(texts(stored.messages)) == _written(3, 8)


# -- a delete racing a write -----------------------------------------------------------------


def _blocked_or_done(engine: sa.Engine, table: str, deleter: threading.Thread) -> bool:
    """Whether the deleting thread finished, or waits for a row lock held by the write."""
    if not deleter.is_alive():
        return True
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE :query"
    )
    with engine.connect() as connection:
        return bool(connection.execute(waiting, {"query": f"DELETE FROM {table} %"}).scalar())


WRITES: dict[str, Callable[[SqlSessionStore], Coroutine[Any, Any, Revision]]] = {
    "save": lambda store: store.save("x", [msg("saved")]),
    "append": lambda store: store.append("x", [msg("appended")]),
    "truncate": lambda store: store.truncate("x", 1),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_delete_committed_right_after_the_claim_waits_for_the_write(write: str, tmp_path: Path) -> None:
    """PostgreSQL: a delete of the session starting just after the write's claim statement
    queues behind the write (as on SQLite and MariaDB, where the claim locks the row), so
    the write completes and the delete removes what it wrote."""
    with open_store("postgresql", tmp_path) as store:
        run(store.save("x", [msg("a"), msg("b")]))
        url = server_url("postgres")
        other = sa.create_engine(url)
        deleted: list[int] = []

        def delete() -> None:  # a statement of its own: a store's first use would check the schema
            with other.begin() as connection:
                removed = connection.execute(sa.text(f"DELETE FROM {store.table} WHERE id = 'x'"))
                deleted.append(removed.rowcount)

        deleter = threading.Thread(target=delete)
        claim = f"INSERT INTO {store.table} "

        def delete_after_claim(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.startswith(claim) and not deleter.is_alive() and not deleted:
                deleter.start()
                while not _blocked_or_done(other, store.table, deleter):
                    time.sleep(0.01)

        engine = store.engine
        assert isinstance(engine, sa.Engine)
        sa.event.listen(engine, "after_cursor_execute", delete_after_claim)
        try:
            run(WRITES[write](store))
        finally:
            sa.event.remove(engine, "after_cursor_execute", delete_after_claim)
            deleter.join()
            other.dispose()
        assert deleted == [1]
        assert run(store.load("x")) is None


# -- connections the server closed ------------------------------------------------------------


def _kill_statement(backend: str) -> tuple[str, str]:
    """The statements reading a connection's server-side id, and ending the connection with that id."""
    if backend == "postgresql":
        return "SELECT pg_backend_pid()", "SELECT pg_terminate_backend(:pid)"
    return "SELECT CONNECTION_ID()", "KILL :pid"


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_a_pooled_connection_the_server_closed_is_replaced(backend: str) -> None:
    """The store's own engine tests a pooled connection before use: the first call after the
    server dropped it (a restart, an idle timeout, an administrator) succeeds."""
    url = server_url("postgres" if backend == "postgresql" else "mysql")
    table = f"t{uuid.uuid4().hex[:12]}"
    store = SqlSessionStore(url, table=table)  # the store's own engine
    admin = sa.create_engine(url)
    try:
        run(store.save("a", [msg("kept")]))
        engine = store.engine
        assert isinstance(engine, sa.Engine)
        whoami, kill = _kill_statement(backend)
        with engine.connect() as connection:  # the one pooled connection the save used
            pid = connection.execute(sa.text(whoami)).scalar()
        with admin.begin() as connection:
            connection.execute(sa.text(kill), {"pid": pid})
        stored = run(store.load("a"))
        assert stored is not None
        assert texts(stored.messages) == ["kept"]
        run(store.append("a", [msg("more")]))
    finally:
        run(store.drop_tables())
        run(store.close())
        admin.dispose()


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_the_longest_table_name_works_on_every_engine(backend: str, tmp_path: Path) -> None:
    """48 characters: every name made from it (tables, indexes, constraints) fits every engine."""
    table = "T" + uuid.uuid4().hex[:12] + "x" * 35
    assert len(table) == 48
    with open_store(backend, tmp_path, table=table) as store:
        run(store.save("p", [msg("one")]))
        run(store.save("f", [msg("two")], {"parent_id": "p", "fork_message_count": 1}))
        run(store.append("f", [msg("three")]))
        assert [m.id for m in run(store.forks("p"))] == ["f"]
        assert run(store.delete("p"))


# -- truncate of an absent session -------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncate_of_an_absent_session_is_not_found_whatever_expected(backend: str, tmp_path: Path) -> None:
    """As on the file and memory stores: existence is checked before the expected revision."""
    with open_store(backend, tmp_path) as store:
        expected = Revision(1, "2026-01-01T00:00:00.000000Z")
        with pytest.raises(SessionNotFoundError, match="absent"):
            run(store.truncate("absent", 1, expected=expected))
        assert run(store.list()) == []


# -- restored timestamps ---------------------------------------------------------------------

#: updated_at of restored sessions, each form parse_timestamp reads; newest first by instant
RESTORED = {
    "new": "2026-01-01T00:00:03.000000Z",
    "offset": "2026-01-01T05:00:02+05:00",  # 00:00:02Z
    "long": "2026-01-01T00:00:01.9999994444444444Z",  # 38 characters, read to the microsecond
    "mid": "2026-01-01T00:00:01.500000Z",
    "nofrac": "2026-01-01T00:00:01Z",
    "millis": "2026-01-01T00:00:00.100Z",  # the original library's form
    "micros": "2026-01-01T00:00:00.099999Z",
    "old": "2026-01-01T00:00:00.000001Z",
}


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_restored_timestamps_list_in_the_order_of_their_instants(backend: str, tmp_path: Path) -> None:
    """As FileSessionStore lists them, whatever form restore was given; the metadata keeps the text."""
    with open_store(backend, tmp_path) as store:
        for session_id, stamp in RESTORED.items():
            metadata = SessionMetadata(id=session_id, created_at=stamp, updated_at=stamp, message_count=0)
            run(store.restore(session_id, [], metadata))
        assert [m.id for m in run(store.list())] == list(RESTORED)
        assert [m.id for m in run(store.list(limit=2, offset=1))] == ["offset", "long"]
        assert {m.id: m.updated_at for m in run(store.list())} == RESTORED
        run(store.save("millis", [msg("later")]))  # stamped after every restored instant
        assert [m.id for m in run(store.list(limit=1))] == ["millis"]


@pytest.mark.parametrize("driver", ["sqlite", "sqlite+aiosqlite"])
def test_a_sqlite_file_syncs_every_commit_whatever_the_build_default(driver: str, tmp_path: Path) -> None:
    # synchronous=FULL syncs each commit (a build may default to less: the power-loss tests
    # show what that loses); fullfsync is F_FULLFSYNC on macOS, as the file store's syncs
    store = SqlSessionStore(f"{driver}:///{tmp_path}/s.db")
    pragmas = "SELECT * FROM pragma_synchronous, pragma_fullfsync, pragma_journal_mode"

    async def read() -> tuple[Any, ...]:
        engine = store.engine
        if isinstance(engine, sa.Engine):
            with engine.connect() as connection:
                return tuple(connection.exec_driver_sql(pragmas).one())
        async with engine.connect() as connection:
            return tuple((await connection.exec_driver_sql(pragmas)).one())

    assert run(read()) == (2, 1, "wal")
    run(store.close())
