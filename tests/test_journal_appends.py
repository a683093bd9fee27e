"""Appends to journals: on the event loop and in worker threads, across store instances and
processes' locks, with compaction, and what a cancelled write means."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from simulacra_session import FileSessionStore
from simulacra_session.stores.file import locks as file_locks
from simulacra_session.stores.file.rewrite import rewrite_session
from simulacra_session.testing.helpers import msg, run, texts


async def test_concurrent_durable_appends_share_the_syncer(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)  # fsync on: appends go through the group-commit thread
    ids = [f"s{index}" for index in range(40)]
    await asyncio.gather(*(store.save(session_id, [msg("0")]) for session_id in ids))
    for round_ in range(1, 6):
        await asyncio.gather(*(store.append(session_id, [msg(str(round_))]) for session_id in ids))
    fresh = FileSessionStore(tmp_path)
    for session_id in ids:
        stored = await fresh.load(session_id)
        assert texts(stored.messages) == ["0", "1", "2", "3", "4", "5"]
        assert stored.metadata.message_count == 6
    assert len(await fresh.list()) == 40


async def test_appends_follow_a_writer_in_another_store_instance(tmp_path: Path) -> None:
    first, second = FileSessionStore(tmp_path), FileSessionStore(tmp_path)
    await first.save("s", [msg("a")])
    await first.append("s", [msg("b")])  # inline: first knows the file
    await second.append("s", [msg("c")])  # second has not read it: worker-thread path
    await first.append("s", [msg("d")])  # the file grew behind first's back: re-read, not clobbered
    await first.save("s", [msg("a"), msg("b"), msg("c"), msg("d"), msg("e")])  # new inode
    await second.append("s", [msg("f")])  # second's cached inode is stale: re-read
    stored = await FileSessionStore(tmp_path).load("s")
    assert texts(stored.messages) == ["a", "b", "c", "d", "e", "f"]


async def test_append_with_metadata_and_to_a_missing_session(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    await store.append("new", [msg("x")], {"label": "fresh"})
    await store.append("new", [msg("y")], {"label": None})
    stored = await store.load("new")
    assert texts(stored.messages) == ["x", "y"]
    assert stored.metadata.label is None
    updated = [stored.metadata.updated]
    await store.append("new", [])
    await store.append("new", [])
    for meta in await store.list():
        updated.append(meta.updated)
    assert updated == sorted(updated)
    assert (await store.load("new")).metadata.updated > updated[0]


def test_an_append_left_by_a_closed_loop_does_not_block_the_session(tmp_path: Path) -> None:
    """A durable append whose loop closed before it landed holds the session's lock with
    nobody left to land it; the next writer finds it and moves on, what was written kept."""
    store = FileSessionStore(tmp_path)
    run(store.save("s", [msg("a")]))

    loop = asyncio.new_event_loop()
    task = loop.create_task(store.append("s", [msg("b")]))  # never awaited
    loop.call_soon(loop.stop)
    loop.run_forever()  # one iteration: the append is written and handed to the sync thread
    loop.close()  # its outcome has nowhere to land
    assert not task.done()
    # the next save waits for the session's lock (in a daemon thread, so a regression fails
    # here instead of hanging the run), then rewrites
    saver = threading.Thread(target=store._save_sync, args=("s", [msg("a"), msg("b"), msg("c")], None, None))
    saver.daemon = True
    saver.start()
    saver.join(30)
    assert not saver.is_alive(), "the save still waits for the lock of the closed loop's append"
    assert texts(run(store.load("s")).messages) == ["a", "b", "c"]
    run(store.append("s", [msg("d")]))
    assert texts(run(FileSessionStore(tmp_path).load("s")).messages) == ["a", "b", "c", "d"]


@pytest.mark.parametrize("fsync", [True, False], ids=["fsync", "no-fsync"])
async def test_appends_without_flock(tmp_path: Path, fsync: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``flock`` (Windows) appends still take the loop's path and the worker thread's,
    and a file grown behind a store's back is re-read, never written over."""
    monkeypatch.setattr(file_locks, "fcntl", None)
    store, other = FileSessionStore(tmp_path, fsync=fsync), FileSessionStore(tmp_path, fsync=fsync)
    await store.save("s", [msg("a")])
    await store.append("s", [msg("b")])
    await other.append("s", [msg("c")])  # the file grew behind store's back
    await store.append("s", [msg("d")])  # not the file known: the worker-thread path
    await store.append("s", [msg("e")])
    assert texts((await FileSessionStore(tmp_path).load("s")).messages) == ["a", "b", "c", "d", "e"]


async def test_a_store_remembers_a_bounded_number_of_journals(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, cached_sessions=3)
    ids = [f"s{index}" for index in range(10)]
    for session_id in ids:
        await store.save(session_id, [msg("0")])
    assert len(store._journals) == 3
    for round_ in range(1, 5):  # in turn, each append finds its session forgotten: read first
        for session_id in ids:
            given = None if round_ % 2 else {"label": f"r{round_}"}
            await store.append(session_id, [msg(str(round_))], given)
        assert len(store._journals) == 3
    for session_id in ids[-4:]:  # the second auto-save of each is inline: stamped, no parsing
        await store.append(session_id, [])
        await store.append(session_id, [])
    assert [session_id for session_id in ids if session_id in store._journals] == ids[-3:]
    assert all(store._journals._entries[session_id].stamp is not None for session_id in ids[-3:])
    fresh = FileSessionStore(tmp_path)
    for session_id in ids:
        stored = await fresh.load(session_id)
        assert texts(stored.messages) == ["0", "1", "2", "3", "4"]
        assert (stored.metadata.message_count, stored.metadata.label) == (5, "r4")


async def test_a_compaction_that_fails_fails_no_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The appends are written when their compaction runs: a full disk then is logged, and
    the append succeeds (a caller retrying it would store its messages twice)."""
    import simulacra_session.stores.file.rewrite as file_module

    store = FileSessionStore(tmp_path)
    await store.save("s", [msg("0")])
    real = file_module.atomic_write

    def full_disk(path: str, data: bytes, fsync: bool = True, mode: int = 0o600) -> None:
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr(file_module, "atomic_write", full_disk)
    for index in range(1, 40):  # small appends: their metadata records soon outweigh the rest
        await store.append("s", [msg(str(index))])
    assert "could not compact" in caplog.text
    assert str(tmp_path / "s.jsonl") in caplog.text
    size = (tmp_path / "s.jsonl").stat().st_size
    monkeypatch.setattr(file_module, "atomic_write", real)
    await store.append("s", [msg("40")])  # compacted now
    assert (tmp_path / "s.jsonl").stat().st_size < size
    stored = await FileSessionStore(tmp_path).load("s")
    assert texts(stored.messages) == [str(index) for index in range(41)]


async def test_compaction_of_a_session_deleted_meanwhile_writes_nothing(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    await store.save("s", [msg("0")])
    os.unlink(tmp_path / "s.jsonl")
    store._compact("s")
    assert not (tmp_path / "s.jsonl").exists()


@pytest.mark.parametrize("fsync", [True, False])
async def test_a_file_that_reused_the_known_inode_at_the_known_size_is_read_first(
    tmp_path: Path, fsync: bool
) -> None:
    """ext4 hands a freed inode number out again at once, and an edit of equal length keeps
    the size: the record the journal ends with tells the files apart."""
    first = FileSessionStore(tmp_path)
    second = FileSessionStore(tmp_path, fsync=fsync)
    await first.save("s", [msg("hello")], {"label": "draft"})
    await second.load("s")
    known = os.stat(tmp_path / "s.jsonl")
    await first.save("s", [msg("HELLO")], {"label": "final"})  # a new file, the same size
    now = os.stat(tmp_path / "s.jsonl")
    assert now.st_size == known.st_size
    state = second._journals.get("s")
    assert state is not None
    state.inode = now.st_ino  # as when the number comes back
    await second.append("s", [msg("hi")])  # durable: checked by the sync thread; else inline
    stored = await FileSessionStore(tmp_path).load("s")
    assert texts(stored.messages) == ["HELLO", "hi"]
    assert stored.metadata.label == "final"


@pytest.mark.parametrize("fsync", [False, True], ids=["no-fsync", "durable"])
async def test_an_append_waits_for_a_writer_holding_the_sessions_lock(tmp_path: Path, fsync: bool) -> None:
    """While a worker thread holds a session's id lock (a rewrite, a compaction), an append
    on the event loop writes nothing there: it waits for the lock on the worker-thread path,
    and lands after the holder, on what the holder left."""
    store = FileSessionStore(tmp_path, fsync=fsync)
    await store.save("s", [msg("a")])
    await store.append("s", [msg("b")])  # known: the loop writes it
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store._locks.held("s"):
            held.set()
            release.wait()
            rewrite_session(store, "s", [msg("x"), msg("y"), msg("z")], None, mode="save")  # meanwhile

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    appended = asyncio.ensure_future(store.append("s", [msg("c")]))
    await asyncio.sleep(0.05)
    assert not appended.done()  # waits for the lock
    release.set()
    await appended
    holder.join()
    stored = await FileSessionStore(tmp_path).load("s")
    assert texts(stored.messages) == ["x", "y", "z", "c"]  # nothing written on the loop
    assert stored.metadata.message_count == 4


@pytest.mark.parametrize("fsync", [True, False], ids=["durable", "no-fsync"])
@pytest.mark.parametrize("operation", ["append-known", "append-unknown", "save", "delete"])
async def test_a_cancelled_write_is_complete_when_the_caller_hears_of_it(
    tmp_path: Path, fsync: bool, operation: str
) -> None:
    """A write that began is never left to land after ``CancelledError``: when the caller
    is told, the store holds the write, and nothing changes afterwards."""
    store = FileSessionStore(tmp_path, fsync=fsync)
    await store.save("s", [msg("a")])
    if operation == "append-unknown":
        store = FileSessionStore(tmp_path, fsync=fsync)  # knows no journal: the worker-thread path
    writes = {
        "append-known": lambda: store.append("s", [msg("b")]),
        "append-unknown": lambda: store.append("s", [msg("b")]),
        "save": lambda: store.save("s", [msg("a"), msg("b")]),
        "delete": lambda: store.delete("s"),
    }
    task = asyncio.ensure_future(writes[operation]())
    await asyncio.sleep(0)  # the write begins
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    expected = None if operation == "delete" else ["a", "b"]
    stored = await FileSessionStore(tmp_path).load("s")
    assert (None if stored is None else texts(stored.messages)) == expected
    await asyncio.sleep(0.2)  # were anything still running, it would land now
    stored = await FileSessionStore(tmp_path).load("s")
    assert (None if stored is None else texts(stored.messages)) == expected


async def test_a_write_cancelled_before_it_began_never_happens(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    await store.save("s", [msg("a")])
    task = asyncio.ensure_future(store.append("s", [msg("b")]))
    task.cancel()  # before its first step
    with pytest.raises(asyncio.CancelledError):
        await task
    assert texts((await FileSessionStore(tmp_path).load("s")).messages) == ["a"]
