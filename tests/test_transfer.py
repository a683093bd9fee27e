"""RestorableSessionStore.restore on every bundled store, and transfer: export, import and copy
keeping ids, stamps, metadata, fork links and histories, streaming one session at a time."""

from __future__ import annotations

import inspect
import io
import json
import os
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from session_samples import IDS, message, populate, server_url, snapshot, sql_table
from simulacra_session import (
    CorruptSessionError,
    FileSessionStore,
    InMemorySessionStore,
    InvalidMetadataError,
    InvalidSessionIdError,
    RestorableSessionStore,
    SerializationError,
    SessionMetadata,
    SessionStore,
    StoredSession,
)
from simulacra_session.history import resolve_history
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.transfer import (
    EXPORT_FORMAT,
    SessionExistsError,
    copy_sessions,
    export_records,
    export_sessions,
    import_sessions,
)

KINDS = ["memory", "jsonl", "json", "sqlite"]
_opened: list[SqlSessionStore] = []  # what make() opened, closed after each test


@pytest.fixture(autouse=True)
async def _close_opened() -> AsyncIterator[None]:
    yield
    while _opened:
        await _opened.pop().close()


def make(kind: str, path: Path) -> SessionStore:
    if kind == "memory":
        return InMemorySessionStore()
    if kind == "sqlite":
        _opened.append(SqlSessionStore(f"sqlite:///{path}.db"))
        return _opened[-1]
    return FileSessionStore(path, format="json" if kind == "json" else "jsonl")


def stamped(session_id: str, count: int, **extra: Any) -> SessionMetadata:
    return SessionMetadata(
        id=session_id,
        created_at="2020-01-01T00:00:00.000001Z",
        updated_at="2020-06-01T12:00:00.000001Z",
        message_count=count,
        **extra,
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_restore_writes_the_session_as_given_stamps_included(kind: str, tmp_path: Path) -> None:
    store = make(kind, tmp_path / "store")
    assert isinstance(store, RestorableSessionStore)
    await store.save("old", [message("user", "a")])
    await store.save("fork", [message("user", "b"), message("user", "c")], {"label": "gone soon"})
    meta = stamped("fork", 1, label="Fork", parent_id="old", fork_message_count=1, extra={"k": [1]})
    await store.restore("fork", [message("user", "restored")], meta)
    loaded = await store.load("fork")
    assert loaded is not None
    assert loaded.messages == [message("user", "restored")]
    millis = kind == "json"  # a .json document keeps whole milliseconds, rounded up
    assert loaded.metadata.created_at == ("2020-01-01T00:00:00.001Z" if millis else meta.created_at)
    assert loaded.metadata.updated_at == ("2020-06-01T12:00:00.001Z" if millis else meta.updated_at)
    assert loaded.metadata.label == "Fork"
    assert loaded.metadata.model_extra == {"extra": {"k": [1]}}
    assert [m.id for m in await store.list()] == ["old", "fork"]  # its old stamp orders it
    assert [m.id for m in await store.forks("old")] == ["fork"]  # type: ignore[attr-defined]
    await store.save("fork", [message("user", "later")])
    after = await store.load("fork")
    assert after is not None
    assert after.metadata.updated > loaded.metadata.updated
    assert after.metadata.created_at == loaded.metadata.created_at


@pytest.mark.parametrize("kind", KINDS)
async def test_restore_checks_what_it_is_given_before_writing(kind: str, tmp_path: Path) -> None:
    store = make(kind, tmp_path / "store")
    await store.save("s", [message("user", "kept")])
    with pytest.raises(InvalidMetadataError, match="restored as s"):
        await store.restore("s", [], stamped("other", 0))
    with pytest.raises(InvalidMetadataError, match="message_count 2, restoring 1 messages"):
        await store.restore("s", [message("user", "x")], stamped("s", 2))
    with pytest.raises(InvalidSessionIdError):
        await store.restore("../s", [], stamped("s", 0))
    with pytest.raises(InvalidSessionIdError):
        await store.restore("s", [], stamped("s", 0, parent_id="../up"))
    with pytest.raises(SerializationError, match=r"\$\.messages\[0\]"):
        await store.restore("s", [{"role": "user", "content": {1, 2}}], stamped("s", 1))  # type: ignore[list-item]
    with pytest.raises(TypeError, match="needs SessionMetadata"):
        await store.restore("s", [], {"id": "s"})  # type: ignore[arg-type]
    loaded = await store.load("s")
    assert loaded is not None
    assert loaded.messages == [message("user", "kept")]


@pytest.mark.parametrize(
    ("source_kind", "target_kind"), [("jsonl", "sqlite"), ("sqlite", "json"), ("memory", "jsonl")]
)
async def test_copy_keeps_ids_stamps_metadata_order_and_histories(
    source_kind: str, target_kind: str, tmp_path: Path
) -> None:
    source, target = make(source_kind, tmp_path / "source"), make(target_kind, tmp_path / "target")
    await populate(source)
    calls: list[tuple[int, int | None]] = []
    result = await copy_sessions(source, target, progress=lambda done, total: calls.append((done, total)))
    assert (result.written, result.replaced, result.skipped) == (5, 0, 0)
    assert calls == [(n, 5) for n in range(1, 6)]
    millis = target_kind == "json"
    assert await snapshot(target, millis=millis) == await snapshot(source, millis=millis)
    assert [m.id for m in await target.list()] == IDS[::-1]


async def test_export_is_versioned_jsonl_with_parents_before_their_forks(tmp_path: Path) -> None:
    store = make("jsonl", tmp_path / "s")
    await populate(store)
    await store.save("root", [message("user", "root saved last")])  # the most recent now
    out = io.BytesIO()
    assert await export_sessions(store, out) == 5
    lines = out.getvalue().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == EXPORT_FORMAT
    assert header["version"] == 1
    assert header["sessions"] == 5
    records = [json.loads(line) for line in lines[1:]]
    order = [record["id"] for record in records]
    assert order.index("root") < order.index("fork") < order.index("grandchild")
    assert order.index("root") < order.index("detached")
    fork = records[order.index("fork")]
    assert fork["metadata"]["parent_id"] == "root"
    assert fork["metadata"]["fork_message_count"] == 2
    assert fork["messages"] == [message("user", "forked", "f1")]  # its own: the parent holds the rest
    assert "id" not in fork["metadata"]


async def test_export_streams_one_session_at_a_time(tmp_path: Path) -> None:
    store = make("jsonl", tmp_path / "s")
    await populate(store)
    loads: list[str] = []
    original = store.load

    async def counting(session_id: str) -> StoredSession | None:
        loads.append(session_id)
        return await original(session_id)

    store.load = counting  # type: ignore[method-assign]
    records = export_records(store)
    assert inspect.isasyncgen(records)
    assert json.loads(await records.__anext__())["sessions"] == 5
    assert loads == []  # the header needs ids only
    first = json.loads(await records.__anext__())
    assert loads == [first["id"]]  # one session loaded per line asked for
    rest = [json.loads(line)["id"] async for line in records]
    assert loads == [first["id"], *rest]


async def test_export_of_given_ids_brings_what_they_inherit_from(tmp_path: Path) -> None:
    store = make("memory", tmp_path / "s")
    await populate(store)
    lines = [json.loads(line) async for line in export_records(store, ["grandchild", "plain"])]
    assert [record["id"] for record in lines[1:]] == ["root", "fork", "grandchild", "plain"]


async def _export(store: SessionStore, ids: Sequence[str] | None = None) -> bytes:
    out = io.BytesIO()
    await export_sessions(store, out, ids)
    return out.getvalue()


async def test_import_round_trip_and_conflicts(tmp_path: Path) -> None:
    source = make("jsonl", tmp_path / "source")
    await populate(source)
    data = await _export(source)
    target = make("sqlite", tmp_path / "target")
    await target.save("plain", [message("user", "the target's own")])
    with pytest.raises(SessionExistsError, match=r"1 session.* already in .*plain") as caught:
        await import_sessions(target, io.BytesIO(data))
    assert caught.value.session_ids == ["plain"]
    assert [m.id for m in await target.list()] == ["plain"]  # nothing half-imported
    result = await import_sessions(target, io.BytesIO(data), on_conflict="skip")
    assert (result.written, result.replaced, result.skipped) == (4, 0, 1)
    kept = await target.load("plain")
    assert kept is not None
    assert kept.messages == [message("user", "the target's own")]
    result = await import_sessions(target, io.BytesIO(data), on_conflict="replace")
    assert (result.written, result.replaced, result.skipped) == (0, 5, 0)
    assert await snapshot(target) == await snapshot(source)


async def test_an_interrupted_import_is_finished_by_skip(tmp_path: Path) -> None:
    source = make("memory", tmp_path / "source")
    await populate(source)
    data = await _export(source)
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"\n".join(data.splitlines()[:3]) + b"\n")  # the header and two sessions
    target = make("jsonl", tmp_path / "target")
    with pytest.raises(CorruptSessionError, match=r"cut\.jsonl: 2 sessions where its header announces 5"):
        await import_sessions(target, cut)  # checked whole first: nothing written
    assert await target.list() == []
    with pytest.raises(CorruptSessionError, match="cut short"):
        await import_sessions(target, cut, on_conflict="skip")  # writes what is there
    assert len(await target.list()) == 2
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(data)
    result = await import_sessions(target, os.fspath(whole), on_conflict="skip")
    assert (result.written, result.skipped) == (3, 2)
    assert await snapshot(target) == await snapshot(source)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b'{"id": "x", "metadata": {}, "messages": []', "whole.jsonl:3"),
        (b'{"id": "bad id", "metadata": {}, "messages": []}', "invalid session id"),
        (b'{"id": "x", "messages": []}', "expected an object with 'id', 'metadata' and 'messages'"),
    ],
)
async def test_a_damaged_line_is_named_and_nothing_is_written(
    tmp_path: Path, line: bytes, error: str
) -> None:
    source = make("memory", tmp_path / "source")
    await populate(source)
    lines = (await _export(source)).splitlines()
    lines[2] = line
    damaged = tmp_path / "whole.jsonl"
    damaged.write_bytes(b"\n".join(lines) + b"\n")
    target = make("memory", tmp_path / "target")
    with pytest.raises(CorruptSessionError, match=error):
        await import_sessions(target, damaged)
    assert await target.list() == []


async def test_not_an_export_or_another_version(tmp_path: Path) -> None:
    target = make("memory", tmp_path / "t")
    with pytest.raises(CorruptSessionError, match="not a simulacra-session export"):
        await import_sessions(target, io.BytesIO(b'{"id": "x"}\n'))
    header = json.dumps({"format": EXPORT_FORMAT, "version": 99}).encode()
    with pytest.raises(CorruptSessionError, match="export version 99; this release reads version 1"):
        await import_sessions(target, io.BytesIO(header + b"\n"))
    for version in (True, 1.0, "1"):  # equal to 1 in Python, or looking like it: not the version
        header = json.dumps({"format": EXPORT_FORMAT, "version": version}).encode()
        with pytest.raises(CorruptSessionError, match=re.escape(f"export version {version!r}; this release")):
            await import_sessions(target, io.BytesIO(header + b"\n"))


@pytest.mark.parametrize("count", [True, 1.0, -1, "1", 1e300])
async def test_a_session_count_that_is_no_count_is_damage(tmp_path: Path, count: object) -> None:
    """The header's ``sessions`` is a count (an int, 0 or more), or absent: ``true`` read as 1,
    or a float, let an export announce what no count can check."""
    source, target = make("memory", tmp_path / "s"), make("memory", tmp_path / "t")
    await source.save("a", [{"text": "m"}])
    lines = (await _export(source)).splitlines()
    header = json.loads(lines[0])
    header["sessions"] = count
    damaged = b"\n".join([json.dumps(header).encode(), *lines[1:]]) + b"\n"
    with pytest.raises(CorruptSessionError, match=re.escape(f"session count {count!r}")):
        await import_sessions(target, io.BytesIO(damaged))
    assert await target.list() == []


async def test_a_target_that_cannot_restore_is_refused(tmp_path: Path) -> None:
    class Plain:  # the four protocol methods only
        async def list(self, *, limit: int | None = None, offset: int = 0) -> list[SessionMetadata]:
            return []

        async def load(self, id: str) -> StoredSession | None:
            return None

        async def save(self, id: str, messages: Any, metadata: Any = None) -> None:
            raise AssertionError("never called")

        async def delete(self, id: str) -> bool:
            return False

    source = make("memory", tmp_path / "s")
    await populate(source)
    with pytest.raises(TypeError, match="Plain cannot write sessions with their timestamps"):
        await copy_sessions(source, Plain())


async def test_a_fork_whose_parent_is_gone_moves_with_the_copy_its_store_kept(tmp_path: Path) -> None:
    store = make("json", tmp_path / "shared")
    await store.save("parent", [message("user", "no id one"), message("assistant", "no id two")])
    await store.save("orphan", [message("user", "own")], {"parent_id": "parent", "fork_message_count": 2})
    os.unlink(tmp_path / "shared" / "parent.json")  # as the original library deletes a parent
    before = await resolve_history(store, "orphan")
    assert before is not None
    assert len(before.messages) == 3
    target = make("memory", tmp_path / "target")
    await copy_sessions(store, target)
    moved = await target.load("orphan")
    assert moved is not None
    assert moved.metadata.detached is True
    assert moved.metadata.message_count == 3
    after = await resolve_history(target, "orphan")
    assert after is not None
    assert after.messages == before.messages


async def test_copy_moves_one_session_at_a_time(tmp_path: Path) -> None:
    source, target = make("jsonl", tmp_path / "source"), make("memory", tmp_path / "target")
    await populate(source)
    events: list[str] = []
    load, restore = source.load, target.restore  # type: ignore[attr-defined]

    async def loading(session_id: str) -> StoredSession | None:
        events.append(f"load {session_id}")
        return await load(session_id)

    async def restoring(session_id: str, messages: Any, metadata: SessionMetadata) -> None:
        events.append(f"restore {session_id}")
        await restore(session_id, messages, metadata)

    source.load = loading  # type: ignore[method-assign]
    target.restore = restoring  # type: ignore[attr-defined]
    await copy_sessions(source, target)
    moved = [event.split()[1] for event in events[::2]]
    assert events == [event for sid in moved for event in (f"load {sid}", f"restore {sid}")]
    assert sorted(moved) == sorted(IDS)


@pytest.mark.parametrize("server", ["postgres", "mysql"])
async def test_copy_into_a_database_server_keeps_everything(tmp_path: Path, server: str) -> None:
    import sqlalchemy as sa

    source = make("jsonl", tmp_path / "source")
    await populate(source)
    with sql_table(server_url(server)) as tabled:
        url = sa.make_url(tabled)
        async with SqlSessionStore(
            url.difference_update_query(["table"]), table=url.query["table"]
        ) as target:
            await copy_sessions(source, target)
            assert await snapshot(target) == await snapshot(source)
            meta = stamped("root", 1, label="restored over")
            await target.restore("root", [message("user", "one")], meta)  # replaces, as given
            restored = await target.load("root")
            assert restored is not None
            assert (restored.metadata.updated_at, restored.messages) == (
                meta.updated_at,
                [message("user", "one")],
            )


async def test_memory_holds_one_session_at_a_time(tmp_path: Path) -> None:
    """Export and import of 300 sessions of 200 KB each (60 MB) peak at a few sessions' worth
    of allocations, plus what the stores and the transfer keep per session (metadata, ids):
    sessions stream, whatever their number and size."""
    import tracemalloc

    source = FileSessionStore(tmp_path / "source", fsync=False)
    big = "x" * 200_000
    count = 300
    for index in range(count):
        await source.save(f"s{index:03}", [message("user", f"{index} {big}")])
    export = tmp_path / "export.jsonl"
    target = FileSessionStore(tmp_path / "target", fsync=False)
    tracemalloc.start()
    try:
        with export.open("wb") as out:
            assert await export_sessions(source, out) == count
        exported_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        await import_sessions(target, export, on_conflict="skip")
        imported_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    bound = 10 * len(big) + count * 8_000  # a session in its forms (text, bytes, parsed); metadata
    assert exported_peak < bound, f"export peaked at {exported_peak} bytes, over {bound}"
    assert imported_peak < bound, f"import peaked at {imported_peak} bytes, over {bound}"
    assert await snapshot(target) == await snapshot(source)
