"""A value nested 100,000 deep: every entry point raises ``SerializationError`` naming the path
at which it nests too deep, never ``RecursionError`` or a crash, on both backends."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import zlib
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import BaseModel

from cli_runs import run_cli
from simulacra_session import (
    CheckpointState,
    CorruptSessionError,
    InMemorySessionStore,
    LifecycleErrorEvent,
    SerializationError,
    SessionManager,
    SimpleConversation,
)
from simulacra_session.doctor import Problem, check_store
from simulacra_session.stores.file import FileSessionStore
from simulacra_session.stores.sql import SqlSessionStore

DEPTH = 100_000


def nested(depth: int, *, in_dicts: bool = False, leaf: Any = None) -> Any:
    """A value nested ``depth`` deep: lists, or dicts keyed ``"a"``, around ``leaf``."""
    value = leaf
    for _ in range(depth):
        value = {"a": value} if in_dicts else [value]
    return value


def deep_message(**kwargs: Any) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": "hi", "extended": nested(DEPTH, **kwargs)}]}


SHAPES = {
    "lists": ({}, "$.content[0].extended[0][0]"),
    "dicts": ({"in_dicts": True}, "$.content[0].extended.a.a"),
    "lists around a set": ({"leaf": {1}}, "$.content[0].extended[0][0]"),  # not JSON either
}


def check(raised: pytest.ExceptionInfo[SerializationError], prefix: str) -> None:
    assert "nesting deeper than 128" in str(raised.value)
    assert f" at {prefix}" in str(raised.value), str(raised.value)[:200]


@pytest.mark.parametrize("shape", SHAPES)
def test_hot_path(hotpath: ModuleType, shape: str) -> None:
    kwargs, path = SHAPES[shape]
    message = deep_message(**kwargs)
    for call in (hotpath.dumps, hotpath.copy_json):
        with pytest.raises(SerializationError) as raised:
            call(message)
        check(raised, path)


@pytest.mark.parametrize("shape", SHAPES)
def test_conversation(shape: str) -> None:
    """append, extend, the constructor and load copy each message: all raise, and the
    history is left as it was."""
    kwargs, path = SHAPES[shape]
    message = deep_message(**kwargs)
    conversation = SimpleConversation([{"role": "user", "content": []}])
    calls: list[Callable[[], object]] = [
        lambda: conversation.append(message),
        lambda: conversation.extend([{"role": "user", "content": []}, message]),
        lambda: conversation.load([message]),
        lambda: SimpleConversation([message]),
    ]
    for call in calls:
        with pytest.raises(SerializationError) as raised:
            call()
        check(raised, path)
    assert len(conversation.messages) == 1


def stores(tmp_path: Path) -> dict[str, Any]:
    return {
        "memory": InMemorySessionStore(),
        "file": FileSessionStore(tmp_path / "jsonl"),
        "file json": FileSessionStore(tmp_path / "json", format="json"),
        "sql": SqlSessionStore(f"sqlite:///{tmp_path / 'sessions.db'}"),
    }


@pytest.mark.parametrize("shape", SHAPES)
def test_stores(tmp_path: Path, shape: str) -> None:
    """save and append name the message's path (its place in the session); nothing is written."""
    kwargs, path = SHAPES[shape]
    message = deep_message(**kwargs)

    async def main() -> None:
        for name, store in stores(tmp_path).items():
            await store.save("s", [{"role": "user", "content": []}])
            for write, index in ((store.save, 1), (store.append, 2)):
                with pytest.raises(SerializationError) as raised:
                    await write("s", [{"role": "user", "content": []}, message])
                check(raised, f"$.messages[{index}]" + path[1:])
                stored = await store.load("s")
                assert stored is not None, name
                assert len(stored.messages) == 1, name
            if isinstance(store, SqlSessionStore):
                await store.close()

    asyncio.run(main())


# -- what a save accepts, a load reads back ------------------------------------------------

#: How deep a message, or a metadata value, may nest: the session document (``{"metadata": {..},
#: "messages": [..]}``) holds both at its third level, and a load reads no JSON nesting deeper
#: than 128 (a journal line, an SQL row or a memory entry is read as part of such a document).
LIMIT = 126


CHECKPOINT = {"message_id": "m1", "summary": "so far"}
CHECKPOINT_PATH = "$.checkpoint_state.v"


def values_nesting(levels: int) -> dict[str, tuple[list[Any], dict[str, Any], str]]:
    """What nests ``levels`` deep: the messages and metadata to write, and where the first
    level too deep is: in the session for a message, in the metadata for metadata."""
    return {
        "an object": ([{"role": "tool", "v": nested(levels - 1)}], {}, "$.messages[{index}].v"),
        "a list": ([nested(levels)], {}, "$.messages[{index}][0]"),  # a journal wraps it
        "metadata": ([], {"extra": nested(levels)}, "$.extra[0]"),
        "a checkpoint": ([], {"checkpoint_state": {**CHECKPOINT, "v": nested(levels - 1)}}, CHECKPOINT_PATH),
        "a checkpoint model": (
            [],
            {"checkpoint_state": CheckpointState(**CHECKPOINT, v=nested(levels - 1))},
            CHECKPOINT_PATH,
        ),
    }


def to_json(value: Any) -> Any:
    """A metadata value as stored: a model as its JSON dict."""
    return value.model_dump(mode="json", exclude_none=True) if isinstance(value, BaseModel) else value


@pytest.mark.parametrize("levels", [LIMIT - 1, LIMIT, LIMIT + 1, LIMIT + 2])
def test_a_store_saves_only_what_it_loads_back(tmp_path: Path, levels: int) -> None:
    """Every store saves and loads back what nests up to ``LIMIT`` deep, and refuses anything
    deeper with ``SerializationError`` naming its path: a session it saved always loads (never
    ``CorruptSessionError``)."""

    async def main() -> None:
        for name, store in stores(tmp_path).items():
            for what, (messages, metadata, path) in values_nesting(levels).items():
                for write, index in ((store.save, 0), (store.append, 1)):
                    session_id = f"{write.__name__}-{what.replace(' ', '-')}"
                    await store.save(session_id, [{"role": "user", "content": []}])
                    before = await store.load(session_id)
                    if levels > LIMIT:
                        with pytest.raises(SerializationError) as raised:
                            await write(session_id, messages, metadata)
                        check(raised, path.format(index=index))
                    else:
                        await write(session_id, messages, metadata)
                    stored = await store.load(session_id)
                    assert stored is not None, name
                    assert before is not None, name
                    if levels > LIMIT:
                        assert stored.messages == before.messages, (name, what)
                    else:
                        assert stored.messages == before.messages[:index] + messages, (name, what)
                        held = stored.metadata.to_json_dict()
                        given = {key: to_json(value) for key, value in metadata.items()}
                        assert {key: held.get(key) for key in metadata} == given, (name, what)
            if isinstance(store, SqlSessionStore):
                await store.close()

    asyncio.run(main())


@pytest.mark.parametrize("levels", [LIMIT, LIMIT + 1])
def test_restore_writes_only_what_it_loads_back(tmp_path: Path, levels: int) -> None:
    """``restore`` (what imports and ``doctor``'s repairs write) takes a message of any JSON value,
    as loads may give one (a journal wraps it as ``["message",value]``): up to ``LIMIT`` deep it
    is written and loads back, deeper it is refused naming its path, nothing written."""
    messages = [{"role": "user", "content": []}, nested(levels)]

    async def main() -> None:
        for name, store in stores(tmp_path).items():
            await store.save("s", messages[:1])
            saved = await store.load("s")
            assert saved is not None, name
            metadata = saved.metadata.model_copy(update={"message_count": 2})
            if levels > LIMIT:
                with pytest.raises(SerializationError) as raised:
                    await store.restore("s", messages, metadata)
                check(raised, "$.messages[1][0]")
                assert str(raised.value).startswith("session s: "), name
            else:
                await store.restore("s", messages, metadata)
            stored = await store.load("s")
            assert stored is not None, name
            assert stored.messages == (messages[:1] if levels > LIMIT else messages), name
            if isinstance(store, SqlSessionStore):
                await store.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_a_message_too_deep_fails_its_auto_save_and_the_session_still_loads(
    tmp_path: Path, kind: str
) -> None:
    async def main() -> None:
        store = stores(tmp_path)[kind]
        conversation = SimpleConversation()
        manager = SessionManager(store, conversation)
        errors: list[LifecycleErrorEvent] = []
        manager.on("lifecycle_error", errors.append)
        session_id = manager.start_new("deep")
        for index in range(3):
            conversation.append({"role": "user", "content": [{"type": "text", "text": f"m{index}"}]})
        await manager.flush()
        conversation.append({"role": "tool", "v": nested(LIMIT)})  # the conversation holds it, ...
        await manager.flush()
        assert [type(event.error) for event in errors] == [SerializationError]  # ... no store does
        assert " at $.messages[3].v" in str(errors[0].error)
        resumed = SimpleConversation()
        await SessionManager(store, resumed).load(session_id)
        assert [message["content"][0]["text"] for message in resumed.messages] == ["m0", "m1", "m2"]

    asyncio.run(main())


# -- a journal record nesting deeper than a load reads: what load, list and doctor say -----
#
# No save writes one now, but release 0.1.0 did (a metadata value 127 or 128 deep), and
# another tool may. Such a record is no damage (in version 2 it verifies): loads name it and
# the parser's reason, never "no journal header", and never stand an earlier state in for
# it; the store check names it and leaves the file as it is. The journals are written here
# by hand, as docs/formats.md describes them.

STAMP = b'"created_at":"2026-01-02T03:04:05.000000Z","updated_at":"2026-01-02T03:04:05.000000Z"'
LINE = b'{"role":"user","content":[]}'


def meta(count: int, depth: int = 0) -> bytes:
    """Metadata of ``count`` messages; with ``depth``, a value ``x`` nesting that deep."""
    deep = b',"x":' + b"[" * depth + b"]" * depth if depth else b""
    return b'{%b,"message_count":%d%b}' % (STAMP, count, deep)


def sealed(prefix: bytes) -> bytes:
    """A record's line: ``prefix`` (all but its checksum), then the CRC-32 of ``prefix``."""
    return prefix + b'"%08x"]\n' % zlib.crc32(prefix)


def journal_v2(header: bytes, commits: Sequence[tuple[Sequence[bytes], bytes]]) -> tuple[bytes, list[int]]:
    """A version 2 journal: a header of the metadata ``header``, then for each commit its message
    lines and a commit record of its metadata (chained on the record before); the bytes, and
    the offset of each record (the header's, 0, first)."""
    prefix = b'["simulacra-session",2,%b,' % header
    data, offsets, seed = sealed(prefix), [0], zlib.crc32(prefix)
    for lines, metadata in commits:
        batch = b"".join(line + b"\n" for line in lines)
        prefix = b'["metadata",%b,"%08x",' % (metadata, zlib.crc32(batch, seed))
        data += batch
        offsets.append(len(data))
        data, seed = data + sealed(prefix), zlib.crc32(prefix)
    return data, offsets


def journal_v1(header: bytes, commits: Sequence[tuple[Sequence[bytes], bytes]]) -> tuple[bytes, list[int]]:
    """``journal_v2``'s journal as version 1 (release 0.1.0) wrote it: no checksums."""
    data, offsets = b'["simulacra-session",1,%b]\n' % header, [0]
    for lines, metadata in commits:
        data += b"".join(line + b"\n" for line in lines)
        offsets.append(len(data))
        data += b'["metadata",%b]\n' % metadata
    return data, offsets


JOURNALS = {  # the journal, and which of its records is too deep
    "v2 commit": (lambda d: journal_v2(meta(0), [([LINE], meta(1)), ([LINE], meta(2, d))]), 2),
    "v2 header": (lambda d: journal_v2(meta(0, d), []), 0),
    "v1 commit": (lambda d: journal_v1(meta(0), [([LINE], meta(1)), ([LINE], meta(2, d))]), 2),
    "v1 header": (lambda d: journal_v1(meta(0, d), [([LINE], meta(1, d))]), 1),
}


def fault(error: CorruptSessionError, offset: int, path: Path) -> str:
    """``error``'s message, checked to name the record at ``offset`` and the parser's reason."""
    text = str(error)
    what = "header" if offset == 0 else "commit record"
    named = f"corrupt session file {path}: its {what} at offset {offset} nests deeper than a load reads"
    assert text.startswith(f"{named} (nesting deeper than 128"), text
    assert "no journal header" not in text
    assert (error.path, error.offset) == (str(path), offset)
    return text


@pytest.mark.parametrize("depth", [LIMIT - 1, LIMIT, LIMIT + 1, 5000])
@pytest.mark.parametrize("kind", JOURNALS)
def test_a_record_too_deep_is_named_by_load_list_and_doctor(
    tmp_path: Path, kind: str, depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A metadata value ``depth`` deep: up to ``LIMIT`` (what a save writes) the journal loads;
    deeper, its record cannot be read, and every reader names it."""
    build, deep = JOURNALS[kind]
    data, offsets = build(depth)
    path = tmp_path / "s.jsonl"
    path.write_bytes(data)
    store = FileSessionStore(tmp_path)

    async def readable() -> None:
        stored = await store.load("s")
        assert stored is not None
        assert len(stored.messages) == stored.metadata.message_count
        assert (await check_store(store)).problems == []

    async def named() -> None:
        with pytest.raises(CorruptSessionError) as raised:
            await store.load("s")
        detail = fault(raised.value, offsets[deep], path)
        with pytest.raises(CorruptSessionError) as tail:
            await store.load_tail("s", 1)
        assert str(tail.value) == detail
        with pytest.raises(CorruptSessionError) as appended:
            await store.append("s", [{"role": "user", "content": []}])
        assert str(appended.value) == detail
        with caplog.at_level(logging.WARNING, logger="simulacra_session"):
            assert await store.list() == []  # never an earlier state's metadata
        assert detail in caplog.text
        left = [Problem("unreadable", "s", str(path), f"{detail}: left as it is")]
        assert (await check_store(store)).problems == left
        assert (await check_store(store, repair=True)).problems == left  # not damage: none reads it better

    asyncio.run(readable() if depth <= LIMIT else named())
    assert [entry.name for entry in tmp_path.iterdir()] == ["s.jsonl"]  # nothing set aside
    assert path.read_bytes() == data


def test_the_command_names_the_record(tmp_path: Path) -> None:
    """``simulacra-session doctor``, in JSON and as text."""
    data, offsets = journal_v2(meta(0), [([LINE], meta(1, LIMIT + 1))])
    (tmp_path / "s.jsonl").write_bytes(data)
    report = run_cli("--store", str(tmp_path), "doctor", "--json").json()
    assert [problem["kind"] for problem in report["problems"]] == ["unreadable"]
    detail = report["problems"][0]["detail"]
    assert f"its commit record at offset {offsets[1]} nests deeper than a load reads" in detail
    text = run_cli("--store", str(tmp_path), "doctor")
    assert text.status == 1
    assert "nests deeper than a load reads" in " ".join(text.out.split())
    assert "no journal header" not in text.out


def test_a_truncation_past_a_record_too_deep_names_it(tmp_path: Path) -> None:
    """A truncation record reads the records before it: one of metadata alone, too deep, is named
    (it said "a record keeps None of 2 messages")."""
    commits = [([LINE, LINE], meta(2)), ([], meta(2, LIMIT + 1)), ([], meta(1))]
    data, offsets = journal_v2(meta(0), commits)
    (tmp_path / "s.jsonl").write_bytes(data)
    with pytest.raises(CorruptSessionError) as raised:
        asyncio.run(FileSessionStore(tmp_path).load("s"))
    fault(raised.value, offsets[2], tmp_path / "s.jsonl")


def test_a_record_that_verifies_but_is_no_record_says_so(tmp_path: Path) -> None:
    """A commit record of another shape, its checksums right (another tool's): named, and why."""
    data, offsets = journal_v2(meta(0), [([LINE], b"[1]")])
    (tmp_path / "s.jsonl").write_bytes(data)
    with pytest.raises(CorruptSessionError) as raised:
        asyncio.run(FileSessionStore(tmp_path).load("s"))
    assert str(raised.value) == (
        f"corrupt session file {tmp_path / 's.jsonl'}: its commit record at offset {offsets[1]}"
        ' verifies but cannot be read: it is not ["metadata", {metadata}, checksums]'
    )


# -- an SQL row nesting deeper than a load reads: what load, list and doctor say -----------
#
# As a journal record above: no save writes one, an older release or a hand may. Each row is
# read as part of an array (metadata: of its object), so it may nest 127 deep; the error names
# the session and the message row (or its metadata) at fault, and why.


def sql_rows_too_deep(tmp_path: Path, where: str, depth: int) -> tuple[SqlSessionStore, str, str]:
    """A store of session ``s`` (3 messages) whose message 1 (``where="message"``) or metadata
    value ``x`` nests ``depth`` deep, written with sqlite3; the store, and the text to name."""
    path = tmp_path / "sessions.db"
    store = SqlSessionStore(f"sqlite:///{path}")
    asyncio.run(store.save("s", [{"role": "user", "content": []}] * 3))
    asyncio.run(store.close())
    deep = "[" * depth + "]" * depth
    with closing(sqlite3.connect(path)) as connection, connection:
        if where == "message":
            connection.execute(
                f"UPDATE {store.table}_messages SET message = ? WHERE session_id = 's' AND seq = 1", (deep,)
            )
        else:
            (text,) = connection.execute(f"SELECT metadata FROM {store.table} WHERE id = 's'").fetchone()
            connection.execute(
                f"UPDATE {store.table} SET metadata = ? WHERE id = 's'", (f'{text[:-1]},"x":{deep}}}',)
            )
    what = "its message 1" if where == "message" else "invalid metadata:"
    return store, f"corrupt session 's' in table {store.table!r}: {what} nests deeper than a load reads", deep


@pytest.mark.parametrize("depth", [LIMIT, LIMIT + 1, LIMIT + 2, 5000])
@pytest.mark.parametrize("where", ["message", "metadata"])
def test_an_sql_row_too_deep_is_named_by_load_list_and_doctor(
    tmp_path: Path, where: str, depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Up to what a load reads (a message row, or a metadata value, 127 deep) it loads;
    deeper, load, load_tail and load_chain name the session, the row and the parser's reason,
    list skips metadata it cannot read with that warning, and the store check names it,
    leaving it as it is (it said nothing: "SQL message rows 128 deep ... check names neither")."""
    store, named, deep = sql_rows_too_deep(tmp_path, where, depth)
    readable = depth <= LIMIT + 1

    async def main() -> None:
        if readable:
            stored = await store.load("s")
            assert stored is not None
            assert len(stored.messages) == 3
            assert (await check_store(store)).problems == []
            return
        with pytest.raises(CorruptSessionError) as raised:
            await store.load("s")
        detail = str(raised.value)
        assert detail.startswith(f"{named} (nesting deeper than 128"), detail
        for call in (lambda: store.load_tail("s", 2), lambda: store.load_chain("s")):
            with pytest.raises(CorruptSessionError) as again:
                await call()
            assert str(again.value) == detail
        tail = await store.load_tail("s", 1) if where == "message" else None  # row 1 not read
        assert tail is None or len(tail.messages) == 1
        with caplog.at_level(logging.WARNING, logger="simulacra_session"):
            listed = [metadata.id for metadata in await store.list()]
        assert listed == ([] if where == "metadata" else ["s"])
        assert (detail in caplog.text) == (where == "metadata")
        left = [Problem("unreadable", "s", f"table {store.table!r}", f"{detail}: left as it is")]
        assert (await check_store(store)).problems == left
        assert (await check_store(store, repair=True)).problems == left

    try:
        asyncio.run(main())
    finally:
        asyncio.run(store.close())
    with closing(sqlite3.connect(tmp_path / "sessions.db")) as connection:  # left as it was
        rows = connection.execute(f"SELECT message FROM {store.table}_messages ORDER BY seq").fetchall()
        (text,) = connection.execute(f"SELECT metadata FROM {store.table}").fetchone()
    held = ['{"role":"user","content":[]}'] * 3
    if where == "message":
        held[1] = deep
    assert [row[0] for row in rows] == held
    assert (deep in text) == (where == "metadata")
