"""Tail reads: ``history.read_tail`` reads only the messages it returns from a store with
``load_tail`` (up a fork chain too), falls back to resolving the history otherwise and for
what only resolution handles (missing parents, cycles, the original library's forks); the
SQL store's ``load_tail`` is one statement over a range of rows, whatever the session holds."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from simulacra_session import (
    CorruptSessionError,
    FileSessionStore,
    InMemorySessionStore,
    StoredSession,
    read_tail,
    resolve_history,
)
from simulacra_session.protocols import SessionStore, TailReadingStore
from simulacra_session.stores._sql_schema import Schema
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, run, texts
from test_store_sql import SERVER_BACKENDS, open_store


class CountingStore(InMemorySessionStore):
    """Counts the whole-session loads and the messages tail reads return."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: builtins.list[str] = []
        self.tail_messages = 0

    async def load(self, id: str) -> StoredSession | None:
        self.loads.append(id)
        return await super().load(id)

    async def load_tail(self, id: str, count: int, *, end: int | None = None) -> StoredSession | None:
        stored = await super().load_tail(id, count, end=end)
        self.tail_messages += len(stored.messages) if stored is not None else 0
        return stored


async def _deep_chain(store: SessionStore, depth: int, own: int) -> builtins.list[str]:
    """``s0`` with ``own`` messages, then ``depth`` forks each inheriting all but the last of its
    parent's history and adding ``own``; the ids, root first."""
    ids = ["s0"]
    await store.save("s0", [msg(f"s0-{index}") for index in range(own)])
    length = own
    for level in range(1, depth + 1):
        ids.append(f"s{level}")
        meta = {"parent_id": ids[-2], "fork_message_count": length - 1}
        await store.save(ids[-1], [msg(f"s{level}-{index}") for index in range(own)], meta)
        length = length - 1 + own
    return ids


def test_a_tail_store_reads_only_the_tail_up_a_fork_chain() -> None:
    store = CountingStore()
    ids = run(_deep_chain(store, 20, 10))
    resolved = run(resolve_history(store, ids[-1]))
    assert resolved is not None
    history = texts(resolved.messages)
    for count in (0, 1, 9, 10, 11, 25, 60, len(history), len(history) + 5):
        store.loads.clear()
        store.tail_messages = 0
        tail = run(read_tail(store, ids[-1], count))
        assert tail is not None
        assert texts(tail.messages) == (history[max(0, len(history) - count) :] if count else [])
        assert store.loads == []  # never a whole session
        assert store.tail_messages <= 2 * count  # a fork's own part may be read twice
        assert tail.metadata.id == ids[-1]
        assert tail.revision == run(store.load(ids[-1])).revision  # type: ignore[union-attr]


def test_a_tail_of_a_fork_inheriting_only_part_of_an_inheriting_parent() -> None:
    # p inherits 3 of g and adds 2; f inherits only 2 of p's history: both from g
    store = InMemorySessionStore()
    run(store.save("g", [msg("g0"), msg("g1"), msg("g2"), msg("g3")]))
    run(store.save("p", [msg("p0"), msg("p1")], {"parent_id": "g", "fork_message_count": 3}))
    run(store.save("f", [msg("f0")], {"parent_id": "p", "fork_message_count": 2}))
    for count in range(5):
        tail = run(read_tail(store, "f", count))
        assert tail is not None
        assert texts(tail.messages) == (["g0", "g1", "f0"][max(0, 3 - count) :] if count else [])


def test_a_missing_parent_is_read_as_resolution_reads_it(caplog: pytest.LogCaptureFixture) -> None:
    store = InMemorySessionStore()
    run(store.save("p", [msg("a"), msg("b")]))
    run(store.save("f", [msg("own")], {"parent_id": "p", "fork_message_count": 2}))
    run(store.delete("p"))
    with caplog.at_level(logging.WARNING, logger="simulacra_session"):
        tail = run(read_tail(store, "f", 3))
    assert tail is not None
    assert texts(tail.messages) == ["own"]
    assert "inherits from missing session p" in caplog.text
    with pytest.raises(CorruptSessionError, match="missing session p"):
        run(read_tail(store, "f", 3, strict=True))
    assert texts(run(read_tail(store, "f", 1)).messages) == ["own"]  # type: ignore[union-attr]


def test_a_cycle_raises_naming_it() -> None:
    store = InMemorySessionStore()
    run(store.save("a", [msg("a0")], {"parent_id": "b", "fork_message_count": 1}))
    run(store.save("b", [msg("b0")], {"parent_id": "a", "fork_message_count": 1}))
    with pytest.raises(CorruptSessionError, match="fork cycle"):
        run(read_tail(store, "a", 5))


def test_a_fork_point_beyond_the_parent_is_read_by_the_original_rule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemorySessionStore()
    run(store.save("p", [msg("a"), msg("b")]))
    run(store.save("f", [msg("own")], {"parent_id": "p", "fork_message_count": 7}))
    with caplog.at_level(logging.WARNING, logger="simulacra_session"):
        tail = run(read_tail(store, "f", 5))
    assert tail is not None
    assert texts(tail.messages) == ["a", "b", "own"]
    assert "inherits 7 messages but parent p has 2" in caplog.text


def test_a_store_without_load_tail_resolves_the_history() -> None:
    class Plain(InMemorySessionStore):
        load_tail = None  # type: ignore[assignment]

    store = Plain()
    assert not isinstance(store, TailReadingStore)
    ids = run(_deep_chain(store, 3, 2))
    tail = run(read_tail(store, ids[-1], 3))
    assert tail is not None
    assert texts(tail.messages) == ["s2-0", "s3-0", "s3-1"]


def test_the_tail_of_an_absent_session_is_none() -> None:
    assert run(read_tail(InMemorySessionStore(), "nobody", 3)) is None


# -- the SQL store's load_tail ------------------------------------------------------------------


@pytest.fixture(params=SERVER_BACKENDS)
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlSessionStore]:
    with open_store(request.param, tmp_path) as store:
        yield store


def _statements(store: SqlSessionStore) -> builtins.list[str]:
    """The SQL statements the store's engine executes from now on."""
    executed: builtins.list[str] = []
    engine = store.engine
    assert isinstance(engine, sa.Engine)

    @sa.event.listens_for(engine, "before_cursor_execute")
    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        executed.append(statement)

    return executed


def test_sql_load_tail_is_one_statement_over_the_rows_it_returns(sql_store: SqlSessionStore) -> None:
    run(sql_store.save("a", [msg(f"m{index}") for index in range(300)]))
    executed = _statements(sql_store)
    tail = run(sql_store.load_tail("a", 3))
    assert tail is not None
    assert texts(tail.messages) == ["m297", "m298", "m299"]
    assert len(executed) == 1
    # a row outside the range is never parsed: damaged, a whole load fails, the tail does not
    if sql_store.engine.dialect.name == "postgresql":
        return  # a json column holds only valid JSON
    messages = Schema.named(sql_store.table).messages
    engine = sql_store.engine
    assert isinstance(engine, sa.Engine)
    with engine.begin() as connection:
        where = sa.and_(messages.c.session_id == "a", messages.c.seq == 5)
        connection.execute(messages.update().where(where).values(message="{damaged"))
    with pytest.raises(CorruptSessionError):
        run(sql_store.load("a"))
    for count, end, expected in ((3, None, ["m297", "m298", "m299"]), (2, 5, ["m3", "m4"])):
        tail = run(sql_store.load_tail("a", count, end=end))
        assert tail is not None
        assert texts(tail.messages) == expected


def test_sql_read_tail_through_forks(sql_store: SqlSessionStore) -> None:
    ids = run(_deep_chain(sql_store, 5, 4))
    resolved = run(resolve_history(sql_store, ids[-1]))
    assert resolved is not None
    history = texts(resolved.messages)
    for count in (1, 4, 5, 9, len(history)):
        tail = run(read_tail(sql_store, ids[-1], count))
        assert tail is not None
        assert texts(tail.messages) == history[-count:]


def test_counts_beyond_any_engine_and_counts_that_are_not_ints(
    sql_store: SqlSessionStore, tmp_path: Path
) -> None:
    """A count or page beyond what the engine's integers hold reads everything, as the file and
    memory stores do; a count that is not an int is refused with ``TypeError`` naming it, by
    every store alike (one engine would round it, another truncate it)."""
    messages = [msg(f"m{index}") for index in range(4)]
    others = [InMemorySessionStore(), FileSessionStore(tmp_path / "files")]
    for store in [sql_store, *others]:
        run(store.save("s", messages))
        for count in (2**31, 2**63, 2**70):
            tail = run(store.load_tail("s", count))
            assert tail is not None
            assert texts(tail.messages) == ["m0", "m1", "m2", "m3"]
            assert [meta.id for meta in run(store.list(limit=count))] == ["s"]
            assert run(store.list(offset=count)) == []
        for name, call in (
            ("count", lambda store: store.load_tail("s", 1.5)),
            ("end", lambda store: store.load_tail("s", 1, end=2.0)),
            ("limit", lambda store: store.list(limit=1.5)),
            ("offset", lambda store: store.list(offset=None)),
        ):
            with pytest.raises(TypeError, match=f"^{name} must be an int, got {name}="):
                run(call(store))
