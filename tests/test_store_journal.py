"""The journal format of FileSessionStore: appends, torn tails, compaction, conversion, listing."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import CorruptSessionError, FileSessionStore
from simulacra_session.stores.file import journal as _journal


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def msg(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def texts(messages: list[Any]) -> list[str]:
    return [m["content"][0]["text"] for m in messages]


def test_append_writes_one_record_and_keeps_the_inode(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    run(store.save("p", [msg("root")]))
    run(store.save("s", [msg("a")], {"parent_id": "p"}))
    path = tmp_path / "s.jsonl"
    link = tmp_path / "p-forks" / "s.jsonl"
    inode = path.stat().st_ino
    assert link.stat().st_ino == inode
    before = path.read_bytes()
    run(store.append("s", [msg("b"), msg("c")], {"label": "x"}))
    after = path.read_bytes()
    assert after.startswith(before)
    added = after[len(before) :].split(b"\n")
    assert added[-1] == b""
    assert [json.loads(line) for line in added[:2]] == [msg("b"), msg("c")]
    assert json.loads(added[2])[0] == "metadata"
    assert path.stat().st_ino == inode == link.stat().st_ino
    stored = run(store.load("s"))
    assert texts(stored.messages) == ["a", "b", "c"]
    assert stored.metadata.message_count == 3
    assert stored.metadata.label == "x"
    assert [m.id for m in run(store.forks("p"))] == ["s"]


def test_header_records_format_and_version(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    run(store.save("s", [msg("a")]))
    header = json.loads((tmp_path / "s.jsonl").read_bytes().split(b"\n")[0])
    assert header[:2] == ["simulacra-session", 2]
    assert header[2]["message_count"] == 1
    stamp = "2026-01-01T00:00:00Z"
    meta = {"created_at": stamp, "updated_at": stamp, "message_count": 0}
    future = json.dumps(["simulacra-session", 99, meta]).encode() + b"\n"
    (tmp_path / "f.jsonl").write_bytes(future)
    with pytest.raises(CorruptSessionError, match=f"version 99 in {tmp_path / 'f.jsonl'}"):
        run(store.load("f"))
    commit = b'["metadata",' + json.dumps({**meta, "message_count": 1}).encode() + b"]\n"
    (tmp_path / "f.jsonl").write_bytes(future + b'{"role":"user"}\n' + commit)  # appended to
    with pytest.raises(CorruptSessionError, match="version 99"):
        run(store.load("f"))
    with pytest.raises(CorruptSessionError, match="version 99"):
        run(store.append("f", [msg("b")]))


def test_messages_that_are_not_objects_round_trip(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    odd: list[Any] = [["message", 1], "text", 3, None, {"metadata": {}}]
    run(store.save("s", odd))
    run(store.append("s", [["metadata", {"x": 1}]]))
    fresh = FileSessionStore(tmp_path)
    assert run(fresh.load("s")).messages == [*odd, ["metadata", {"x": 1}]]


def test_torn_tail_at_every_byte_offset(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    run(store.save("s", [msg("one"), msg("two")], {"label": "before"}))
    path = tmp_path / "s.jsonl"
    complete = path.read_bytes()
    run(store.append("s", [msg("three é"), msg("four")], {"label": "after"}))
    appended = path.read_bytes()
    caplog.set_level(logging.WARNING, logger="simulacra_session")
    for cut in range(len(complete), len(appended)):
        path.write_bytes(appended[:cut])
        reader = FileSessionStore(tmp_path, fsync=False)
        stored = run(reader.load("s"))
        assert texts(stored.messages) == ["one", "two"], cut
        assert stored.metadata.label == "before"
        assert run(reader.list())[0].label == "before"
        run(reader.append("s", [msg("five")]))  # truncates the torn bytes first
        again = run(FileSessionStore(tmp_path).load("s"))
        assert texts(again.messages) == ["one", "two", "five"], cut
    assert "incomplete save" in caplog.text


def test_damage_before_the_last_commit_is_corruption(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    run(store.save("s", [msg("one"), msg("two")]))
    run(store.append("s", [msg("three")]))
    path = tmp_path / "s.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[1] = b"{" + b"x" * (len(lines[1]) - 1)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CorruptSessionError, match=str(path)):
        run(FileSessionStore(tmp_path).load("s"))
    # list() reads only the tail, never the messages: the session is still listed
    assert [m.message_count for m in run(FileSessionStore(tmp_path).list())] == [3]


def test_compaction_drops_superseded_metadata_and_keeps_the_fork_index(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, fsync=False)
    run(store.save("p", [msg("root")]))
    run(store.save("s", [], {"parent_id": "p", "note": "n" * 400}))
    path = tmp_path / "s.jsonl"
    link = tmp_path / "p-forks" / "s.jsonl"
    inodes = {path.stat().st_ino}
    for index in range(30):
        run(store.append("s", [msg(str(index))]))
        inodes.add(path.stat().st_ino)
        assert link.stat().st_ino == path.stat().st_ino
    assert len(inodes) > 1, "never compacted"
    data = path.read_bytes()
    commits = [line for line in data.split(b"\n") if line.startswith(b'["metadata",')]
    assert len(data) < 30 * 600
    assert len(commits) < 30
    stored = run(FileSessionStore(tmp_path).load("s"))
    assert texts(stored.messages) == [str(index) for index in range(30)]
    assert stored.metadata.model_extra == {"note": "n" * 400}
    assert [m.id for m in run(store.forks("p"))] == ["s"]


def test_conversion_from_the_original_layout_and_back(tmp_path: Path) -> None:
    original = {
        "metadata": {
            "created_at": "2025-01-02T03:04:05.678Z",
            "updated_at": "2025-01-02T03:04:05.678Z",
            "message_count": 1,
            "parent_id": "p",
            "custom": True,
        },
        "messages": [msg("from typescript")],
    }
    (tmp_path / "p.json").write_text(json.dumps({"metadata": original["metadata"], "messages": []}, indent=2))
    (tmp_path / "s.json").write_text(json.dumps(original, indent=2))
    (tmp_path / "p-forks").mkdir()
    os.link(tmp_path / "s.json", tmp_path / "p-forks" / "s.json")

    journal = FileSessionStore(tmp_path)
    assert texts(run(journal.load("s")).messages) == ["from typescript"]
    run(journal.append("s", [msg("continued")]))  # kept where the original reads it
    assert not (tmp_path / "s.jsonl").exists()
    assert sorted(os.listdir(tmp_path / "p-forks")) == ["s.json"]
    assert run(journal.convert("s")) is True  # only when asked
    assert not (tmp_path / "s.json").exists()
    assert (tmp_path / "s.jsonl").exists()
    assert sorted(os.listdir(tmp_path / "p-forks")) == ["s.jsonl"]
    assert (tmp_path / "p-forks" / "s.jsonl").stat().st_ino == (tmp_path / "s.jsonl").stat().st_ino
    assert run(journal.convert("s")) is False
    stored = run(journal.load("s"))
    assert texts(stored.messages) == ["from typescript", "continued"]
    assert stored.metadata.model_extra == {"custom": True}
    assert stored.metadata.created_at == "2025-01-02T03:04:05.678Z"

    legacy = FileSessionStore(tmp_path, format="json")
    run(legacy.append("s", [msg("journal")]))
    assert not (tmp_path / "s.json").exists()
    assert run(legacy.convert("s")) is True
    run(legacy.append("s", [msg("back")]))
    assert not (tmp_path / "s.jsonl").exists()
    document = json.loads((tmp_path / "s.json").read_bytes())
    assert list(document) == ["metadata", "messages"]
    assert texts(document["messages"]) == ["from typescript", "continued", "journal", "back"]
    assert sorted(os.listdir(tmp_path / "p-forks")) == ["s.json"]
    assert [m.id for m in run(legacy.forks("p"))] == ["s"]


def test_list_pages_and_shows_the_newer_of_two_formats(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    for index in range(5):
        run(store.save(f"s{index}", [msg(str(index))]))
    assert [m.id for m in run(store.list())] == ["s4", "s3", "s2", "s1", "s0"]
    assert [m.id for m in run(store.list(limit=2))] == ["s4", "s3"]
    assert [m.id for m in run(store.list(limit=2, offset=3))] == ["s1", "s0"]
    assert run(store.list(offset=9)) == []
    with pytest.raises(ValueError, match="negative"):
        run(store.list(limit=-1))
    (tmp_path / "s0.json").write_text(
        json.dumps(
            {
                "metadata": {
                    "created_at": "2020-01-01T00:00:00Z",
                    "updated_at": "2020-01-01T00:00:00Z",
                    "message_count": 0,
                },
                "messages": [],
            }
        )
    )
    assert len(run(store.list())) == 5  # one session, two files: the newer, as a load reads it
    assert run(store.list())[-1].message_count == 0
    assert run(store.load("s0")).metadata.message_count == 0
    journal = (tmp_path / "s0.jsonl").stat().st_mtime_ns
    os.utime(tmp_path / "s0.json", ns=(journal - 10**9, journal - 10**9))  # as a crash leaves it
    assert run(store.list())[-1].message_count == 1
    assert run(store.load("s0")).metadata.message_count == 1
    os.utime(tmp_path / "s0.json", ns=(journal, journal))  # a tie: the store's format
    assert run(store.list())[-1].message_count == 1
    assert run(FileSessionStore(tmp_path, format="json").list())[-1].message_count == 0


def test_list_cache_follows_other_writers(tmp_path: Path) -> None:
    reader = FileSessionStore(tmp_path)
    writer = FileSessionStore(tmp_path)
    run(writer.save("s", [msg("a")], {"label": "one"}))
    assert run(reader.list())[0].label == "one"
    run(writer.append("s", [msg("b")], {"label": "two"}))
    assert run(reader.list())[0].label == "two"
    assert run(reader.list())[0].message_count == 2


def test_tail_metadata_needs_a_complete_commit() -> None:
    data, _, _ = _journal.encode_full(b'{"message_count":1}', [b'{"a":1}'])
    assert _journal.tail_metadata(data, True, 2) == {"message_count": 1}
    # its commit record cut (its newline): the header's message_count counts a line no record
    # commits, so no state verifies (load finds the file corrupt): None, the whole file read
    assert _journal.tail_metadata(data[:-1], True, 2) is None
    header, _, _ = _journal.encode_full(b'{"message_count":0}', [])
    assert _journal.tail_metadata(header + b'{"a":1}\n["meta', True, 2) == {"message_count": 0}
    assert _journal.tail_metadata(data[-5:], False, 2) is None


@pytest.mark.parametrize("size", [0, -1, True, 2.5, "3", None])
def test_cached_sessions_must_be_a_positive_integer(tmp_path: Path, size: Any) -> None:
    with pytest.raises(ValueError, match=f"cached_sessions must be a positive integer, got {size!r}"):
        FileSessionStore(tmp_path, cached_sessions=size)


@pytest.mark.parametrize("label_size", [10, 6_000, 100_000])
def test_list_finds_metadata_records_of_any_size(tmp_path: Path, label_size: int) -> None:
    """The last commit record within the first tail read, the second, or neither (whole file)."""
    store = FileSessionStore(tmp_path)
    label = "é" * label_size
    run(store.save("s", [msg("x" * 50_000)], {"label": "old"}))
    run(store.append("s", [msg("y")], {"label": label}))
    [listed] = run(FileSessionStore(tmp_path).list())
    assert (listed.label, listed.message_count) == (label, 2)


def test_list_skips_a_journal_of_another_version(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FileSessionStore(tmp_path)
    run(store.save("ok", [msg("a")]))
    run(store.save("future", [msg("x" * 70_000)]))  # its header is not in the tail read
    run(store.append("future", [msg("b")]))
    path = tmp_path / "future.jsonl"
    path.write_bytes(path.read_bytes().replace(b'["simulacra-session",2,', b'["simulacra-session",3,', 1))
    assert [m.id for m in run(FileSessionStore(tmp_path).list())] == ["ok"]
    assert f"unsupported journal version 3 in {path}" in caplog.text


ERRORS_NAME_THE_JOURNAL = """
import asyncio, os, resource, signal, sys
from simulacra_session import FileSessionStore

async def main(root):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    for fsync in (True, False):
        for path_taken in ("inline", "thread"):
            session_id = f"s{int(fsync)}{path_taken}"
            path = os.path.join(root, session_id + ".jsonl")
            await FileSessionStore(root, fsync=fsync).save(session_id, [{"role": "user"}])
            store = FileSessionStore(root, fsync=fsync)
            if path_taken == "inline":
                await store.load(session_id)  # the store knows the journal: appends on the loop
            resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 10, limit[1]))
            try:
                await store.append(session_id, [{"role": "assistant", "content": "x" * 100}])
            except OSError as error:
                print(fsync, path_taken, error.errno, error.filename == path)
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, limit)

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.skipif(not hasattr(os, "pwrite") or sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_a_failed_append_names_the_journal(tmp_path: Path) -> None:
    """In its own process: a file size limit would also stop this one's own files."""
    done = subprocess.run(
        [sys.executable, "-c", ERRORS_NAME_THE_JOURNAL, str(tmp_path)], capture_output=True, check=True
    )
    lines = done.stdout.decode().splitlines()
    efbig = errno.EFBIG
    assert lines == [
        f"True inline {efbig} True",
        f"True thread {efbig} True",
        f"False inline {efbig} True",
        f"False thread {efbig} True",
    ], done.stderr.decode()


@pytest.mark.parametrize("reader_format", ["jsonl", "json"])
def test_a_session_in_both_formats_is_read_from_the_newer_file(
    tmp_path: Path, reader_format: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """As after a crash between a conversion's write and its removal of the old file: every
    store reads the newer, and its next save keeps what that holds."""
    run(FileSessionStore(tmp_path, format="json").save("s", [msg("a")]))
    stale = (tmp_path / "s.json").read_bytes()
    run(FileSessionStore(tmp_path).convert("s"))  # .json removed
    run(FileSessionStore(tmp_path).save("s", [msg("a"), msg("b")]))
    run(FileSessionStore(tmp_path).append("s", [msg("c")]))
    (tmp_path / "s.json").write_bytes(stale)  # the old file, back as a crash would leave it
    now = (tmp_path / "s.jsonl").stat().st_mtime_ns
    os.utime(tmp_path / "s.json", ns=(now - 10**9, now - 10**9))
    store = FileSessionStore(tmp_path, format=reader_format)
    assert texts(run(store.load("s")).messages) == ["a", "b", "c"]
    assert "stored in both formats" in caplog.text
    run(store.append("s", [msg("d")]))
    for file_format in ("jsonl", "json"):
        reader = FileSessionStore(tmp_path, format=file_format)
        assert texts(run(reader.load("s")).messages) == ["a", "b", "c", "d"]


def test_forks_show_the_newer_of_two_formats(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    run(store.save("p", [msg("root")]))
    run(FileSessionStore(tmp_path, format="json").save("f", [msg("a")], {"parent_id": "p"}))
    stale = (tmp_path / "f.json").read_bytes()
    run(store.convert("f"))  # .json removed
    run(store.save("f", [msg("a"), msg("b")], {"parent_id": "p"}))
    (tmp_path / "f.json").write_bytes(stale)  # back, older, as a crash between the two leaves it
    journal = (tmp_path / "f.jsonl").stat().st_mtime_ns
    os.utime(tmp_path / "f.json", ns=(journal - 10**9, journal - 10**9))
    for reader in (store, FileSessionStore(tmp_path, format="json")):
        assert [m.message_count for m in run(reader.forks("p"))] == [2]
        assert [m.message_count for m in run(reader.list()) if m.id == "f"] == [2]
    os.utime(tmp_path / "f.json", ns=(journal + 10**9, journal + 10**9))  # the json file newer
    assert [m.message_count for m in run(store.forks("p"))] == [1]
    assert texts(run(store.load("f")).messages) == ["a"]
