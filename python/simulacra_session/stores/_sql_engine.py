"""The SQL store's engine and errors: the engine a URL makes (SQLite tuned for concurrent
writers, MySQL at READ COMMITTED, server connections tested before use), the locks at which an
engine's transactions take turns, which failures are worth a retry, and how one is reported."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from ..errors import StoreError

__all__ = ["engine_for", "failure", "loop_turns", "thread_turns", "transient"]

#: SQLSTATEs of a transaction the database rolled back to let another one through
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected
_MYSQL_DEADLOCK = 1213
#: Seconds a connection attempt waits for the server (a URL's ``connect_timeout`` wins): libpq
#: would wait for ever on a server that accepts and never answers (hung, overloaded, stopped),
#: and a write cannot be cancelled meanwhile. PyMySQL's default is the same 10 s, asyncpg's 60 s.
CONNECT_TIMEOUT = 10
_LIBPQ_DRIVERS = frozenset({"psycopg", "psycopg_async", "psycopg2"})
#: Seconds PyMySQL waits for a server's answer (a URL's ``read_timeout`` wins): its connect
#: timeout ends with the TCP connection, and a server that never sends its greeting, or the
#: answer to a statement, would otherwise be waited for for ever. Above InnoDB's lock wait (50 s).
READ_TIMEOUT = 120
#: Seconds a SQLite connection waits for another's lock (the driver's ``timeout``), and for a
#: switch to WAL that another process makes at the same moment.
SQLITE_TIMEOUT = 30

_turns_guard = threading.Lock()  # stores on one engine may start in several threads at once
_thread_turns: weakref.WeakKeyDictionary[sa.Engine, threading.Lock] = weakref.WeakKeyDictionary()
_loop_turns: weakref.WeakKeyDictionary[
    sa.Engine, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
] = weakref.WeakKeyDictionary()


def transient(error: sa.exc.DBAPIError) -> bool:
    """Whether the database rolled the transaction back as a deadlock victim or serialization
    failure: running it again is the documented remedy (MySQL, PostgreSQL)."""
    cause = error.orig
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state in _TRANSIENT_SQLSTATES:
        return True
    args: tuple[Any, ...] = getattr(cause, "args", ())
    return bool(args) and args[0] == _MYSQL_DEADLOCK


def engine_for(url: str | sa.URL) -> sa.Engine | AsyncEngine:
    """An engine for ``url``: async when its driver is; SQLite tuned for concurrent writers.

    A SQLite file gets WAL (readers never block the writer), every commit synced before it
    returns whatever the build's default (``synchronous=FULL``; macOS's ``F_FULLFSYNC`` with
    ``fullfsync``, as the file store), enforced foreign keys and a 30 s busy timeout; an
    in-memory SQLite database is one shared connection, so every thread sees the same database
    (its transactions take turns: ``thread_turns``, ``loop_turns``). MySQL runs at READ
    COMMITTED: the store's row locks are what orders writers, and InnoDB's gap locks at
    REPEATABLE READ would make concurrent first saves of different sessions deadlock. A server's
    pooled connection is tested before use (``pool_pre_ping``), so the first call after the
    server restarted or dropped an idle connection opens a new one, not fails. A PostgreSQL
    connection through libpq gives up after ``CONNECT_TIMEOUT`` seconds, PyMySQL waits for an
    answer ``READ_TIMEOUT`` seconds.
    """
    parsed = sa.make_url(url)
    options: dict[str, Any]
    is_sqlite = parsed.get_backend_name() == "sqlite"
    in_memory = is_sqlite and parsed.database in (None, "", ":memory:")
    if in_memory:
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    elif is_sqlite:
        options = {"connect_args": {"timeout": SQLITE_TIMEOUT}}
    elif parsed.get_backend_name() in ("mysql", "mariadb"):
        options = {"isolation_level": "READ COMMITTED", "pool_pre_ping": True}
        if parsed.get_driver_name() == "pymysql" and "read_timeout" not in parsed.query:
            options["connect_args"] = {"read_timeout": READ_TIMEOUT, "write_timeout": READ_TIMEOUT}
    else:
        options = {"pool_pre_ping": True}
        if parsed.get_driver_name() in _LIBPQ_DRIVERS and "connect_timeout" not in parsed.query:
            options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    make = create_async_engine if parsed.get_dialect().is_async else sa.create_engine
    engine: sa.Engine | AsyncEngine = make(parsed, **options)
    if is_sqlite:
        # synced first, so that the switch to WAL (a write of a new file's header) is synced too
        durable = ["PRAGMA synchronous=FULL", "PRAGMA fullfsync=ON", "PRAGMA journal_mode=WAL"]
        pragmas = ["PRAGMA foreign_keys=ON"] + ([] if in_memory else durable)
        sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

        @sa.event.listens_for(sync_engine, "connect")
        def _sqlite_pragmas(connection: Any, record: Any) -> None:
            cursor = connection.cursor()
            try:
                for pragma in pragmas:
                    _execute_while_locked(cursor, pragma)
            finally:
                cursor.close()

    return engine


def _execute_while_locked(cursor: Any, pragma: str) -> None:
    """Run ``pragma``, again after a short pause while SQLite says the database is locked, for up
    to ``SQLITE_TIMEOUT`` seconds. Its busy timeout does not wait for a switch to WAL that
    another connection is making to a new database (two processes opening it at once): the
    switch is refused at once, and a store's first call failed with "database is locked"."""
    deadline = time.monotonic() + SQLITE_TIMEOUT
    while True:
        try:
            cursor.execute(pragma)
            return
        except Exception as error:  # the driver's OperationalError (sqlite3's, or aiosqlite's adapted)
            if "database is locked" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(random.uniform(0.001, 0.01))  # a worker thread's (the driver's): the loop goes on


def thread_turns(engine: sa.Engine) -> threading.Lock | None:
    """The lock at which a sync engine's transactions take turns, one per engine (so stores
    sharing it share it): on SQLite, which has one writer at a time (this process's threads
    queue here, not in its busy loop), and when the pool is one connection (``StaticPool``),
    whose transactions would otherwise commit or roll back each other's work. ``None`` elsewhere.
    """
    if engine.dialect.name != "sqlite" and not isinstance(engine.pool, StaticPool):
        return None
    with _turns_guard:
        lock = _thread_turns.get(engine)
        if lock is None:
            lock = _thread_turns[engine] = threading.Lock()
        return lock


def loop_turns(engine: AsyncEngine) -> asyncio.Lock | None:
    """The lock at which an async engine's transactions take turns in the running loop when
    its pool is one connection, as an in-memory SQLite database's is (``StaticPool``; or a
    ``SingletonThreadPool``, whose one connection per thread the loop's coroutines share):
    a coroutine's ``COMMIT`` or ``ROLLBACK`` there would end another's transaction half done.
    One per engine and loop; ``None`` for a pool of several connections.
    """
    sync_engine = engine.sync_engine
    if not isinstance(sync_engine.pool, (StaticPool, SingletonThreadPool)):
        return None
    loop = asyncio.get_running_loop()
    with _turns_guard:
        locks = _loop_turns.setdefault(sync_engine, weakref.WeakKeyDictionary())
        lock = locks.get(loop)
        if lock is None:
            lock = locks[loop] = asyncio.Lock()
        return lock


def failure(operation: str, session_id: str | None, table: str, error: BaseException) -> StoreError:
    """A ``StoreError`` naming the operation, the session and the table: the driver's own
    words, first line only (never the statement's parameters or the connection URL)."""
    cause: BaseException = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    detail = lines[0] if lines else ""
    subject = f"session {session_id!r}" if session_id is not None else "sessions"
    return StoreError(f"{operation} of {subject} in table {table!r} failed: {type(cause).__name__}: {detail}")
