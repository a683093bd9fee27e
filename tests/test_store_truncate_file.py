"""FileSessionStore.truncate: one truncation record in a journal (the inode and the fork index
kept), a rewrite of a .json document; revisions, arguments, crash safety (a torn record at
every byte, a process killed while it truncates), compaction, the doctor and listings."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from tests.test_journal_parse import to_v1

import preloaded
from simulacra_session import FileSessionStore
from simulacra_session.errors import (
    ConflictError,
    InvalidSessionIdError,
    SessionNotFoundError,
    UnsafePathError,
)
from simulacra_session.models import Revision
from simulacra_session.stores.file import journal
from simulacra_session.stores.file.check import check_files
from simulacra_session.stores.file.layout import FileFormat
from simulacra_session.stores.file.records import COMMIT_PREFIX
from simulacra_session.stores.file.restore import compact
from simulacra_session.testing.helpers import msg, run, texts

FORMATS: list[FileFormat] = ["jsonl", "json"]


def words(count: int) -> list[str]:
    """Texts long enough that removing a few leaves no journal due for compaction."""
    return [f"m{index}" + "x" * 400 for index in range(count)]


@pytest.mark.parametrize("file_format", FORMATS)
def test_truncate_removes_the_last_messages_and_keeps_the_metadata(
    tmp_path: Path, file_format: FileFormat
) -> None:
    store = FileSessionStore(tmp_path, format=file_format)
    saved = run(store.save("s", [msg(text) for text in words(6)], {"label": "kept", "extra": [1]}))
    revision = run(store.truncate("s", 2))
    for reader in (store, FileSessionStore(tmp_path, format=file_format)):
        stored = run(reader.load("s"))
        assert stored is not None
        assert texts(stored.messages) == words(4)
        assert stored.revision == revision
        assert (stored.metadata.label, stored.metadata.model_extra) == ("kept", {"extra": [1]})
        assert stored.metadata.updated > run(FileSessionStore(tmp_path).list())[0].created
        assert revision.message_count == 4
        assert revision.updated_at > saved.updated_at
    assert run(store.truncate("s", 0)).updated_at > revision.updated_at  # a write all the same
    assert run(store.truncate("s", 4)).message_count == 0
    assert run(store.load("s")).messages == []  # type: ignore[union-attr]
    assert [meta.message_count for meta in run(store.list())] == [0]


def test_a_journal_gets_one_record_and_keeps_its_inode_and_fork_link(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    run(store.save("p", [msg("root")]))
    run(store.save("s", [msg(text) for text in words(5)], {"parent_id": "p"}))
    path = tmp_path / "s.jsonl"
    before = path.read_bytes()
    inode = path.stat().st_ino
    run(store.truncate("s", 2))  # removed lines and superseded records do not outweigh the rest
    after = path.read_bytes()
    assert after.startswith(before)
    record = after[len(before) :]
    assert record.count(b"\n") == 1
    assert record.startswith(COMMIT_PREFIX)
    assert journal._commit_record(record[:-1], 2)["message_count"] == 3  # type: ignore[index]
    assert path.stat().st_ino == inode == (tmp_path / "p-forks" / "s.jsonl").stat().st_ino
    assert [meta.id for meta in run(store.forks("p"))] == ["s"]
    assert texts(run(FileSessionStore(tmp_path).load("s")).messages) == words(3)  # type: ignore[union-attr]


def test_a_json_document_is_rewritten_in_the_original_layout(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, format="json")
    run(store.save("s", [msg(text) for text in words(3)]))
    run(store.truncate("s", 1))
    data = (tmp_path / "s.json").read_text()
    assert data.startswith('{"metadata":{')
    assert '"m2"' not in data
    assert '"message_count":2' in data
    assert not (tmp_path / "s.jsonl").exists()


@pytest.mark.parametrize("file_format", FORMATS)
def test_revisions_and_arguments(tmp_path: Path, file_format: FileFormat) -> None:
    store = FileSessionStore(tmp_path, format=file_format)
    saved = run(store.save("s", [msg(text) for text in words(3)]))
    stale = Revision(3, "2020-01-01T00:00:00.000000Z")
    size = (tmp_path / f"s.{file_format}").read_bytes()
    with pytest.raises(ConflictError, match="s"):
        run(store.truncate("s", 1, expected=stale))
    with pytest.raises(ValueError, match="3"):
        run(store.truncate("s", 4))
    with pytest.raises(ValueError, match="count"):
        run(store.truncate("s", -1))
    with pytest.raises(SessionNotFoundError):
        run(store.truncate("absent", 0))
    with pytest.raises(InvalidSessionIdError):
        run(store.truncate("../s", 0))
    assert (tmp_path / f"s.{file_format}").read_bytes() == size  # nothing written
    other = FileSessionStore(tmp_path, format=file_format)  # a writer that has not read it
    first = run(other.truncate("s", 1, expected=saved))
    with pytest.raises(ConflictError):
        run(store.truncate("s", 1, expected=saved))  # the store's own view is stale now
    assert run(store.truncate("s", 1, expected=first)).message_count == 1
    assert texts(run(store.load("s")).messages) == words(1)  # type: ignore[union-attr]


def test_a_torn_truncation_record_loads_the_state_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    run(store.save("s", [msg(text) for text in words(4)]))
    path = tmp_path / "s.jsonl"
    before = path.read_bytes()
    run(store.truncate("s", 2))
    after = path.read_bytes()
    caplog.set_level(logging.ERROR, logger="simulacra_session")
    for size in range(len(before), len(after) + 1):
        path.write_bytes(after[:size])
        reader = FileSessionStore(tmp_path, fsync=False)
        want = words(2) if size == len(after) else words(4)
        assert texts(run(reader.load("s")).messages) == want, size  # type: ignore[union-attr]
        assert texts(run(reader.load_tail("s", 3)).messages) == want[-3:], size  # type: ignore[union-attr]
        assert run(reader.list())[0].message_count == len(want)
        run(reader.truncate("s", 1))  # cuts the torn bytes first (a copy kept)
        assert texts(run(FileSessionStore(tmp_path).load("s")).messages) == want[:-1], size  # type: ignore[union-attr]
        for aside in tmp_path.glob("s.jsonl.corrupt-*"):
            aside.unlink()


def test_truncation_then_compaction_and_the_doctor(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    run(store.save("s", [msg(text) for text in words(50)]))
    run(store.truncate("s", 10))
    run(store.append("s", [msg("new")]))
    run(store.truncate("s", 1))
    assert run(check_files(store, repair=False)) == []
    expected = run(store.load("s"))
    assert expected is not None
    path = tmp_path / "s.jsonl"
    size = path.stat().st_size
    assert run(compact(store, "s"))
    assert path.stat().st_size < size
    stored = run(FileSessionStore(tmp_path).load("s"))
    assert stored is not None
    assert (stored.messages, stored.metadata) == (expected.messages, expected.metadata)
    parsed = journal.parse_journal(path.read_bytes(), str(path))
    assert len(parsed.messages) == 40
    assert parsed.superseded == path.read_bytes().index(b"\n") + 1  # the header alone


def test_removed_lines_call_for_a_compaction(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    run(store.save("s", [msg(text) for text in words(20)]))
    path = tmp_path / "s.jsonl"
    inode = path.stat().st_ino
    run(store.truncate("s", 5))
    assert path.stat().st_ino == inode  # most of it still live
    run(store.truncate("s", 12))
    assert path.stat().st_ino != inode  # compacted: the removed lines outweighed the rest
    assert texts(run(store.load("s")).messages) == words(3)  # type: ignore[union-attr]
    assert (tmp_path / "s.jsonl").read_bytes().count(b"\n") == 5  # header, 3 messages, commit


def test_a_version_1_journal_is_rewritten(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    run(store.save("s", [msg(text) for text in words(3)]))
    path = tmp_path / "s.jsonl"
    path.write_bytes(to_v1(path.read_bytes()))
    run(FileSessionStore(tmp_path).truncate("s", 1))
    assert path.read_bytes().startswith(b'["simulacra-session",2,')
    assert texts(run(FileSessionStore(tmp_path).load("s")).messages) == words(2)  # type: ignore[union-attr]


def test_a_symlinked_session_file_is_refused(tmp_path: Path) -> None:
    outside, root = tmp_path / "outside", tmp_path / "root"
    run(FileSessionStore(outside).save("s", [msg("a"), msg("b")]))
    root.mkdir()
    os.symlink(outside / "s.jsonl", root / "s.jsonl")
    with pytest.raises(UnsafePathError):
        run(FileSessionStore(root).truncate("s", 1))
    assert texts(run(FileSessionStore(outside).load("s")).messages) == ["a", "b"]  # type: ignore[union-attr]


async def test_concurrent_truncations_and_appends_lose_nothing(tmp_path: Path) -> None:
    stores = [FileSessionStore(tmp_path), FileSessionStore(tmp_path)]
    await stores[0].save("s", [msg(text) for text in words(40)])

    async def pop(store: FileSessionStore) -> None:
        for _ in range(10):
            while True:
                tail = await store.load_tail("s", 1)
                assert tail is not None
                try:
                    await store.truncate("s", 1, expected=tail.revision)
                    break
                except ConflictError:
                    continue

    await asyncio.gather(*(pop(store) for store in stores))
    stored = await FileSessionStore(tmp_path).load("s")
    assert stored is not None
    assert texts(stored.messages) == words(20)


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from simulacra_session import FileSessionStore

    async def main(root, run):
        store = FileSessionStore(root)
        n = 0
        while True:
            n += 1
            await store.append("s", [{"role": "user", "content": f"{run}:{n}.{i}"} for i in range(3)])
            await store.truncate("s", 2)
            if n == 1:
                print("ready", flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_a_process_killed_while_it_truncates_leaves_a_committed_state(tmp_path: Path) -> None:
    """Each round appends n.0 n.1 n.2 and truncates two: a committed state holds n.0 of every
    round before the last, then the last round's three messages or its first alone. The
    processes are forked from the preloaded forkserver (``preloaded``), not fresh interpreters."""
    rng = random.Random(5)
    for attempt in range(6):
        with preloaded.start(CHILD, str(tmp_path), str(attempt)) as child:
            child.ready()
            if child.wait(rng.uniform(0.01, 0.2)) is None:
                child.kill()
            assert child.exitcode == -signal.SIGKILL, f"the child ended: {child.stderr()}"
        stored = run(FileSessionStore(tmp_path).load("s"))
        assert stored is not None
        rounds: list[list[str]] = []  # the messages each round left, in order
        for message in stored.messages:
            text = str(message["content"])
            if not rounds or not text.startswith(rounds[-1][0][:-1]):
                rounds.append([])
            rounds[-1].append(text)
        for index, kept in enumerate(rounds):
            assert kept[0].endswith(".0")
            last_of_a_process = (
                index + 1 == len(rounds) or rounds[index + 1][0].split(":")[0] != kept[0].split(":")[0]
            )
            assert [text[-1] for text in kept] in (["0"], ["0", "1", "2"] if last_of_a_process else ["0"])
        tail = run(FileSessionStore(tmp_path).load_tail("s", 2))
        assert tail is not None
        assert tail.messages == stored.messages[-2:]
