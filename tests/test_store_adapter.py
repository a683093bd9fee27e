"""AdapterSessionStore: the conformance suite over a sync and an async adapter, and its own rules."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from simulacra_session import AdapterSessionStore, CorruptSessionError, SessionRow, StoreError
from simulacra_session.testing import SessionStoreConformance, msg, run, texts

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))

from adapter_sqlite3 import Sqlite3Adapter  # the README's example adapter


class AiosqliteAdapter:
    """An async adapter: each call opens its own aiosqlite connection (any event loop will do)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with closing(sqlite3.connect(path)) as db:  # 3.13 warns of a connection left open
            db.execute(
                "CREATE TABLE IF NOT EXISTS sessions"
                " (id TEXT PRIMARY KEY, metadata TEXT, messages TEXT, updated_at TEXT)"
            )

    async def list(self) -> list[dict[str, Any]]:
        async with (
            aiosqlite.connect(self.path) as db,
            db.execute("SELECT id, metadata FROM sessions") as rows,
        ):
            return [{"id": id, "metadata": json.loads(metadata)} async for id, metadata in rows]

    async def load(self, id: str) -> dict[str, Any] | None:
        async with aiosqlite.connect(self.path) as db:
            found = await db.execute_fetchall("SELECT metadata, messages FROM sessions WHERE id = ?", (id,))
        rows = list(found)
        return None if not rows else {"metadata": json.loads(rows[0][0]), "messages": json.loads(rows[0][1])}

    async def upsert(self, row: SessionRow) -> None:
        async with aiosqlite.connect(self.path) as db:
            await db.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?)",
                (row["id"], json.dumps(row["metadata"]), json.dumps(row["messages"]), row["updated_at"]),
            )
            await db.commit()

    async def delete(self, id: str) -> bool:
        async with aiosqlite.connect(self.path) as db:
            cursor = await db.execute("DELETE FROM sessions WHERE id = ?", (id,))
            await db.commit()
            return cursor.rowcount > 0


class TestAdapterSessionStore(SessionStoreConformance):
    @pytest.fixture(params=["sqlite3", "aiosqlite"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AdapterSessionStore]:
        if request.param == "sqlite3":
            adapter = Sqlite3Adapter(str(tmp_path / "sessions.db"))
            yield AdapterSessionStore(adapter)
            adapter.db.close()
        else:
            yield AdapterSessionStore(AiosqliteAdapter(tmp_path / "sessions.db"))

    def test_rows_are_plain_json_with_updated_at(self, store: AdapterSessionStore, tmp_path: Path) -> None:
        run(store.save("a", [msg("x")], {"label": "l"}))
        with closing(sqlite3.connect(tmp_path / "sessions.db")) as db:
            metadata, messages, updated_at = db.execute(
                "SELECT metadata, messages, updated_at FROM sessions"
            ).fetchone()
        stored = json.loads(metadata)
        assert "id" not in stored
        assert stored["label"] == "l"
        assert stored["updated_at"] == updated_at
        assert json.loads(messages) == [msg("x")]

    def test_corrupt_rows(
        self, store: AdapterSessionStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        run(store.save("good", [msg("x")]))
        with closing(sqlite3.connect(tmp_path / "sessions.db")) as db, db:  # closed, after a commit
            db.execute(
                "INSERT INTO sessions VALUES ('bad', ?, '[]', '')", (json.dumps({"created_at": "never"}),)
            )
            db.execute("INSERT INTO sessions VALUES ('../evil', '{}', '[]', '')")
            db.execute(
                "INSERT INTO sessions VALUES ('notalist', ?, '{}', '')", (json.dumps({"created_at": 1}),)
            )
        with caplog.at_level(logging.WARNING, logger="simulacra_session"):
            assert [m.id for m in run(store.list())] == ["good"]
        assert "'bad'" in caplog.text
        assert "'../evil'" in caplog.text
        with pytest.raises(CorruptSessionError, match="metadata of session 'bad'"):
            run(store.load("bad"))
        with pytest.raises(CorruptSessionError, match="messages of session 'notalist'"):
            run(store.load("notalist"))


class FailingAdapter(Sqlite3Adapter):
    """A real adapter whose database goes away after it is set up."""

    def upsert(self, row: SessionRow) -> None:
        self.db.close()
        super().upsert(row)


def test_adapter_failures_are_store_errors_naming_the_session(tmp_path: Path) -> None:
    store = AdapterSessionStore(FailingAdapter(str(tmp_path / "sessions.db")))
    with pytest.raises(StoreError, match=r"adapter upsert of session 'a' failed: ProgrammingError") as caught:
        run(store.save("a", [msg("x")]))
    assert isinstance(caught.value.__cause__, sqlite3.ProgrammingError)
    with pytest.raises(StoreError, match="adapter list of sessions failed"):
        run(store.list())


def test_adapter_must_have_the_four_functions(tmp_path: Path) -> None:
    class Partial:
        def list(self) -> list[Any]:
            return []

        def load(self, id: str) -> None:
            return None

    with pytest.raises(TypeError, match="Partial lacks upsert, delete"):
        AdapterSessionStore(Partial())  # type: ignore[arg-type]


def test_sync_adapter_saves_are_each_one_upsert(tmp_path: Path) -> None:
    adapter = Sqlite3Adapter(str(tmp_path / "sessions.db"))
    store = AdapterSessionStore(adapter)
    run(store.save("a", [msg("1")]))
    run(store.save("a", [msg("1"), msg("2")], {"label": "two"}))
    stored = run(store.load("a"))
    assert stored is not None
    assert texts(stored.messages) == ["1", "2"]
    assert (stored.metadata.label, stored.metadata.message_count) == ("two", 2)
    assert adapter.db.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
    adapter.db.close()
