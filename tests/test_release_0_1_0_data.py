"""Data written by release 0.1.0, read, listed and continued by this tree with nothing lost.

The fixtures in ``tests/fixtures/v0.1.0`` were written by 0.1.0 itself (commit 017697d, its
compiled extension) with ``make_fixtures.py`` there: a ``FileSessionStore`` root of version 1
journals and a ``format="json"`` document, the same corpus in an SQLite file of schema
version 1, and ``expected.json``, what 0.1.0 read back from both (listing order, each session's
metadata and messages, resolved history, forks). 0.1.0 is not needed here. Git keeps no hard
links, so each test's copy gets the fork index links 0.1.0 made again (``links``). Every test
works on a copy in ``tmp_path``: the committed fixtures are never written.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from simulacra_session import SessionManager, SimpleConversation, SqlSessionStore
from simulacra_session.doctor import Report, check_store
from simulacra_session.errors import StoreError
from simulacra_session.history import resolve_history
from simulacra_session.messages import Message
from simulacra_session.stores.file import FileSessionStore
from simulacra_session.transfer import export_sessions, import_sessions

FIXTURES = Path(__file__).parent / "fixtures" / "v0.1.0"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text(encoding="ascii"))
KINDS = ["file", "sqlite"]
Store = FileSessionStore | SqlSessionStore


def canonical(value: Any) -> str:
    """JSON text that tells apart what ``==`` does not: key order, ``1`` / ``1.0`` / ``True``, ``-0.0``."""
    return json.dumps(value, ensure_ascii=False)


def history(expected: dict[str, Any]) -> list[Any]:
    """A session's resolved history as 0.1.0 read it (its own messages unless it inherits)."""
    return expected.get("history", expected["messages"])  # type: ignore[no-any-return]


def copy_files(tmp_path: Path) -> Path:
    """A copy of the file store's root, its fork index linked again as 0.1.0 left it."""
    root = tmp_path / "files"
    shutil.copytree(FIXTURES / "files", root)
    for link, target in EXPECTED["file"]["links"].items():
        (root / link).parent.mkdir(exist_ok=True)
        os.link(root / target, root / link)
    return root


def copy_database(tmp_path: Path) -> Path:
    database = tmp_path / "sessions.db"
    shutil.copyfile(FIXTURES / "sessions.db", database)
    return database


@pytest.fixture(params=KINDS)
async def released(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, Store]]:
    """The kind of store (a key of ``expected.json``) and a store of this tree over its copy."""
    kind: str = request.param
    if kind == "file":
        yield kind, FileSessionStore(copy_files(tmp_path))
        return
    store = SqlSessionStore(f"sqlite:///{copy_database(tmp_path)}")
    yield kind, store
    await store.close()


def journal_version(path: Path) -> int:
    """The format version a journal's header names."""
    header = path.read_bytes().split(b"\n", 1)[0]
    version: int = json.loads(header[: header.index(b",", len(b'["simulacra-session",')) + 1] + b"0]")[1]
    return version


def test_fixtures_are_what_0_1_0_wrote(tmp_path: Path) -> None:
    """The committed files are version 1 journals, a JSON document and a schema 1 database."""
    files = FIXTURES / "files"
    journals = sorted(files.glob("*.jsonl"))
    assert len(journals) == 8
    assert {journal_version(path) for path in journals} == {1}
    assert (files / "document.json").is_file()
    assert sorted(path.name for path in FIXTURES.glob("sessions.db*")) == [
        "sessions.db"
    ]  # nothing left beside it
    with closing(sqlite3.connect(copy_database(tmp_path))) as connection:  # a WAL file makes -shm
        assert connection.execute("SELECT name, version FROM simulacra_sessions_schema").fetchall() == [
            ("simulacra-session", 1)
        ]
    assert "0.1.0" in EXPECTED["written_by"]


async def test_every_session_loads_as_0_1_0_loaded_it(released: tuple[str, Store]) -> None:
    kind, store = released
    expected = EXPECTED[kind]
    assert expected["sessions"]
    for session_id, session in expected["sessions"].items():
        stored = await store.load(session_id)
        assert stored is not None, session_id
        assert canonical(stored.metadata.to_json_dict(include_id=True)) == canonical(session["metadata"])
        assert canonical(stored.messages) == canonical(session["messages"]), session_id
        resolved = await resolve_history(store, session_id, strict=True)
        assert resolved is not None
        assert resolved.inherited == session["inherited"], session_id
        assert canonical(resolved.messages) == canonical(history(session)), session_id
    for session_id in expected["deleted"]:
        assert await store.load(session_id) is None


async def test_listing_and_forks_as_0_1_0(released: tuple[str, Store]) -> None:
    kind, store = released
    expected = EXPECTED[kind]
    listed = await store.list()
    assert [meta.id for meta in listed] == [meta["id"] for meta in expected["list"]]
    assert [canonical(meta.to_json_dict(include_id=True)) for meta in listed] == [
        canonical(meta) for meta in expected["list"]
    ]
    manager = SessionManager(store, SimpleConversation(), auto_save=False)
    for session_id, session in expected["sessions"].items():
        assert [fork.id for fork in await manager.forks(session_id)] == session["forks"], session_id
    roles = expected["roles"]  # the corpus has its forks: a fork of a fork, a detached one
    assert sorted(expected["sessions"]["main"]["forks"]) == sorted([roles["fork"], roles["detached"]])
    assert expected["sessions"][roles["fork"]]["forks"] == [roles["fork_of_fork"]]


async def test_managers_load_the_histories(released: tuple[str, Store]) -> None:
    kind, store = released
    for session_id, session in EXPECTED[kind]["sessions"].items():
        conversation = SimpleConversation()
        manager = SessionManager(store, conversation, auto_save=False)
        assert await manager.load(session_id) == session_id
        assert canonical(list(conversation.messages)) == canonical(history(session))
        manager.dispose()


def new_message(session_id: str) -> dict[str, Any]:
    return {
        "id": f"new-{session_id}",
        "timestamp": 1_800_000_000_000,
        "role": "user",
        "content": [{"type": "text", "text": f"continued by this tree ✓ {session_id}"}],
    }


async def continue_all(store: Store, kind: str) -> None:
    """Append one message to every session through a ``SessionManager`` (an auto-save)."""
    conversation = SimpleConversation()
    async with SessionManager(store, conversation) as manager:
        for session_id in EXPECTED[kind]["sessions"]:
            await manager.load(session_id)
            conversation.append(cast(Message, new_message(session_id)))
            await manager.flush()


async def check_continued(store: Store, kind: str) -> None:
    """Every session holds what 0.1.0 read, then the message appended, its metadata kept."""
    expected = EXPECTED[kind]
    for session_id, session in expected["sessions"].items():
        stored = await store.load(session_id)
        assert stored is not None, session_id
        assert canonical(stored.messages) == canonical([*session["messages"], new_message(session_id)])
        resolved = await resolve_history(store, session_id, strict=True)
        assert resolved is not None
        assert canonical(resolved.messages) == canonical([*history(session), new_message(session_id)])
        old = {
            key: value
            for key, value in session["metadata"].items()
            if key not in ("updated_at", "message_count")
        }
        now = stored.metadata.to_json_dict(include_id=True)
        assert canonical({key: now[key] for key in old}) == canonical(old), session_id
        assert now["message_count"] == len(session["messages"]) + 1
        assert now["updated_at"] > session["metadata"]["updated_at"]
    listed = [meta.id for meta in await store.list()]
    assert sorted(listed) == sorted(expected["sessions"])


async def test_appends_continue_every_session(released: tuple[str, Store], tmp_path: Path) -> None:
    kind, store = released
    await continue_all(store, kind)
    await check_continued(store, kind)
    if kind == "file":
        await check_continued(FileSessionStore(tmp_path / "files"), kind)  # as a new process reads it
        journals = sorted((tmp_path / "files").glob("*.jsonl"))
        assert {journal_version(path) for path in journals} == {2}
        assert len(journals) == len(EXPECTED[kind]["sessions"]) - 1  # the document stays one
        assert json.loads((tmp_path / "files" / "document.json").read_bytes())["messages"][-1] == new_message(
            "document"
        )


async def test_the_document_converts_to_a_journal(tmp_path: Path) -> None:
    store = FileSessionStore(copy_files(tmp_path))
    session = EXPECTED["file"]["sessions"]["document"]
    assert await store.convert("document") is True
    assert not (tmp_path / "files" / "document.json").exists()
    assert journal_version(tmp_path / "files" / "document.jsonl") == 2
    stored = await FileSessionStore(tmp_path / "files").load("document")
    assert stored is not None
    assert canonical(stored.messages) == canonical(session["messages"])
    assert canonical(stored.metadata.to_json_dict(include_id=True)) == canonical(session["metadata"])


def problems(report: Report) -> list[tuple[str, str | None, str, bool]]:
    return [
        (problem.kind, problem.session_id, problem.detail, problem.repaired) for problem in report.problems
    ]


async def test_doctor_finds_nothing_wrong(released: tuple[str, Store]) -> None:
    """Nothing, but on the file store the fork of the parent 0.1.0 deleted: 0.1.0 removed a
    deleted session's fork index, this tree keeps it (its ``forks`` lists the forks of a deleted
    parent, as SQL's does), so the entry is missing until the fork's next write links it again."""
    kind, store = released
    expected = EXPECTED[kind]
    orphan = expected["roles"]["orphan"]
    missing = f"the entry is missing from the fork index for fork {orphan} of doomed"
    assert problems(await check_store(store)) == (
        [] if kind == "sqlite" else [("fork_link", orphan, missing, False)]
    )
    for gone, forks in expected["forks_of_deleted"].items():  # as 0.1.0 found them
        assert [fork.id for fork in await store.forks(gone)] == forks
    await continue_all(store, kind)
    assert problems(await check_store(store)) == []
    assert [fork.id for fork in await store.forks("doomed")] == [orphan]


async def test_doctor_repairs_the_fork_index_of_a_deleted_parent(tmp_path: Path) -> None:
    store = FileSessionStore(copy_files(tmp_path))
    orphan = EXPECTED["file"]["roles"]["orphan"]
    report = await check_store(store, repair=True)
    assert [(kind, session_id, repaired) for kind, session_id, _, repaired in problems(report)] == [
        ("fork_link", orphan, True)
    ]
    assert problems(await check_store(store)) == []
    assert [fork.id for fork in await store.forks("doomed")] == [orphan]
    stored = await store.load(orphan)
    assert stored is not None
    assert canonical(stored.messages) == canonical(EXPECTED["file"]["sessions"][orphan]["messages"])


@pytest.mark.parametrize("into", ["file", "sqlite"])
async def test_export_then_import_round_trips(released: tuple[str, Store], tmp_path: Path, into: str) -> None:
    kind, store = released
    out = io.BytesIO()
    assert await export_sessions(store, out) == len(EXPECTED[kind]["sessions"])
    fresh: Store
    if into == "file":
        fresh = FileSessionStore(tmp_path / "imported")
    else:
        fresh = SqlSessionStore(f"sqlite:///{tmp_path / 'imported.db'}")
    out.seek(0)
    await import_sessions(fresh, out)
    for session_id, session in EXPECTED[kind]["sessions"].items():
        stored = await fresh.load(session_id)
        assert stored is not None, session_id
        assert canonical(stored.metadata.to_json_dict(include_id=True)) == canonical(session["metadata"])
        assert canonical(stored.messages) == canonical(session["messages"])
        resolved = await resolve_history(fresh, session_id, strict=True)
        assert resolved is not None
        assert canonical(resolved.messages) == canonical(history(session))
    assert [meta.id for meta in await fresh.list()] == [meta["id"] for meta in EXPECTED[kind]["list"]]
    if isinstance(fresh, SqlSessionStore):
        await fresh.close()


async def test_sqlite_schema_1_is_migrated_on_create(tmp_path: Path) -> None:
    database = copy_database(tmp_path)
    url = f"sqlite:///{database}"
    readonly = SqlSessionStore(url, create=False)
    with pytest.raises(
        StoreError, match=r"version 1; .* \(create=False: open it once with create=True to migrate it\)"
    ):
        await readonly.list()
    await readonly.close()
    async with SqlSessionStore(url) as store:
        assert len(await store.list()) == len(EXPECTED["sqlite"]["sessions"])
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("SELECT version FROM simulacra_sessions_schema").fetchall() == [(2,)]
    async with SqlSessionStore(url, create=False) as store:  # migrated: it opens without DDL
        await continue_all(store, "sqlite")
        await check_continued(store, "sqlite")


def server_url(name: str) -> str:
    """A test server's URL (see ``tests/test_store_sql.py``); skip, or fail under CI, without it."""
    variable = f"SIMULACRA_TEST_{name.upper()}_URL"
    url = os.environ.get(variable)
    if not url:
        reason = f'{variable} is not set: run `eval "$(bash scripts/db-servers.sh)"` to start the servers'
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return url


def released_tables(engine: sa.Engine, dialect: str, table: str, tmp_path: Path) -> dict[str, str]:
    """0.1.0's tables made on a server with its DDL and filled with the SQLite file's rows, as
    0.1.0 would have written them there; the metadata text each session's row holds then."""
    with closing(sqlite3.connect(copy_database(tmp_path))) as source:
        sessions = source.execute(
            "SELECT id, parent_id, updated_at, message_count, metadata FROM simulacra_sessions"
        ).fetchall()
        messages = source.execute(
            "SELECT session_id, seq, message FROM simulacra_sessions_messages"
        ).fetchall()
        versions = source.execute("SELECT name, version FROM simulacra_sessions_schema").fetchall()
    metadata_text = "metadata::text" if dialect == "postgresql" else "metadata"
    with engine.begin() as connection:
        for statement in EXPECTED["sqlite"]["ddl"][dialect]:
            connection.exec_driver_sql(statement.replace("{TABLE}", table))
        for rows, into in ((sessions, table), (messages, f"{table}_messages"), (versions, f"{table}_schema")):
            marks = ", ".join(["%s"] * len(rows[0]))
            connection.exec_driver_sql(f"INSERT INTO {into} VALUES ({marks})", rows)
        held = connection.exec_driver_sql(f"SELECT id, {metadata_text} FROM {table}").fetchall()
    return {session_id: text for session_id, text in held}


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
async def test_schema_1_tables_on_a_server_migrate(dialect: str, tmp_path: Path) -> None:
    """On PostgreSQL (metadata ``JSONB``) and MySQL/MariaDB (``JSON``): every session loads as
    the version 1 row held it, in 0.1.0's order, and continues, after the migration to 2. (What
    a row held is what 0.1.0 read there: ``JSONB`` had already made ``1.7976931348623157e308``
    the integer of its digits and ``-0.0`` ``0.0``; the migration keeps what it holds.)"""
    engine = sa.create_engine(server_url("postgres" if dialect == "postgresql" else "mysql"))
    table = f"v010_{uuid.uuid4().hex[:12]}"
    expected = EXPECTED["sqlite"]
    store = SqlSessionStore(engine, table=table)
    try:
        held = released_tables(engine, dialect, table, tmp_path)
        assert [meta.id for meta in await store.list()] == [meta["id"] for meta in expected["list"]]
        with engine.connect() as connection:
            assert connection.exec_driver_sql(f"SELECT version FROM {table}_schema").fetchall() == [(2,)]
        for session_id, session in expected["sessions"].items():
            stored = await store.load(session_id)
            assert stored is not None, session_id
            as_held = {**json.loads(held[session_id]), "id": session_id}  # what 0.1.0 read there
            assert sorted_json(stored.metadata.to_json_dict(include_id=True)) == sorted_json(as_held)
            assert canonical(stored.messages) == canonical(session["messages"]), session_id
            resolved = await resolve_history(store, session_id, strict=True)
            assert resolved is not None
            assert canonical(resolved.messages) == canonical(history(session)), session_id
        await continue_all(store, "sqlite")
        for session_id, session in expected["sessions"].items():
            resolved = await resolve_history(store, session_id, strict=True)
            assert resolved is not None
            assert canonical(resolved.messages) == canonical([*history(session), new_message(session_id)])
        assert problems(await check_store(store)) == []
    finally:
        await store.drop_tables()
        await store.close()
        engine.dispose()


def sorted_json(value: Any) -> str:
    """``canonical`` without key order, which a server's JSON column does not keep."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
