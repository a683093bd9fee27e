"""SqlSessionStore when the database server misbehaves: a server that accepts and never
answers, or is out of reach, and a PostgreSQL and a MariaDB server of the test's own
stopped, killed and restarted under a SessionManager's saves, turned read-only or out of
connection slots; SQLite's writer killed. (A connection lost during its commit:
``test_sql_lost_commits.py``.)

What a user may count on: an acknowledged write is stored, once; one that raised is wholly
there or wholly absent; the error is a ``StoreError`` naming the operation and the session;
once the server is back, the same store and manager go on saving.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from manager_stores import Watched
from private_db_servers import CuttingProxy, PrivatePostgres, PrivateServer, Stop, private_server
from simulacra_session import StoreError
from simulacra_session.stores import _sql_engine as sql_engine
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, run, texts
from test_sql_lost_commits import SERVERS
from test_store_sql import server_url

# -- a server of the test's own, stopped and started again -------------------------------------


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def own_server(request: pytest.FixtureRequest) -> Iterator[PrivateServer]:
    """One private server of each kind for this module's tests, which stop and restart it."""
    with private_server(request.param) as server:
        yield server


@pytest.fixture
def server(own_server: PrivateServer) -> Iterator[PrivateServer]:
    """The module's private server, running again after each test whatever the test did."""
    yield own_server
    if own_server.process is None:
        own_server.start()


def _through(proxy: CuttingProxy, server: PrivateServer) -> sa.URL:
    """The private server's URL through ``proxy`` (which reads PostgreSQL's COMMIT in clear)."""
    url = proxy.url(server.url)
    return url.update_query_dict({"sslmode": "disable"}) if isinstance(server, PrivatePostgres) else url


@pytest.mark.parametrize("stop", ["fast", "immediate", "kill"])
def test_auto_saves_through_a_server_restart_lose_nothing(server: PrivateServer, stop: Stop) -> None:
    """A burst of auto-saves with the server stopped in its middle (a fast or immediate
    shutdown, or the postmaster killed): each failed save is a StoreError naming the session,
    none hangs, and once the server is back the same manager saves the whole conversation,
    every message once."""
    store = SqlSessionStore(server.url, table=f"t{uuid.uuid4().hex[:12]}")
    watched = Watched(store)
    manager, conversation, errors = watched.manager, watched.conversation, watched.errors

    async def talk() -> str:
        session_id = manager.start_new()
        for index in range(20):
            conversation.append(msg(f"a{index}"))
            await asyncio.sleep(0)
        await manager.flush()
        for index in range(20):
            conversation.append(msg(f"b{index}"))
            if index == 5:
                await asyncio.to_thread(server.stop, stop)
            await asyncio.sleep(0)
        await manager.flush()
        # a killed postmaster's backends may serve their connections a little longer
        assert errors or stop == "kill"
        for event in errors:
            assert isinstance(event.error, StoreError)
            assert f"of session {session_id!r} in table {store.table!r} failed" in str(event.error)
        await asyncio.to_thread(server.start)
        for index in range(3):
            conversation.append(msg(f"c{index}"))
            await manager.flush()
        return session_id

    try:
        session_id = run(talk())
        stored = run(store.load(session_id))
        assert stored is not None
        assert texts(stored.messages) == texts(conversation.messages)
        assert len(stored.messages) == 43
    finally:
        if server.process is None:
            server.start()
        run(store.drop_tables())
        run(store.close())


@pytest.mark.parametrize("stop", ["immediate", "kill"])
def test_acknowledged_appends_survive_a_server_crash(server: PrivateServer, stop: Stop) -> None:
    """Appends from several tasks while the server crashes: every append that returned is
    stored after the restart, each one whole (its two messages together), and the same store
    object appends again."""
    store = SqlSessionStore(server.url, table=f"t{uuid.uuid4().hex[:12]}")
    acknowledged: list[str] = []
    failed: list[StoreError] = []
    enough = asyncio.Event()  # bound to run()'s loop on first use (Python 3.10+)

    async def writer(name: str) -> None:
        for index in range(200):
            try:
                await store.append(name, [msg(f"{name}.{index}.1"), msg(f"{name}.{index}.2")])
            except StoreError as error:
                failed.append(error)
                return
            acknowledged.append(f"{name}.{index}")
            if len(acknowledged) == 20:
                enough.set()

    async def crash() -> None:
        await enough.wait()
        await asyncio.to_thread(server.stop, stop)

    async def burst() -> None:
        await asyncio.gather(*(writer(f"w{number}") for number in range(3)), crash())

    try:
        run(burst())
        assert failed
        assert all("append of session 'w" in str(error) for error in failed)
        server.start()
        for number in range(3):
            name = f"w{number}"
            stored = run(store.load(name))
            held = texts(stored.messages) if stored is not None else []
            assert held[::2] == [f"{item}.1" for item in _prefixes(held)]
            assert held[1::2] == [f"{item}.2" for item in _prefixes(held)]
            mine = [item for item in acknowledged if item.startswith(f"{name}.")]
            assert _prefixes(held)[: len(mine)] == mine  # all acknowledged, perhaps one more
            assert len(_prefixes(held)) <= len(mine) + 1
            run(store.append(name, [msg("after")]))
    finally:
        if server.process is None:
            server.start()
        run(store.drop_tables())
        run(store.close())


def _prefixes(held: list[str]) -> list[str]:
    """``w0.3`` for each ``w0.3.1``: the appends whose first message is stored."""
    return [text.rsplit(".", 1)[0] for text in held[::2]]


def test_a_commit_the_server_made_before_it_crashed_is_a_store_error_saying_it_may_have_landed(
    server: PrivateServer,
) -> None:
    """The server commits and crashes before its answer: nobody can tell yet, and the error
    says so (never that the write failed); after the restart the write is there, whole."""
    proxy = CuttingProxy("127.0.0.1", server.port)
    store = SqlSessionStore(_through(proxy, server), table="unsure")
    try:
        run(store.save("a", [msg("one")]))
        proxy.cut("after", then=lambda: server.stop("immediate"))
        unknown = r"append of session 'a' .* failed: .*whether it was committed is unknown"
        with pytest.raises(StoreError, match=unknown):
            run(store.append("a", [msg("two"), msg("three")]))
        server.start()
        stored = run(store.load("a"))
        assert stored is not None
        assert texts(stored.messages) == ["one", "two", "three"]
    finally:
        if server.process is None:
            server.start()
        run(store.drop_tables())
        run(store.close())
        proxy.close()


def test_auto_saves_go_on_after_a_commit_the_server_made_before_it_crashed(server: PrivateServer) -> None:
    """The same under a SessionManager: the auto-save fails (nobody can tell), the server comes
    back, and the later auto-saves store the rest without a ``recover()``."""
    proxy = CuttingProxy("127.0.0.1", server.port)
    store = SqlSessionStore(_through(proxy, server), table="unsure2")
    watched = Watched(store)

    async def talk() -> str:
        session_id = await watched.start()
        proxy.cut("after", then=lambda: server.stop("immediate"))
        await watched.say("m2")
        assert len(watched.errors) == 1
        await asyncio.to_thread(server.start)
        await watched.say("m3", "m4")
        return session_id

    try:
        session_id = run(talk())
        assert [type(event.error) for event in watched.errors] == [StoreError]
        stored = run(store.load(session_id))
        assert stored is not None
        assert texts(stored.messages) == ["m1", "m2", "m3", "m4"]
    finally:
        if server.process is None:
            server.start()
        run(store.drop_tables())
        run(store.close())
        proxy.close()


def test_a_server_that_accepts_but_never_answers_is_a_store_error_not_a_hang(
    server: PrivateServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stopped (SIGSTOP of PostgreSQL's postmaster, of mariadbd: the port still
    accepts, nobody answers), as an overloaded or hung server: a store made from a URL gives
    up after its connect (libpq) or read (PyMySQL) timeout, shortened here (the drivers' own
    defaults wait for ever, and a cancelled write waits for its end), with a StoreError, and
    saves again once the server answers."""
    monkeypatch.setattr(sql_engine, "CONNECT_TIMEOUT", 2)  # libpq's least
    monkeypatch.setattr(sql_engine, "READ_TIMEOUT", 2)  # PyMySQL's, waiting for the greeting
    store = SqlSessionStore(server.url, table=f"t{uuid.uuid4().hex[:12]}")
    assert server.process is not None
    outcome: list[BaseException | None] = []

    def append() -> None:
        try:
            run(store.append("a", [msg("one")]))
        except BaseException as error:  # reported to the test's thread
            outcome.append(error)
        else:
            outcome.append(None)

    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        attempt = threading.Thread(target=append, daemon=True)
        attempt.start()
        attempt.join(sql_engine.CONNECT_TIMEOUT + 8)
        finished = not attempt.is_alive()
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    attempt.join(30)
    try:
        assert finished, "the append still waited for the server"
        assert len(outcome) == 1
        assert isinstance(outcome[0], StoreError)
        assert "append of session 'a'" in str(outcome[0])
        run(store.append("a", [msg("two")]))
        stored = run(store.load("a"))
        assert stored is not None
        assert texts(stored.messages) == ["two"]
    finally:
        run(store.drop_tables())
        run(store.close())


@pytest.mark.parametrize("backend", SERVERS)
def test_a_server_out_of_reach_is_tried_once_per_call(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts and never answers: the store's first call (its schema check) waits
    for one connect timeout and fails, not for one per schema attempt (ten, meant for schema
    races between processes, which need a connection to happen); a store made from a MySQL
    URL too (PyMySQL's own connect timeout ends with the TCP connection: it would wait for the
    server's greeting for ever)."""
    monkeypatch.setattr(sql_engine, "CONNECT_TIMEOUT", 2)  # shortened: the defaults' behaviour
    monkeypatch.setattr(sql_engine, "READ_TIMEOUT", 2)
    url = server_url("mysql" if backend == "mysql" else "postgres")
    proxy = CuttingProxy(url.host or "127.0.0.1", url.port or 0)
    proxy.hold()
    target: sa.URL | AsyncEngine = proxy.url(url)
    if backend == "postgresql-async":
        async_url = proxy.url(url).set(drivername="postgresql+asyncpg")
        target = create_async_engine(async_url, poolclass=NullPool, connect_args={"timeout": 2})
    store = SqlSessionStore(target, table="unreached")
    try:
        with pytest.raises(StoreError, match=r"save of session 'a' in table 'unreached' failed"):
            run(store.save("a", [msg("one")]))
        assert proxy.accepted == 1
    finally:
        run(store.close())
        if isinstance(target, AsyncEngine):
            run(target.dispose())
        proxy.close()


def test_an_async_driver_refused_a_connection_is_a_store_error() -> None:
    """asyncpg's refused connection (an ``OSError``) and connect timeout (``TimeoutError``)
    reach the store unwrapped by SQLAlchemy: they are StoreErrors like any driver's."""
    engine = create_async_engine("postgresql+asyncpg://someone:pw@127.0.0.1:9/nowhere", poolclass=NullPool)
    store = SqlSessionStore(engine)
    try:
        with pytest.raises(
            StoreError, match=r"append of session 'a' in table '\w+' failed: ConnectionRefused"
        ):
            run(store.append("a", [msg("one")]))
    finally:
        run(engine.dispose())


# -- SQLite: no server, the writing process killed instead ----------------------------------------

_SQLITE_WRITER = """
import sys
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, run

store = SqlSessionStore(f"sqlite:///{sys.argv[1]}")
for n in range(100000):
    run(store.append("a", [msg(f"{n}.1"), msg(f"{n}.2")]))
    print(n, flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
@pytest.mark.parametrize("after", [3, 17])
def test_a_sqlite_writer_killed_mid_commit_loses_no_acknowledged_append(tmp_path: Path, after: int) -> None:
    """SQLite's analogue of a server crash: the process appending is SIGKILLed while it writes.
    Every append it acknowledged is stored, each one whole, and the next process appends on.
    (A power cut, stronger, is ``test_store_power_loss``'s, where FUSE can be mounted.)"""
    database = tmp_path / "sessions.db"
    with subprocess.Popen(
        [sys.executable, "-c", _SQLITE_WRITER, str(database)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        acknowledged = [child.stdout.readline() for _ in range(after)]
        child.kill()
        acknowledged += child.stdout.readlines()  # what it printed before the kill
    acked = [int(line) for line in acknowledged if line.strip()]
    store = SqlSessionStore(f"sqlite:///{database}")
    try:
        stored = run(store.load("a"))
        assert stored is not None
        held = texts(stored.messages)
        count = len(held) // 2
        assert held == [f"{n}.{part}" for n in range(count) for part in (1, 2)]
        assert acked == list(range(len(acked)))
        assert len(acked) <= count <= len(acked) + 1  # perhaps one committed, never acknowledged
        run(store.append("a", [msg("after")]))
    finally:
        run(store.close())


# -- a server that refuses -------------------------------------------------------------------------


def test_a_read_only_server_then_a_full_one_refuse_with_store_errors_and_nothing_half_written(
    server: PrivateServer,
) -> None:
    """PostgreSQL turned read-only (``default_transaction_read_only``, as a hot standby is),
    then every connection slot taken (``max_connections``): each write is a StoreError naming
    the operation and the session, nothing of it is stored, and the same store writes again
    once the server takes writes. (MariaDB without grant tables lets every client past both.)"""
    if not isinstance(server, PrivatePostgres):
        pytest.skip("the private MariaDB's clients are all SUPER: read_only and the limit spare them")
    store = SqlSessionStore(server.url, table=f"t{uuid.uuid4().hex[:12]}")
    admin = sa.create_engine(server.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    hogs: list[sa.Connection] = []

    def read_only(on: bool) -> None:
        with admin.connect() as connection:
            setting = (
                "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
            )
            connection.execute(sa.text(f"ALTER SYSTEM {setting}"))
            connection.execute(sa.text("SELECT pg_reload_conf()"))
        run(_dispose(store))  # new connections read the new setting

    try:
        first = run(store.save("a", [msg("one")], {"label": "kept"}))
        read_only(True)
        with pytest.raises(StoreError, match=r"append of session 'a' in table '\w+' failed: ReadOnly"):
            run(store.append("a", [msg("refused")], {"label": "not kept"}))
        read_only(False)
        second = run(store.append("a", [msg("two")], expected=first))
        run(_dispose(store))  # its pooled connection would be kept
        while True:
            try:
                hogs.append(admin.connect())
            except sa.exc.OperationalError:
                break
        with pytest.raises(
            StoreError, match=r"save of session 'a' in table '\w+' failed: .*too many clients"
        ):
            run(store.save("a", [msg("never")]))
        for hog in hogs:
            hog.close()
        hogs.clear()
        run(store.append("a", [msg("three")], expected=second))
        stored = run(store.load("a"))
        assert stored is not None
        assert texts(stored.messages) == ["one", "two", "three"]
        assert stored.metadata.label == "kept"
    finally:
        for hog in hogs:
            hog.close()
        run(store.drop_tables())
        run(store.close())
        admin.dispose()


async def _dispose(store: SqlSessionStore) -> None:
    engine = store.engine
    assert isinstance(engine, sa.Engine)
    engine.dispose()
