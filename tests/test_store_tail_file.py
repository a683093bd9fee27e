"""FileSessionStore.load_tail: what load gives, cut, in both formats, whatever the journal holds
(long batches with seal records, truncation records, appends of several messages); a journal
read from its end only, and loaded whole when anything read there does not verify."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from typing import Any

import pytest
from tests.test_journal_parse import to_v1

from simulacra_session import FileSessionStore, StoredSession
from simulacra_session.errors import CorruptSessionError, InvalidSessionIdError, UnsafePathError
from simulacra_session.messages import JsonObject
from simulacra_session.stores.file import tail as tail_module
from simulacra_session.stores.file.files import read_from
from simulacra_session.stores.file.layout import FileFormat
from simulacra_session.stores.file.records import SEAL_EVERY, SEAL_PREFIX
from simulacra_session.stores.file.restore import compact
from simulacra_session.testing.helpers import msg, run, texts


def big(text: str, size: int) -> JsonObject:
    return msg(text + " " + "x" * size)


def cut(stored: StoredSession, count: int, end: int | None) -> list[Any]:
    total = len(stored.messages)
    stop = total if end is None else min(end, total)
    return stored.messages[max(0, stop - count) : stop]


async def check_tails(store: FileSessionStore, session_id: str) -> StoredSession:
    """Every tail of ``session_id`` equals load's messages cut, with load's metadata."""
    stored = await store.load(session_id)
    assert stored is not None
    total = len(stored.messages)
    ends: list[int | None] = [None, 0, 1, total // 3, total // 2, total - 1, total, total + 3]
    for count in sorted({0, 1, 2, 3, 5, total // 2, total, total + 1}):
        for end in ends:
            found = await store.load_tail(session_id, count, end=end)
            assert found is not None
            assert found.messages == cut(stored, count, end), (count, end)
            assert found.metadata == stored.metadata
            assert found.revision == stored.revision
    return stored


def no_whole_loads(store: FileSessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a tail that loads the journal whole fail."""

    def whole(session_id: str) -> None:
        raise AssertionError(f"session {session_id} was loaded whole")

    monkeypatch.setattr(store, "_load_sync", whole)


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_tails_equal_load_through_appends_truncations_and_compaction(
    tmp_path: Path, file_format: FileFormat
) -> None:
    rng = random.Random(7)
    store = FileSessionStore(tmp_path, fsync=False, format=file_format)
    expected = [big(f"m{index}", rng.randint(0, 3000)) for index in range(40)]
    run(store.save("s", expected, {"label": "start"}))
    for step in range(40):
        writer = store if step % 3 else FileSessionStore(tmp_path, fsync=False, format=file_format)
        if rng.random() < 0.45 and expected:
            count = rng.randint(0, min(5, len(expected)))
            run(writer.truncate("s", count))
            del expected[len(expected) - count :]
        else:
            batch = [msg(f"a{step}.{index}") for index in range(rng.randint(0, 4))]
            run(writer.append("s", batch, {"label": f"step {step}"} if step % 4 == 0 else None))
            expected += batch
        if step % 5 == 0:
            stored = run(check_tails(FileSessionStore(tmp_path, format=file_format), "s"))
            assert stored.messages == expected
    assert run(compact(store, "s"))
    stored = run(check_tails(store, "s"))
    assert stored.messages == expected


def test_a_journal_tail_is_read_from_its_end_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long session saved in one batch is sealed every SEAL_EVERY bytes: a tail reads about
    that much, verified, whatever the length, and never the whole journal."""
    store = FileSessionStore(tmp_path, fsync=False)
    run(store.save("s", [big(f"m{index}", 500) for index in range(4000)]))
    run(store.truncate("s", 2))
    run(store.append("s", [msg("x"), ["not an object", 1]]))  # type: ignore[list-item]
    path = tmp_path / "s.jsonl"
    assert path.read_bytes().count(b"\n" + SEAL_PREFIX) > 20
    read: list[int] = []
    real = read_from

    def counted(fd: int, offset: int, size: int, *, to_end: bool = True) -> bytes:
        data = real(fd, offset, size, to_end=to_end)
        read.append(len(data))
        return data

    monkeypatch.setattr(tail_module, "read_from", counted)
    no_whole_loads(store, monkeypatch)
    found = run(store.load_tail("s", 5))
    assert found is not None
    assert texts(found.messages[:3]) == [f"m{index} " + "x" * 500 for index in range(3995, 3998)]
    assert found.messages[3:] == [msg("x"), ["not an object", 1]]
    assert found.metadata.message_count == 4000
    assert sum(read) < 4 * SEAL_EVERY < path.stat().st_size // 5
    stored = run(FileSessionStore(tmp_path).load("s"))  # every seal verifies and chains in order
    assert stored is not None
    assert (stored.messages[-5:], stored.damage) == (found.messages, None)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # within a sealed batch: no state verifies before the next commit
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptSessionError, match="does not verify"):
        run(FileSessionStore(tmp_path).load("s"))


def test_a_tail_within_a_batch_of_several_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    run(store.save("s", []))
    for index in range(5):
        run(store.append("s", [msg(f"{index}.{part}") for part in range(3)]))
    no_whole_loads(store, monkeypatch)
    found = run(store.load_tail("s", 4, end=8))
    assert found is not None
    assert texts(found.messages) == ["1.1", "1.2", "2.0", "2.1"]
    assert texts(run(store.load_tail("s", 2)).messages) == ["4.1", "4.2"]  # type: ignore[union-attr]
    empty = run(store.load_tail("s", 0))
    assert empty is not None
    assert (empty.messages, empty.metadata.message_count) == ([], 15)


def test_an_empty_session_and_an_absent_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    assert run(store.load_tail("absent", 3)) is None
    run(store.save("e", [], {"label": "empty"}))
    no_whole_loads(store, monkeypatch)
    found = run(store.load_tail("e", 3))
    assert found is not None
    assert (found.messages, found.metadata.label) == ([], "empty")


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_invalid_arguments(tmp_path: Path, file_format: FileFormat) -> None:
    store = FileSessionStore(tmp_path, format=file_format)
    run(store.save("s", [msg("a")]))
    with pytest.raises(ValueError, match="count"):
        run(store.load_tail("s", -1))
    with pytest.raises(ValueError, match="end"):
        run(store.load_tail("s", 1, end=-1))
    with pytest.raises(InvalidSessionIdError):
        run(store.load_tail("../s", 1))


def test_a_symlinked_session_file_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    root = tmp_path / "root"
    run(FileSessionStore(outside).save("s", [msg("secret")]))
    root.mkdir()
    os.symlink(outside / "s.jsonl", root / "s.jsonl")
    with pytest.raises(UnsafePathError):
        run(FileSessionStore(root).load_tail("s", 1))


def test_damage_in_what_a_tail_reads_loads_the_journal_whole(tmp_path: Path) -> None:
    """Every single byte of the last append damaged in turn: the tail is load's, cut."""
    store = FileSessionStore(tmp_path, fsync=False)
    run(store.save("s", [msg("one"), msg("two")]))
    path = tmp_path / "s.jsonl"
    before = len(path.read_bytes())
    run(store.append("s", [msg("three"), msg("four")], {"label": "after"}))
    data = path.read_bytes()
    for offset in range(before, len(data)):
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        reader = FileSessionStore(tmp_path, fsync=False)
        try:
            stored = run(reader.load("s"))
        except CorruptSessionError:
            with pytest.raises(CorruptSessionError):
                run(reader.load_tail("s", 2))
            continue
        assert stored is not None
        found = run(reader.load_tail("s", 2))
        assert found is not None
        assert found.messages == cut(stored, 2, None), offset
        assert found.metadata == stored.metadata


def test_a_torn_append_tails_as_load_does(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    run(store.save("s", [msg("one"), msg("two")]))
    path = tmp_path / "s.jsonl"
    complete = path.read_bytes()
    run(store.append("s", [msg("three"), msg("four")]))
    appended = path.read_bytes()
    for size in range(len(complete), len(appended) + 1):
        path.write_bytes(appended[:size])
        found = run(FileSessionStore(tmp_path).load_tail("s", 3))
        assert found is not None
        want = ["two", "three", "four"] if size == len(appended) else ["one", "two"]
        assert texts(found.messages) == want, size


def test_damage_before_what_a_tail_reads_is_not_seen_by_it(tmp_path: Path) -> None:
    """The documented limit: a tail checks the bytes from its first message to the end. Damage
    earlier makes load give the state before it; the tail gives the last state's messages."""
    store = FileSessionStore(tmp_path, fsync=False)
    run(store.save("s", [big("one", 300), big("two", 300)]))
    run(store.append("s", [big("three", 300)]))
    run(store.append("s", [big("four", 300)]))
    path = tmp_path / "s.jsonl"
    data = path.read_bytes()
    second = data.index(b'"three')
    path.write_bytes(data[:second] + b'"threE' + data[second + 6 :])
    reader = FileSessionStore(tmp_path)
    stored = run(reader.load("s"))
    assert stored is not None
    assert stored.damage is not None
    assert stored.metadata.message_count == 2
    found = run(reader.load_tail("s", 1))
    assert found is not None
    assert found.metadata.message_count == 4
    assert texts(found.messages) == ["four " + "x" * 300]


def test_other_versions(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    run(store.save("s", [msg("one")]))
    run(store.append("s", [msg("two")]))
    path = tmp_path / "s.jsonl"
    path.write_bytes(to_v1(path.read_bytes()))
    found = run(FileSessionStore(tmp_path).load_tail("s", 1))
    assert found is not None
    assert texts(found.messages) == ["two"]
    path.write_bytes(path.read_bytes().replace(b'["simulacra-session",1,', b'["simulacra-session",9,', 1))
    with pytest.raises(CorruptSessionError, match="unsupported journal version 9"):
        run(FileSessionStore(tmp_path).load_tail("s", 1))


def test_a_session_in_both_formats_tails_from_the_newer_file(tmp_path: Path) -> None:
    run(FileSessionStore(tmp_path, format="json").save("s", [msg("document")]))
    run(FileSessionStore(tmp_path).save("t", [msg("journal")]))
    os.rename(tmp_path / "t.jsonl", tmp_path / "s.jsonl")
    future = os.stat(tmp_path / "s.json").st_mtime_ns + 10**9
    os.utime(tmp_path / "s.jsonl", ns=(future, future))
    formats: list[FileFormat] = ["jsonl", "json"]
    for file_format in formats:
        store = FileSessionStore(tmp_path, format=file_format)
        found = run(store.load_tail("s", 1))
        stored = run(store.load("s"))
        assert found is not None
        assert stored is not None
        assert texts(found.messages) == texts(stored.messages) == ["journal"]


async def test_tails_while_another_task_appends(tmp_path: Path) -> None:
    """A tail read beside appends sees a committed state: never a partial append."""
    store = FileSessionStore(tmp_path, fsync=False)
    await store.save("s", [msg("0")])

    async def appends() -> None:
        for index in range(1, 60):
            await store.append("s", [msg(str(index)), msg(f"{index}b")])

    async def tails() -> None:
        for _ in range(60):
            found = await asyncio.to_thread(tail_module.load_tail_sync, store, "s", 2, None)
            assert found is not None
            count = found.metadata.message_count
            assert len(found.messages) == min(2, count)
            if count > 1:
                last = (count - 1) // 2
                assert texts(found.messages) == [str(last), f"{last}b"]

    await asyncio.gather(appends(), tails())
