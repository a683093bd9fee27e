"""Truncation: ``history.truncate`` keeps every fork's history (grandchildren included) and
works on stores without ``truncate``; the SQL store's ``truncate`` is durable, all or
nothing, and serializes with other writers under the session's row lock."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from simulacra_session import (
    ConflictError,
    InMemorySessionStore,
    JsonObject,
    Revision,
    StoreError,
    read_tail,
    resolve_history,
    truncate,
)
from simulacra_session.protocols import SessionStore, TruncatableStore
from simulacra_session.stores._sql_schema import Schema
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, run, texts
from test_store_sql import SERVER_BACKENDS, open_store


async def _history(store: SessionStore, session_id: str) -> builtins.list[str]:
    resolved = await resolve_history(store, session_id)
    assert resolved is not None
    return texts(resolved.messages)


def test_truncating_a_grandparent_keeps_the_chain_below() -> None:
    store = InMemorySessionStore()
    run(store.save("g", [msg(f"g{index}") for index in range(5)]))
    run(store.save("p", [msg("p0"), msg("p1")], {"parent_id": "g", "fork_message_count": 3}))
    run(store.save("c", [msg("c0")], {"parent_id": "p", "fork_message_count": 4}))
    run(store.save("q", [msg("q0")], {"parent_id": "g", "fork_message_count": 2}))
    before = {session: run(_history(store, session)) for session in ("p", "c", "q")}
    run(truncate(store, "g", 3))  # g keeps g0 g1: p inherited 3, q 2
    assert run(_history(store, "g")) == ["g0", "g1"]
    assert {session: run(_history(store, session)) for session in before} == before
    metadata = {session: run(store.load(session)).metadata for session in before}  # type: ignore[union-attr]
    assert metadata["p"].detached is True  # written with what it inherited
    assert not metadata["q"].detached  # inherits only what g kept
    assert not metadata["c"].detached  # p's history did not change
    assert texts(run(store.load("p")).messages) == ["g0", "g1", "g2", "p0", "p1"]  # type: ignore[union-attr]


def test_original_library_forks_are_kept_by_their_resolved_count() -> None:
    store = InMemorySessionStore()
    run(store.save("p", [msg("a", id="x1"), msg("b", id="x2"), msg("c", id="x3")]))
    run(store.save("f", [msg("own")], {"parent_id": "p", "fork_message_id": "x2"}))
    run(truncate(store, "p", 2))  # x2 goes: f inherited it
    assert run(_history(store, "f")) == ["a", "b", "own"]
    assert run(_history(store, "p")) == ["a"]


class PlainStore(InMemorySessionStore):
    """A memory store without ``truncate`` nor ``load_tail``: history falls back to ``save``."""

    truncate = None  # type: ignore[assignment]
    load_tail = None  # type: ignore[assignment]


def test_a_store_without_truncate_saves_what_remains() -> None:
    store = PlainStore()
    assert not isinstance(store, TruncatableStore)
    run(store.save("a", [msg("one"), msg("two"), msg("three")], {"label": "l"}))
    tail = run(read_tail(store, "a", 1))
    assert tail is not None
    revision = run(truncate(store, "a", 1, expected=tail.revision))
    stored = run(store.load("a"))
    assert stored is not None
    assert (texts(stored.messages), stored.metadata.label, stored.revision) == (["one", "two"], "l", revision)
    with pytest.raises(ConflictError):
        run(truncate(store, "a", 1, expected=tail.revision))


def test_without_expected_a_rewrite_overtaken_by_another_writer_is_made_again() -> None:
    class Racing(PlainStore):
        """Another writer appends once, between truncate's read and its write."""

        raced = False

        async def save(
            self,
            id: str,
            messages: Sequence[JsonObject],
            metadata: Mapping[str, Any] | None = None,
            *,
            expected: Revision | None = None,
        ) -> Revision:
            if expected is not None and not self.raced:
                self.raced = True
                await self.append(id, [msg("late")])
            return await super().save(id, messages, metadata, expected=expected)

    store = Racing()
    run(store.save("a", [msg("one"), msg("two")]))
    run(truncate(store, "a", 1))
    assert texts(run(store.load("a")).messages) == ["one", "two"]  # type: ignore[union-attr]


# -- the SQL store ------------------------------------------------------------------------------


@pytest.fixture(params=SERVER_BACKENDS)
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlSessionStore]:
    with open_store(request.param, tmp_path) as store:
        yield store


def _rows(store: SqlSessionStore, session_id: str) -> builtins.list[int]:
    messages = Schema.named(store.table).messages
    engine = store.engine
    assert isinstance(engine, sa.Engine)
    with engine.connect() as connection:
        where = messages.c.session_id == session_id
        return list(
            connection.execute(sa.select(messages.c.seq).where(where).order_by(messages.c.seq)).scalars()
        )


def test_sql_truncate_deletes_rows_durably(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"

    async def write() -> None:
        async with SqlSessionStore(url) as store:
            await store.save("a", [msg(f"m{index}") for index in range(10)])
            await store.truncate("a", 4)
            assert _rows(store, "a") == list(range(6))

    async def read() -> builtins.list[str]:
        async with SqlSessionStore(url) as store:  # another process, later
            stored = await store.load("a")
            assert stored is not None
            assert stored.metadata.message_count == 6
            return texts(stored.messages)

    run(write())
    assert run(read()) == [f"m{index}" for index in range(6)]


def test_sql_truncate_is_all_or_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with SqlSessionStore(f"sqlite:///{tmp_path / 'sessions.db'}") as store:
            await store.save("a", [msg(f"m{index}") for index in range(5)])
            before = await store.load("a")
            engine = store.engine
            assert isinstance(engine, sa.Engine)
            fail = "BEGIN SELECT RAISE(ABORT, 'disk'); END"
            with engine.begin() as connection:  # the row update fails after the rows were deleted
                connection.exec_driver_sql(f"CREATE TRIGGER fail BEFORE UPDATE ON {store.table} {fail}")
            with pytest.raises(StoreError, match="truncate"):
                await store.truncate("a", 2)
            assert await store.load("a") == before
            assert _rows(store, "a") == list(range(5))

    run(scenario())


def test_sql_pops_from_many_writers_take_each_message_once(sql_store: SqlSessionStore) -> None:
    run(sql_store.save("a", [msg(f"m{index}") for index in range(24)]))

    async def pop() -> str | None:
        while True:
            tail = await read_tail(sql_store, "a", 1)
            assert tail is not None
            if not tail.messages:
                return None
            try:
                await truncate(sql_store, "a", 1, expected=tail.revision)
            except ConflictError:
                continue
            return texts(tail.messages)[0]

    async def popper() -> builtins.list[str]:
        popped = []
        while (item := await pop()) is not None:
            popped.append(item)
        return popped

    async def race() -> builtins.list[builtins.list[str]]:
        return await asyncio.gather(*(popper() for _ in range(4)))

    results = run(race())
    assert sorted(item for popped in results for item in popped) == sorted(f"m{index}" for index in range(24))
    assert all(popped == sorted(popped, key=lambda text: -int(text[1:])) for popped in results)
    assert _rows(sql_store, "a") == []
