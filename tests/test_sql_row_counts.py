"""A SQL session's message rows must hold as many messages as its metadata counts. A load
(``load``, ``load_chain``, ``load_tail``) of rows that do not (edited by hand: a row holding
two messages, a count no rows make) is a ``CorruptSessionError`` naming the session and the
table. Before, the rows were joined as they were: a row holding ``{"a":1},{"evil":2}`` loaded
as two messages under a count of 1, and a count of 5 over one row loaded as 5 with one
message, which a later truncate or append numbered wrongly. Sessions whose rows agree load
as before, whole or in any tail."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from simulacra_session import CorruptSessionError
from simulacra_session._backend import dumps, loads
from simulacra_session.history import resolve_history
from simulacra_session.stores._sql_schema import Schema
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, run, texts
from test_store_sql import SERVER_BACKENDS, open_store, sync_engine_of


def _tamper(store: SqlSessionStore, statement: sa.Executable) -> None:
    with sync_engine_of(store).begin() as connection:
        connection.execute(statement)


def _say_count(store: SqlSessionStore, session_id: str, count: int, *, column: bool) -> None:
    """Make the metadata of ``session_id`` say ``count`` messages (and its column, with ``column``)."""
    sessions = Schema.named(store.table).sessions
    with sync_engine_of(store).connect() as connection:
        text = connection.execute(sa.select(sessions.c.metadata).where(sessions.c.id == session_id)).scalar()
    metadata = {**loads(text if isinstance(text, str) else dumps(text)), "message_count": count}
    values: dict[str, object] = {"metadata": dumps(metadata).decode()}
    if column:
        values["message_count"] = count
    _tamper(store, sa.update(sessions).where(sessions.c.id == session_id).values(**values))


def _refused(store: SqlSessionStore, session_id: str) -> str:
    return rf"corrupt session '{session_id}' in table '{store.table}'"


@pytest.mark.parametrize("column", [False, True], ids=["metadata", "metadata-and-column"])
@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_a_count_no_rows_make_is_corrupt_whole_or_in_a_tail(
    backend: str, column: bool, tmp_path: Path
) -> None:
    with open_store(backend, tmp_path) as store:
        run(store.save("lies", [msg("only")]))
        run(store.save("fork", [msg("own")], {"parent_id": "lies", "fork_message_count": 1}))
        _say_count(store, "lies", 5, column=column)
        named = _refused(store, "lies") + r": 1 message rows holding 1 messages, its metadata says 5"
        with pytest.raises(CorruptSessionError, match=named):
            run(store.load("lies"))
        with pytest.raises(CorruptSessionError, match=named):
            run(store.load_chain("fork"))
        with pytest.raises(CorruptSessionError, match=named):
            run(resolve_history(store, "fork"))
        in_a_tail = _refused(store, "lies") + r": \d message rows holding \d messages, its metadata says 5"
        for count in (1, 3, 10):
            with pytest.raises(CorruptSessionError, match=in_a_tail):
                run(store.load_tail("lies", count))
        assert texts(run(store.load("fork")).messages) == ["own"]  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_rows_beyond_the_count_are_corrupt(backend: str, tmp_path: Path) -> None:
    with open_store(backend, tmp_path) as store:
        run(store.save("s", [msg("a"), msg("b"), msg("c")]))
        _say_count(store, "s", 2, column=True)
        with pytest.raises(CorruptSessionError, match=_refused(store, "s") + ": 3 message rows"):
            run(store.load("s"))
        assert texts(run(store.load_tail("s", 2)).messages) == ["a", "b"]  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_a_row_holding_two_messages_is_corrupt(backend: str, tmp_path: Path) -> None:
    with open_store(backend, tmp_path) as store:
        run(store.save("inj", [msg("a")]))
        messages = Schema.named(store.table).messages
        try:
            _tamper(store, sa.update(messages).values(message='{"a":1},{"evil":2}'))
        except sa.exc.DBAPIError:
            assert backend == "postgresql", "its JSON column refuses the row"
            return
        named = _refused(store, "inj") + ": 1 message rows holding 2 messages, its metadata says 1"
        with pytest.raises(CorruptSessionError, match=named):
            run(store.load("inj"))
        with pytest.raises(CorruptSessionError, match=_refused(store, "inj") + ": 1 message rows holding 2"):
            run(store.load_tail("inj", 1))


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_sessions_whose_rows_agree_load_whole_and_in_every_tail(backend: str, tmp_path: Path) -> None:
    with open_store(backend, tmp_path) as store:
        names = [f"m{index}" for index in range(5)]
        run(store.save("s", [msg(name) for name in names[:3]]))
        run(store.append("s", [msg(name) for name in names[3:]]))
        run(store.save("empty", []))
        run(store.save("fork", [msg("own")], {"parent_id": "s", "fork_message_count": 4}))
        assert texts(run(store.load("s")).messages) == names  # type: ignore[union-attr]
        assert run(store.load("empty")).messages == []  # type: ignore[union-attr]
        assert texts(run(resolve_history(store, "fork")).messages) == [*names[:4], "own"]
        for count in (0, 1, 2, 5, 9):
            for end in (None, 0, 1, 3, 5, 7):
                stop = 5 if end is None else min(end, 5)
                tail = run(store.load_tail("s", count, end=end))
                assert tail is not None
                assert texts(tail.messages) == names[max(0, stop - count) : stop], (count, end)
                assert tail.metadata.message_count == 5
            assert run(store.load_tail("empty", count)).messages == []  # type: ignore[union-attr]
        run(store.truncate("s", 2))
        assert texts(run(store.load_tail("s", 2)).messages) == names[1:3]  # type: ignore[union-attr]
