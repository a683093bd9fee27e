"""Journal format 2: every record carries a checksum, so damage is never read as data.

A load gives the last state whose records all verify (a state that was once committed),
with a warning and ``StoredSession.damage`` naming the file and offset, or raises
``CorruptSessionError`` naming them when none does; the file is copied aside before a write
cuts or replaces damage, not an append a crash cut short (more in ``test_journal_torn``).
Version 1 journals are read and rewritten in version 2.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import (
    CorruptSessionError,
    FileSessionStore,
    SessionManager,
    SimpleConversation,
    StoredSession,
)
from simulacra_session.stores.file import journal as _journal
from simulacra_session.stores.file.records import checksum
from simulacra_session.stores.file.restore import compact
from simulacra_session.testing import msg, texts
from test_journal_parse import to_v1

State = tuple[str, str]  # the messages and metadata of a load, as JSON


def long(text: str) -> Any:
    """A message long enough that the appends of a test are never compacted into one state."""
    return msg(f"{text} {'.' * 400}")


def words(messages: list[Any]) -> list[str]:
    return [text.split(" ")[0] for text in texts(messages)]


def state(stored: Any) -> State:
    return json.dumps(stored.messages), json.dumps(stored.metadata.to_json_dict(), sort_keys=True)


async def committed_journal(root: Path) -> tuple[bytes, set[State]]:
    """A small journal of a save, appends (one without messages, some messages not objects),
    and every state it was committed in."""
    store = FileSessionStore(root, fsync=False)
    states = set()
    text = "x" * 150  # messages outweighing the metadata records: the journal is never compacted
    steps = [
        lambda: store.save("s", [msg(f"one {text}"), msg(f"two é {text}")], {"label": "a"}),
        lambda: store.append("s", [msg(f"three {text}")], {"label": "b"}),
        lambda: store.append("s", [], {"label": "c"}),
        lambda: store.append("s", [["message", 1], None]),
    ]
    for step in steps:
        await step()
        states.add(state(await FileSessionStore(root).load("s")))
    return (root / "s.jsonl").read_bytes(), states


async def load_or_error(store: FileSessionStore) -> StoredSession | CorruptSessionError:
    try:
        stored = await store.load("s")
    except CorruptSessionError as error:
        return error
    assert stored is not None
    return stored


def test_no_single_damaged_byte_loads_a_state_never_committed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every offset of a small journal, four kinds of damage each: the load is a state that was
    committed, its damage reported, or ``CorruptSessionError`` naming the file and offset."""
    caplog.set_level(logging.ERROR, logger="simulacra_session")  # thousands of warnings

    async def check() -> dict[str, int]:
        data, states = await committed_journal(tmp_path / "source")
        final = state(await FileSessionStore(tmp_path / "source").load("s"))
        metadata = {committed[1] for committed in states}
        root = tmp_path / "damaged"
        root.mkdir()
        path = root / "s.jsonl"
        store = FileSessionStore(root, fsync=False)
        outcomes = {"final": 0, "earlier": 0, "refused": 0}
        for offset in range(len(data)):
            for damage in (data[offset] ^ 0x01, data[offset] ^ 0x20, data[offset] ^ 0x80, 0x0A):
                if damage == data[offset]:
                    continue
                path.write_bytes(data[:offset] + bytes([damage]) + data[offset + 1 :])
                stored = await load_or_error(store)
                if isinstance(stored, CorruptSessionError):
                    assert stored.path == str(path), (offset, damage)
                    assert stored.offset is not None, (offset, damage, stored)
                    assert stored.offset <= offset, (offset, damage, stored)
                    outcomes["refused"] += 1
                    continue
                loaded = state(stored)
                assert loaded in states, (offset, damage, loaded)
                if loaded == final:
                    outcomes["final"] += 1
                else:
                    assert stored.damage is not None, (offset, damage)
                    assert stored.damage.offset is not None, (offset, damage)
                    assert stored.damage.offset <= offset, (offset, damage)
                    outcomes["earlier"] += 1
                listed = await FileSessionStore(root).list()  # from the tail: a committed state's too
                assert {json.dumps(m.to_json_dict(), sort_keys=True) for m in listed} <= metadata
        return outcomes

    outcomes = asyncio.run(check())
    assert outcomes["earlier"], outcomes  # both rules were exercised
    assert outcomes["refused"], outcomes


def test_a_torn_append_loads_the_state_before_and_is_cut_off_without_a_copy(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    asyncio.run(store.save("s", [long("one")], {"label": "before"}))
    path = tmp_path / "s.jsonl"
    complete = path.read_bytes()
    asyncio.run(store.append("s", [long("two"), long("three")], {"label": "after"}))
    appended = path.read_bytes()
    for cut in range(len(complete) + 1, len(appended), 7):
        torn = appended[:cut]
        path.write_bytes(torn)
        reader = FileSessionStore(tmp_path, fsync=False)
        stored = asyncio.run(reader.load("s"))
        assert (words(stored.messages), stored.metadata.label) == (["one"], "before"), cut
        assert stored.damage is not None
        assert stored.damage.offset == len(complete)
        assert "cut short" in str(stored.damage)
        asyncio.run(reader.append("s", [long("four")]))
        assert not list(tmp_path.glob("s.jsonl.corrupt-*")), cut  # never committed: no copy
        assert words(asyncio.run(FileSessionStore(tmp_path).load("s")).messages) == ["one", "four"]


@pytest.mark.parametrize("write", ["append", "save", "compact"])
def test_damage_is_copied_aside_before_a_write_replaces_it(tmp_path: Path, write: str) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    asyncio.run(store.save("s", [long("one")]))
    asyncio.run(store.append("s", [long("two")]))
    asyncio.run(store.append("s", [long("three")]))
    path = tmp_path / "s.jsonl"
    data = path.read_bytes()
    at = data.index(b"two")
    damaged = data[:at] + b"tw0" + data[at + 3 :]  # a flipped bit inside message text
    path.write_bytes(damaged)
    reader = FileSessionStore(tmp_path, fsync=False)
    stored = asyncio.run(reader.load("s"))
    assert words(stored.messages) == ["one"]  # the damaged message is never returned as data
    assert stored.damage is not None
    assert stored.damage.path == str(path)
    if write == "append":
        asyncio.run(reader.append("s", [long("four")]))
    elif write == "save":
        asyncio.run(reader.save("s", [long("one"), long("four")]))
    else:
        asyncio.run(compact(reader, "s"))
    [copy] = tmp_path.glob("s.jsonl.corrupt-*")
    assert copy.read_bytes() == damaged
    expected = ["one"] if write == "compact" else ["one", "four"]
    assert words(asyncio.run(FileSessionStore(tmp_path).load("s")).messages) == expected


def test_a_journal_with_no_state_that_verifies_names_the_file_and_offset(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    asyncio.run(store.save("s", [msg("one")]))
    path = tmp_path / "s.jsonl"
    data = path.read_bytes()
    header_end = data.index(b"\n") + 1
    path.write_bytes(data.replace(b"created_at", b"created_aT", 1))  # in the header
    with pytest.raises(CorruptSessionError, match=f"{path}.*offset 0") as raised:
        asyncio.run(FileSessionStore(tmp_path).load("s"))
    assert (raised.value.path, raised.value.offset) == (str(path), 0)
    path.write_bytes(data[:-5] + b"X" + data[-4:])  # the only commit record: the header alone
    with pytest.raises(CorruptSessionError, match=f"does not verify from offset {header_end}") as raised:
        asyncio.run(FileSessionStore(tmp_path).load("s"))  # says a message, holds none: never committed
    assert raised.value.offset == header_end
    assert asyncio.run(FileSessionStore(tmp_path).list()) == []  # skipped, with a warning


def test_every_record_verifies_and_chains(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    asyncio.run(store.save("s", [long("one")]))
    asyncio.run(store.append("s", [long("two"), long("three")]))
    asyncio.run(store.append("s", [], {"label": "x"}))
    lines = (tmp_path / "s.jsonl").read_bytes().split(b"\n")[:-1]
    assert json.loads(lines[0])[:2] == ["simulacra-session", 2]
    records = [line for line in lines if line.startswith((b'["simulacra-session"', b'["metadata"'))]
    assert len(records) == 4
    assert all(checksum(record) is not None for record in records)
    assert all(len(json.loads(record)) == 4 for record in records)  # name or kind, metadata, checksums
    swapped = b"\n".join([lines[0], lines[3], lines[4], lines[1], lines[2], *lines[5:]]) + b"\n"
    with pytest.raises(CorruptSessionError, match=f"does not verify from offset {len(lines[0]) + 1}"):
        _journal.parse_journal(
            swapped, "p"
        )  # whole appends swapped: each record verifies alone, not the chain


def test_list_reads_a_commit_record_that_verifies(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    asyncio.run(store.save("s", [long("one")], {"label": "first"}))
    asyncio.run(store.append("s", [long("two")], {"label": "second"}))
    path = tmp_path / "s.jsonl"
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"second"', b'"secanD"'))  # the last commit record
    [listed] = asyncio.run(FileSessionStore(tmp_path).list())
    assert (listed.label, listed.message_count) == ("first", 1)  # what load reads too
    stored = asyncio.run(FileSessionStore(tmp_path).load("s"))
    assert (stored.metadata.label, words(stored.messages)) == ("first", ["one"])


def test_version_1_is_read_and_rewritten_in_version_2_by_the_first_write(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    asyncio.run(store.save("s", [msg("one")], {"label": "a"}))
    asyncio.run(store.append("s", [msg("two")], {"label": "b"}))
    path = tmp_path / "s.jsonl"
    old = to_v1(path.read_bytes())
    path.write_bytes(old)
    reader = FileSessionStore(tmp_path, fsync=False)
    assert [m.label for m in asyncio.run(reader.list())] == ["b"]
    stored = asyncio.run(reader.load("s"))
    assert (texts(stored.messages), stored.metadata.label, stored.damage) == (["one", "two"], "b", None)
    assert path.read_bytes() == old  # read as it is
    asyncio.run(reader.append("s", [msg("three")]))
    data = path.read_bytes()
    assert data.startswith(b'["simulacra-session",2,')
    parsed = _journal.parse_journal(data, str(path))
    assert (parsed.version, parsed.torn, len(parsed.messages)) == (2, 0, 3)
    asyncio.run(reader.append("s", [msg("four")]))  # now on the event loop: the journal is known
    assert texts(asyncio.run(FileSessionStore(tmp_path).load("s")).messages) == [
        "one",
        "two",
        "three",
        "four",
    ]


async def test_a_manager_reports_damage_as_a_lifecycle_error(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    await store.save("s", [long("one")])
    await store.append("s", [long("two")])
    path = tmp_path / "s.jsonl"
    data = path.read_bytes()
    path.write_bytes(data.replace(b"two", b"tWo"))
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation, auto_save=False)
    events: list[Any] = []
    manager.on("lifecycle_error", events.append)
    await manager.load("s")
    assert words(conversation.messages) == ["one"]
    [event] = events
    assert (event.operation, event.context["session_id"], event.context["path"]) == ("load", "s", str(path))
    assert isinstance(event.error, CorruptSessionError)
    assert event.context["offset"] == event.error.offset < data.index(b"two")
