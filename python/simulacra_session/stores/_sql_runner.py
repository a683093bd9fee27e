"""How the SQL store runs its work: each call one transaction, in a worker thread (a sync
engine) or on the event loop (an async one), after the schema is checked (made and migrated
when allowed) on first use. A transaction the database rolled back as a deadlock victim is
run again; a write whose commit failed is settled from its row read afterwards
(``_sql_unsure``)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..models import Revision
from ._sql_engine import failure, loop_turns, thread_turns, transient
from ._sql_migrate import check_schema
from ._sql_schema import Schema, Statements
from ._sql_unsure import UNKNOWN, Landed, Unknown, revision_under_lock, settle

__all__ = ["Runner"]

T = TypeVar("T")
_SCHEMA_ATTEMPTS = 10  # CREATE TABLE races between processes; each attempt sees more of the schema
_ATTEMPTS = 8  # a transaction the database chose as a deadlock victim is run again, this often


class Runner:
    """Runs one store's transactions on ``engine``; ``ready`` once its schema is checked."""

    def __init__(
        self,
        engine: sa.Engine | AsyncEngine,
        schema: Schema,
        statements: Statements,
        dialect: str,
        table: str,
        create: bool,
    ) -> None:
        self._engine, self._schema, self._statements = engine, schema, statements
        self._dialect, self.table, self._create = dialect, table, create
        self.ready = False
        # an async engine's loop, and a lock for its coroutines waiting on _prepare
        self._preparing: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        # a sync engine's transactions that must take turns (SQLite's, a pool of one connection)
        turns = thread_turns(engine) if isinstance(engine, sa.Engine) else None
        self._serial: threading.Lock | contextlib.nullcontext[None] = turns or contextlib.nullcontext()

    async def run(
        self,
        operation: str,
        session_id: str | None,
        work: Callable[[sa.Connection], T],
        *,
        prepare: bool = True,
        landed: Landed[T] | None = None,
    ) -> T:
        """Run ``work`` in one transaction (after the schema check, the first time, if ``prepare``).

        A transaction rolled back as a deadlock victim is run again, after a short random
        pause that grows with each attempt (``work`` starts afresh: nothing of it was kept).
        A write whose commit failed (the connection lost: committed or not, the server knows)
        is settled by ``landed``, which tells from the session's revision read afterwards
        whether it is the one ``work`` returned (see ``_settle``).
        """
        for attempt in range(1, _ATTEMPTS + 1):
            done: list[T] = []  # what work returned: any failure after it is the commit's

            def tracked(connection: sa.Connection, done: list[T] = done) -> T:
                result = work(connection)
                done.append(result)
                return result

            try:
                return await self._once(tracked, prepare=prepare)
            except sa.exc.DBAPIError as error:
                retry = attempt < _ATTEMPTS and transient(error)
                if not retry and done and landed is not None and session_id is not None:
                    return await self._settle(operation, session_id, done[0], landed, error)
                if not retry:
                    raise failure(operation, session_id, self.table, error) from error
            except (sa.exc.SQLAlchemyError, OSError, asyncio.TimeoutError) as error:
                # an async driver's connection refused or timed out is not wrapped (asyncpg)
                raise failure(operation, session_id, self.table, error) from error
            await asyncio.sleep(random.uniform(0, 0.001 * 2**attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _once(self, work: Callable[[sa.Connection], T], *, prepare: bool, commit: bool = True) -> T:
        """``work`` in one transaction, committed (else rolled back) at its end."""
        if isinstance(self._engine, AsyncEngine):
            return await self._run_async(self._engine, work, prepare, commit)
        return await asyncio.to_thread(self._run_sync, self._engine, work, prepare, commit)

    async def _settle(
        self, operation: str, session_id: str, result: T, landed: Landed[T], error: sa.exc.DBAPIError
    ) -> T:
        """``result`` when the write whose commit failed with ``error`` is in the database after
        all (see ``_sql_unsure.settle``); else ``StoreError``."""

        def check(connection: sa.Connection) -> Revision | None:
            return revision_under_lock(connection, self._statements, self.table, session_id)

        now: Revision | Unknown | None
        try:
            now = await self._once(check, prepare=False, commit=False)
        except (sa.exc.SQLAlchemyError, OSError, asyncio.TimeoutError):
            now = UNKNOWN
        return settle(operation, session_id, self.table, result, landed, error, now)

    def _run_sync(
        self, engine: sa.Engine, work: Callable[[sa.Connection], T], prepare: bool, commit: bool
    ) -> T:
        with self._serial:
            if prepare and not self.ready:
                self._prepare(engine.connect)
            if not commit:
                with engine.connect() as connection:  # rolled back when closed
                    return work(connection)
            with engine.begin() as connection:
                return work(connection)

    async def _run_async(
        self, engine: AsyncEngine, work: Callable[[sa.Connection], T], prepare: bool, commit: bool
    ) -> T:
        turns = loop_turns(engine)  # a pool of one connection: one transaction on it at a time
        async with turns or contextlib.nullcontext():
            if prepare and not self.ready:
                await self._prepare_async(engine)
            if not commit:
                async with engine.connect() as connection:  # rolled back when closed
                    return await connection.run_sync(work)
            async with engine.begin() as connection:
                return await connection.run_sync(work)

    async def _prepare_async(self, engine: AsyncEngine) -> None:
        """``_prepare`` for an async engine: one coroutine of the loop prepares, the others wait."""
        loop = asyncio.get_running_loop()
        if self._preparing is None or self._preparing[0] is not loop:
            self._preparing = (loop, asyncio.Lock())
        async with self._preparing[1]:
            for attempt in range(1, _SCHEMA_ATTEMPTS + 1):
                if self.ready:
                    return
                async with engine.connect() as connection:  # out of reach: raises at once
                    try:
                        await connection.run_sync(self._check_schema)
                    except sa.exc.SQLAlchemyError:
                        if attempt == _SCHEMA_ATTEMPTS:
                            raise
                    else:
                        self.ready = True
                        return
                await asyncio.sleep(random.uniform(0, 0.01))

    def _prepare(self, connect: Callable[[], contextlib.AbstractContextManager[sa.Connection]]) -> None:
        """Create and migrate (when allowed) and check the schema; again when another process
        raced us to it. A server out of reach fails the first connection, and the call, at once
        (a connect timeout is waited for once, not once per attempt)."""
        for attempt in range(1, _SCHEMA_ATTEMPTS + 1):
            with connect() as connection:
                try:
                    self._check_schema(connection)
                except sa.exc.SQLAlchemyError:
                    if attempt == _SCHEMA_ATTEMPTS:
                        raise
                else:
                    self.ready = True
                    return
            time.sleep(random.uniform(0, 0.01))  # a worker thread: the loop goes on

    def _check_schema(self, connection: sa.Connection) -> None:
        check_schema(connection, self._schema, self._dialect, self._create)
