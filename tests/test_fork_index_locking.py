"""The fork index's directory locks under races (``stores.file.index``): an index directory a
writer holds stays the one its name leads to, whatever other processes' deletes remove."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from simulacra_session._beneath import Dir
from simulacra_session.doctor import check_store
from simulacra_session.stores.file import FileSessionStore
from simulacra_session.stores.file.index import ForkIndex
from simulacra_session.testing import msg

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]


def settled_or_waiting(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """An event set once a blocking ``flock`` finds its lock held by another (the call then
    waits as asked); the test sets it too when the work it watches ends. Where one thread
    runs while the others are paused holding their locks, it tells at once what a fixed
    wait ("done at once unless it waits for a lock") found only at its timeout: a lock
    waited for is held until the paused thread goes on. Locks taken in the extension (an
    index linker's), or on Windows (no ``flock``), go unseen: the test's timeout still ends
    the wait there."""
    known = threading.Event()
    if fcntl is None:
        return known
    flock = fcntl.flock

    def watched(fd: int, operation: int) -> None:
        if not operation & (fcntl.LOCK_NB | fcntl.LOCK_UN):
            try:
                return flock(fd, operation | fcntl.LOCK_NB)
            except BlockingIOError:
                known.set()
        return flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", watched)
    return known


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
async def test_a_late_remove_empty_leaves_the_index_a_writer_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_format: str
) -> None:
    """Two deletes of ``p`` each remove its emptied index: the late one, having opened the
    directory the first removed, locks that one, and must not remove the index a writer of
    a fork made again meanwhile and holds (it removed it by name: the fork's check then
    found no index while its writer held one, and its link went to yet another)."""
    store = FileSessionStore(tmp_path, format=file_format)  # type: ignore[arg-type]
    await store.save("p", [msg("p")])
    await store.save("f", [msg("f")], {"parent_id": "p"})
    await store.delete("f")
    assert (tmp_path / "p-forks").is_dir()  # emptied, still there: p's delete removes it
    opened, go_on = threading.Event(), threading.Event()
    lock = Dir.lock

    def paused(self: Dir, exclusive: bool, *, wait: bool = True) -> bool:
        if threading.current_thread().name == "late":  # between its open and its lock
            opened.set()
            go_on.wait()
        return lock(self, exclusive, wait=wait)

    monkeypatch.setattr(Dir, "lock", paused)
    late = threading.Thread(target=store._index.remove_empty, args=("p",), name="late")
    late.start()
    opened.wait()
    store._index.remove_empty("p")  # the first delete's
    assert not (tmp_path / "p-forks").exists()
    with store._index.held("p"):  # a writer of a fork of p, before its write
        made = (tmp_path / "p-forks").stat().st_ino
        go_on.set()
        late.join()
        assert (tmp_path / "p-forks").stat().st_ino == made


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_two_processes_moving_a_fork_leave_it_indexed_under_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_format: str
) -> None:
    """A move of fork ``f`` from ``b`` to ``a`` written but not yet indexed, and another
    process's move of it back to ``b`` meanwhile: the first one's indexing, once it goes on,
    must not unlink the second's entry under ``b`` and link the second's file under ``a``
    (its file's lock was let go before its indexing: ``forks('b')`` then missed ``f``)."""
    first = FileSessionStore(tmp_path, format=file_format)  # type: ignore[arg-type]
    other = FileSessionStore(tmp_path, format=file_format)  # another process's: its own id locks
    for parent in ("a", "b"):
        first._save_sync(parent, [msg(parent)], None, None)
    first._save_sync("f", [msg("f")], {"parent_id": "b"}, None)
    written, go_on = threading.Event(), threading.Event()
    index = ForkIndex.index

    def paused(self: ForkIndex, session_id: str, *args: Any) -> None:
        if threading.current_thread().name == "first":  # between its write and its indexing
            written.set()
            go_on.wait()
        index(self, session_id, *args)

    monkeypatch.setattr(ForkIndex, "index", paused)
    settled = settled_or_waiting(monkeypatch)

    def move_back() -> None:
        try:
            other._save_sync("f", [msg("to b")], {"parent_id": "b"}, None)
        finally:
            settled.set()

    moving = threading.Thread(
        target=first._save_sync, args=("f", [msg("to a")], {"parent_id": "a"}, None), name="first"
    )
    moving.start()
    written.wait()
    settled.clear()  # only the move back runs now
    back = threading.Thread(target=move_back)
    back.start()
    # done at once while the first move's file lock was let go before its indexing; else it
    # waits for that lock, held until the first move goes on
    settled.wait(5)
    go_on.set()
    moving.join()
    back.join()
    assert sorted(os.listdir(tmp_path / "b-forks")) == [f"f.{file_format}"]
    assert os.listdir(tmp_path / "a-forks") == []
    assert [fork.id for fork in asyncio.run(first.forks("b"))] == ["f"]


def test_a_check_beside_an_append_moving_a_fork_names_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append that moves a journal fork to another parent writes, then re-points the fork
    index: a check of another store (as another process) between the two named its entry
    stale under the former parent and missing under the new one. The append holds both
    indexes from its write until it is indexed, as a rewrite does, so the check waits."""
    store = FileSessionStore(tmp_path)
    for parent in ("a", "b"):
        asyncio.run(store.save(parent, [msg(parent)]))
    asyncio.run(store.save("f", [msg(f"f{i}") for i in range(50)], {"parent_id": "a"}))  # no compaction
    reports: list[list[Any]] = []

    def check() -> None:
        reports.append(asyncio.run(check_store(FileSessionStore(tmp_path), repair=False)).problems)

    index = ForkIndex.index
    settled = settled_or_waiting(monkeypatch)

    def check_then_settle() -> None:
        try:
            check()
        finally:
            settled.set()

    checking = threading.Thread(target=check_then_settle)

    def checked_first(self: ForkIndex, *args: Any) -> None:
        settled.clear()  # only the check runs now: the append waits here
        checking.start()
        settled.wait(timeout=2)  # done at once where nothing holds the indexes; else it waits for them
        index(self, *args)

    monkeypatch.setattr(ForkIndex, "index", checked_first)
    asyncio.run(store.append("f", [msg("moved")], {"parent_id": "b"}))
    checking.join()
    assert reports == [[]]
    monkeypatch.undo()
    assert asyncio.run(check_store(store, repair=False)).problems == []
