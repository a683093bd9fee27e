"""doctor.check_store on planted faults of every kind, before and after repair, with what the
sessions hold checked unchanged: the file store in both formats, SQL stores, any store."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa

from session_samples import message, populate, server_url, snapshot, sql_table, superseded_records
from simulacra_session import (
    CorruptSessionError,
    FileSessionStore,
    InMemorySessionStore,
    SessionManager,
    SessionStore,
    SimpleConversation,
)
from simulacra_session.doctor import Report, check_store
from simulacra_session.stores.sql import SqlSessionStore


def kinds(report: Report, *, repaired: bool | None = None) -> set[tuple[str, str | None]]:
    return {(p.kind, p.session_id) for p in report.problems if repaired is None or p.repaired == repaired}


async def test_a_clean_store_is_ok(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path / "s")
    await populate(store)
    report = await check_store(store, repair=True)
    assert report.problems == []
    assert report.ok
    assert report.to_json() == {"ok": True, "problems": []}


def _plant(root: Path, ext: str) -> bytes:
    """Every fault the file check knows, in a store of ``populate``'s sessions; the bytes of
    the unreadable file."""

    def path(*parts: str) -> Path:
        return root.joinpath(*parts)

    stale = path("root-forks", f"fork{ext}")  # a copy where the hard link was: another inode
    data = stale.read_bytes()
    stale.unlink()
    stale.write_bytes(data)
    path("fork-forks", f"grandchild{ext}").unlink()  # missing from the index
    os.link(path(f"plain{ext}"), path("root-forks", f"plain{ext}"))  # plain is no fork of root
    path("root-forks", f"ghost{ext}").write_bytes(data)  # a session whose file is gone: its last copy
    path("root-forks", f".fork{ext}.0123456789abcdef.tmp").write_bytes(data)  # a killed linker's
    path(f".plain{ext}.tmp").write_bytes(b"half a save")  # a killed writer's, nobody holds it
    path(f"old{ext}.corrupt-20200101T000000000000Z").write_bytes(b"set aside long ago")
    bad = b'{"metadata": {"created_at": "2020' if ext == ".json" else b"not a journal\n"
    path(f"bad{ext}").write_bytes(bad)
    if ext == ".jsonl":
        with open(path("root.jsonl"), "ab") as journal:
            journal.write(b'{"role":"user","content":[{"type":"te')  # an append cut short
        superseded_records(path("detached.jsonl"), 40)  # metadata records outweighing the rest
    return bad


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
async def test_file_store_faults_found_and_repaired_without_changing_data(
    tmp_path: Path, file_format: str
) -> None:
    root = tmp_path / "store"
    store = FileSessionStore(root, format="json" if file_format == "json" else "jsonl")
    await populate(store)
    await store.save(
        "orphan", [message("user", "left behind")], {"parent_id": "gone", "fork_message_count": 0}
    )
    ext = "." + file_format
    bad = _plant(root, ext)
    before = await snapshot(store)

    found = await check_store(store)
    expected = {
        ("fork_link", "fork"),
        ("fork_link", "grandchild"),
        ("fork_link", "plain"),
        ("fork_link", "ghost"),
        ("temp_file", "fork"),
        ("temp_file", "plain"),
        ("set_aside", "old"),
        ("unreadable", "bad"),
        ("missing_parent", "orphan"),
    }
    if file_format == "jsonl":
        expected |= {("torn_tail", "root"), ("compactable", "detached")}
    assert kinds(found) == expected
    assert not found.ok
    assert not any(p.repaired for p in found.problems)
    assert await snapshot(store) == before  # a check changes nothing

    repaired = await check_store(store, repair=True)
    left = {("set_aside", "old"), ("set_aside", "bad"), ("fork_link", "ghost")}
    assert kinds(repaired, repaired=False) == left  # what it set aside is left, as a check finds
    assert kinds(repaired) == expected | left
    unreadable = next(p for p in repaired.problems if p.kind == "unreadable")
    _check_files(root, ext, unreadable.detail.rsplit("moved to ", 1)[1], bad)

    after = await check_store(store)
    # the torn tail, an append cut short, is cut off without a copy
    assert kinds(after) == left
    assert await _unchanged_but_orphan(store, before)
    assert [m.id for m in await store.forks("root")] == ["detached", "fork"]
    assert [m.id for m in await store.forks("fork")] == ["grandchild"]


def _check_files(root: Path, ext: str, aside: str, bad: bytes) -> None:
    """What the repair did on disk: the unreadable file moved aside, never destroyed; the last
    copy of ghost kept; links re-made; temp files gone; a torn tail cut; a journal compacted."""
    assert Path(aside).read_bytes() == bad
    assert (root / "root-forks" / f"ghost{ext}").exists()
    assert os.stat(root / "root-forks" / f"fork{ext}").st_ino == os.stat(root / f"fork{ext}").st_ino
    assert not (root / f".plain{ext}.tmp").exists()
    assert not (root / "root-forks" / f".fork{ext}.0123456789abcdef.tmp").exists()
    if ext == ".jsonl":
        assert (root / "root.jsonl").read_bytes().endswith(b'"]\n')  # its last commit record
        assert len((root / "detached.jsonl").read_bytes().splitlines()) == 4  # header, 2 messages, commit


async def _unchanged_but_orphan(store: SessionStore, before: list[tuple[str, str, str, dict, list]]) -> bool:  # type: ignore[type-arg]
    """Every session as before, stamps and history included; the orphan now says it is detached."""
    now = await snapshot(store)
    assert [s[0] for s in now] == [s[0] for s in before]
    for old, new in zip(before, now, strict=True):
        if old[0] == "orphan":
            assert new[3] == {**old[3], "detached": True}
            assert (new[1], new[2], new[4]) == (old[1], old[2], old[4])
        else:
            assert new == old
    return True


async def test_a_fork_of_a_parent_set_aside_keeps_what_it_inherits(tmp_path: Path) -> None:
    """A repair that sets an unreadable parent aside does not detach its attached fork in the same
    run (dropping what it inherits, left only in the copy set aside): the fork stays attached,
    and the report names its parent as missing, a problem left."""
    store = FileSessionStore(tmp_path)
    await store.save("parent", [message("user", "one", "m1"), message("assistant", "two", "m2")])
    given = {"parent_id": "parent", "fork_message_count": 2, "fork_message_id": "m2", "detached": False}
    await store.save("child", [message("user", "own")], given)
    journal = tmp_path / "parent.jsonl"
    journal.write_bytes(journal.read_bytes()[:-5])  # its only write's commit record cut
    repaired = await check_store(store, repair=True)
    assert kinds(repaired, repaired=True) == {("unreadable", "parent")}
    assert kinds(repaired, repaired=False) == {("missing_parent", "child"), ("set_aside", "parent")}
    child = await store.load("child")
    assert child is not None
    assert child.metadata.parent_id == "parent"
    assert not child.metadata.detached


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_a_fork_cycle_is_named_never_repaired(tmp_path: Path, kind: str) -> None:
    """Attached forks whose parents lead back to them (a hand edit) load on no store: the check
    names the cycle once, by its members, and a repair leaves it (whom to detach is the
    owner's choice); a detached fork naming a parent in it is no part of it."""
    store: SessionStore = InMemorySessionStore() if kind == "memory" else FileSessionStore(tmp_path)
    attached = {"fork_message_count": 1, "detached": False}
    for session_id, parent_id in (("a", "c"), ("b", "a"), ("c", "b"), ("d", "a")):
        await store.save(session_id, [message("user", session_id)], {"parent_id": parent_id, **attached})
    await store.save(
        "e", [message("user", "e")], {"parent_id": "a", "fork_message_count": 1, "detached": True}
    )
    for repair in (False, True):
        report = await check_store(store, repair=repair)
        assert [(p.kind, p.session_id, p.repaired) for p in report.problems] == [("fork_cycle", "a", False)]
        assert "sessions a, c, b form a fork cycle" in report.problems[0].detail
        assert not report.ok


async def test_missing_parent_of_any_store(tmp_path: Path) -> None:
    store = InMemorySessionStore()
    await store.save("parent", [message("user", "a")])
    await store.save("fork", [message("user", "b")], {"parent_id": "parent", "fork_message_count": 1})
    await store.save("detached", [message("user", "c")], {"parent_id": "parent", "detached": True})
    await store.delete("parent")
    found = await check_store(store)
    assert kinds(found) == {("missing_parent", "fork")}  # a detached fork lacks nothing
    assert "inherits from session parent, which is gone" in found.problems[0].detail
    assert kinds(await check_store(store, repair=True), repaired=True) == {("missing_parent", "fork")}
    assert (await check_store(store)).ok


def _sql_url(backend: str, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'doctor.db'}" if backend == "sqlite" else server_url(backend)


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "mysql"])
async def test_sql_rows_that_disagree_with_message_count(tmp_path: Path, backend: str) -> None:
    url = _sql_url(backend, tmp_path)
    with sql_table(url) as tabled:
        table = tabled.rsplit("table=", 1)[1]
        async with SqlSessionStore(
            sa.make_url(tabled).difference_update_query(["table"]), table=table
        ) as store:
            await populate(store)
            messages = f"{table}_messages"

            def plant(connection: sa.Connection) -> None:
                connection.execute(
                    sa.text(f"UPDATE {messages} SET seq = 7 WHERE session_id = 'root' AND seq = 1")
                )
                row = json.dumps(message("user", "a row past the count"))
                connection.execute(
                    sa.text(f"INSERT INTO {messages} (session_id, seq, message) VALUES ('plain', 3, :m)"),
                    {"m": row},
                )

            await store._run("plant", None, plant)
            before = {sid: await store.load(sid) for sid in ("root", "fork")}
            with pytest.raises(CorruptSessionError, match=r"'plain' in table .*: 4 message rows"):
                await store.load("plain")  # loaded as it is only once repaired
            found = await check_store(store)
            assert kinds(found) == {("message_count", "root"), ("message_count", "plain")}
            details = {p.session_id: p.detail for p in found.problems}
            assert details["root"] == "message_count is 3, its 3 message rows are numbered up to 7"
            assert details["plain"] == "message_count is 3, its 4 message rows are numbered up to 3"
            repaired = await check_store(store, repair=True)
            assert repaired.ok
            assert (await check_store(store)).problems == []
            for sid, old in before.items():
                new = await store.load(sid)
                assert new is not None
                assert old is not None
                assert new.messages == old.messages  # nothing lost, nothing reordered
                assert new.metadata.updated_at == old.metadata.updated_at
            plain = await store.load("plain")
            assert plain is not None
            assert plain.metadata.message_count == 4
            assert plain.messages[-1] == message("user", "a row past the count")
            await store.append("root", [message("user", "appends go on")])  # seq 3 is free again
            assert len((await store.load("root") or before["root"]).messages) == 4  # type: ignore[union-attr]


async def test_sqlite_rows_of_no_session_are_named_not_removed(tmp_path: Path) -> None:
    database = tmp_path / "orphans.db"
    async with SqlSessionStore(f"sqlite:///{database}") as store:
        await store.save("kept", [message("user", "a")])
        with closing(sqlite3.connect(database)) as raw:  # foreign keys off, as a hand edit might be
            raw.execute("INSERT INTO simulacra_sessions_messages VALUES ('nobody', 0, '{}')")
            raw.commit()
        report = await check_store(store, repair=True)
        assert kinds(report, repaired=False) == {("message_count", "nobody")}
        with closing(sqlite3.connect(database)) as raw:
            assert raw.execute("SELECT count(*) FROM simulacra_sessions_messages").fetchone() == (2,)


async def test_a_live_writers_temp_file_is_left_alone(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    store = FileSessionStore(tmp_path / "s")
    await store.save("a", [message("user", "a")])
    temp = tmp_path / "s" / ".a.jsonl.tmp"
    with temp.open("wb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as atomic_write holds it while it writes
        assert (await check_store(store, repair=True)).problems == []
        assert temp.exists()
    shutil.rmtree(tmp_path / "s")


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
async def test_no_problem_after_a_parent_is_deleted_as_the_manager_does(
    tmp_path: Path, file_format: str
) -> None:
    store = FileSessionStore(tmp_path / "s", format="json" if file_format == "json" else "jsonl")
    await populate(store)
    async with SessionManager(store, SimpleConversation()) as manager:
        assert await manager.delete("root")  # its forks detached
    assert (await check_store(store)).problems == []
    await store.save("fork", [message("user", "saved again")])  # relinked under the deleted parent
    assert (await check_store(store)).problems == []


async def test_what_is_no_file_of_the_store_in_a_fork_index_is_named_and_left(tmp_path: Path) -> None:
    """A directory where a fork's link goes, one named as a temp link, and a fork index that
    is a file: ``--repair`` raised ``IsADirectoryError`` or ``NotADirectoryError`` (the rest
    of the store unrepaired). Each is named, with its path, and left as it is."""
    store = FileSessionStore(tmp_path)
    await store.save("p", [message("user", "p")])
    await store.save("q", [message("user", "q")])
    for fork, parent in (("f", "p"), ("g", "q")):
        await store.save(fork, [message("user", fork)], {"parent_id": parent, "fork_message_count": 1})
    (tmp_path / "p-forks" / "f.jsonl").unlink()
    (tmp_path / "p-forks" / "f.jsonl").mkdir()
    (tmp_path / "p-forks" / ".f.jsonl.0123456789abcdef.tmp").mkdir()
    shutil.rmtree(tmp_path / "q-forks")
    (tmp_path / "q-forks").write_bytes(b"not an index")
    before = await snapshot(store)
    for repair in (False, True):
        report = await check_store(store, repair=repair)
        assert sorted((p.kind, p.path, p.repaired) for p in report.problems) == [
            ("fork_link", str(tmp_path / "p-forks" / "f.jsonl"), False),
            ("fork_link", str(tmp_path / "q-forks" / "g.jsonl"), False),
            ("temp_file", str(tmp_path / "p-forks" / ".f.jsonl.0123456789abcdef.tmp"), False),
        ]
    assert (tmp_path / "p-forks" / "f.jsonl").is_dir()
    assert (tmp_path / "p-forks" / ".f.jsonl.0123456789abcdef.tmp").is_dir()
    assert (tmp_path / "q-forks").read_bytes() == b"not an index"
    assert await snapshot(store) == before
