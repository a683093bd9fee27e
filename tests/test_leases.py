"""Leases: a journal appended to stays open and locked 250 ms, so the next append is a write.

What must hold: the lease keeps the journal's ``flock`` (so an in-memory check is enough),
it goes after 250 idle ms, this process's blocking writers never wait for it, a writer in
another process waits for it that long once the holder idles and loses nothing, and a
forked child never keeps its parent's journals locked.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import pytest

from simulacra_session import FileSessionStore, _fallback
from simulacra_session.stores.file import _SYNCER

try:
    from simulacra_session import _native
except ImportError:  # a source checkout without the extension: the twin alone
    TWINS: list[ModuleType] = [_fallback]
else:
    TWINS = [_native, _fallback]

pytestmark = pytest.mark.skipif(os.name != "posix", reason="leases are POSIX flocks")


def message(**fields: object) -> dict[str, object]:
    """A message that outweighs its metadata record: appending it leaves nothing to compact
    (a compaction rewrites the journal, a new file without a lease)."""
    return {**fields, "text": "x" * 2000}


def lockable(path: Path) -> bool:
    """Whether another open file description could lock the file now."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases the lock taken, if any
    return True


@pytest.mark.parametrize("twin", TWINS, ids=lambda twin: twin.__name__.rsplit(".", 1)[-1])
def test_a_lease_holds_the_lock_until_250_idle_ms_have_passed(tmp_path: Path, twin: ModuleType) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"head\n")
    syncer = twin.FileSyncer(lambda outcomes: None)
    try:
        assert syncer.append_now(path, path.stat().st_ino, 5, b"head\n", b"[1]\n") == (0, True)
        taken = time.monotonic()
        assert not lockable(path)
        while not lockable(path):  # the sync thread lets it go
            assert time.monotonic() - taken < 5, "the lease outlived its idle time by far"
            time.sleep(0.05)
        assert time.monotonic() - taken >= 0.2
    finally:
        syncer.stop()
    assert path.read_bytes() == b"head\n[1]\n"


@pytest.mark.parametrize("twin", TWINS, ids=lambda twin: twin.__name__.rsplit(".", 1)[-1])
def test_a_durable_append_is_leased_too_and_stop_lets_every_lease_go(
    tmp_path: Path, twin: ModuleType
) -> None:
    paths = [tmp_path / f"s{index}.jsonl" for index in range(3)]
    landed: list[tuple[object, int, bool]] = []
    syncer = twin.FileSyncer(landed.extend)
    for token, path in enumerate(paths):
        path.write_bytes(b"head\n")
        syncer.append(path, path.stat().st_ino, 5, b"head\n", b"[1]\n", token)
    deadline = time.monotonic() + 5
    while len(landed) < len(paths):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert sorted(landed) == [(token, 0, True) for token in range(3)]
    assert not any(lockable(path) for path in paths)
    syncer.stop()
    assert all(lockable(path) for path in paths)


def test_this_processs_blocking_writers_do_not_wait_for_its_lease(tmp_path: Path) -> None:
    async def scenario() -> None:
        store, other = FileSessionStore(tmp_path, fsync=False), FileSessionStore(tmp_path, fsync=False)
        await store.save("s", [message(n=0)])
        await store.append("s", [message(n=1)])  # the task-free path: leased now
        assert not lockable(tmp_path / "s.jsonl")
        started = time.monotonic()
        await other.append("s", [message(n=2)])  # another store's state: the blocking path
        await store.save("s", [message(n=3)], {"label": "rewritten"})  # a rewrite
        stored = await other.load("s")
        assert stored is not None
        assert stored.messages == [message(n=3)]
        assert await store.delete("s")
        assert time.monotonic() - started < 0.5, "a blocking writer waited for this process's lease"
        assert not (tmp_path / "s.jsonl").exists()

    asyncio.run(scenario())


WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from simulacra_session import FileSessionStore

    async def main():
        started = time.monotonic()
        await FileSessionStore(sys.argv[1], fsync=False).append("s", [{"from": "child", "text": "x" * 2000}])
        print(time.monotonic() - started)

    asyncio.run(main())
    """
)


def test_a_writer_in_another_process_waits_only_for_the_lease_to_idle(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = FileSessionStore(tmp_path, fsync=False)
        await store.save("s", [message(n=0)])
        await store.append("s", [message(n=1)])  # leased
        assert not lockable(tmp_path / "s.jsonl")
        child = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", WRITER, str(tmp_path)], capture_output=True, timeout=60
        )
        assert child.returncode == 0, child.stderr.decode()
        assert float(child.stdout) < 3, "the child waited well past the lease's idle time"
        await store.append("s", [message(n=2)])  # the child's append is found first
        stored = await FileSessionStore(tmp_path).load("s")
        assert stored is not None
        assert stored.messages == [message(n=0), message(n=1), message(**{"from": "child"}), message(n=2)]

    asyncio.run(scenario())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_keep_its_parents_journals_locked(tmp_path: Path) -> None:
    async def lease() -> Path:
        store = FileSessionStore(tmp_path, fsync=False)
        await store.save("s", [message(n=0)])
        await store.append("s", [message(n=1)])
        return tmp_path / "s.jsonl"

    path = asyncio.run(lease())
    assert not lockable(path)
    ready, started = os.pipe()
    child = os.fork()
    if child == 0:  # the child (its fork handlers have run): outlive the parent's look
        os.write(started, b"x")
        time.sleep(1.5)
        os._exit(0)
    try:
        assert os.read(ready, 1) == b"x"
        _SYNCER.release(str(path))  # the parent lets go: only a child's copy could hold it now
        assert lockable(path)
    finally:
        os.waitpid(child, 0)
        os.close(ready)
        os.close(started)


def test_two_stores_of_one_process_never_write_over_each_other(tmp_path: Path) -> None:
    """Both know the journal's state; one appends through the lease: the other's append,
    expecting the state before, is refused by the lease and lands through the blocking path."""

    async def scenario() -> None:
        first, second = FileSessionStore(tmp_path, fsync=False), FileSessionStore(tmp_path, fsync=False)
        await first.save("s", [message(n=0)])
        assert await second.load("s") is not None  # the second store knows the journal too
        await first.append("s", [message(n=1)])  # leased, the end moved on
        await second.append("s", [message(n=2)])  # expects the end before: not through the lease
        await first.append("s", [message(n=3)])
        stored = await FileSessionStore(tmp_path).load("s")
        assert stored is not None
        assert stored.messages == [message(n=n) for n in range(4)]

    asyncio.run(scenario())


BOUNDED = textwrap.dedent(
    """
    import asyncio, os, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (40, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    from simulacra_session import FileSessionStore

    async def main():
        store = FileSessionStore(sys.argv[1], fsync=sys.argv[2] == "durable")
        for n in range(30):
            await store.save(f"s{n}", [{"n": 0, "text": "x" * 2000}])
        await store.append("s0", [{"n": 1, "text": "x" * 2000}])  # the loop's mailbox opens
        before = len(os.listdir("/proc/self/fd"))  # one lease held
        for round in range(1, 3):
            for n in range(1 if round == 1 else 0, 30):
                await store.append(f"s{n}", [{"n": round, "text": "x" * 2000}])
        print(len(os.listdir("/proc/self/fd")) - before)

    asyncio.run(main())
    """
)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
@pytest.mark.parametrize("fsync", ["durable", "no-fsync"])
def test_leases_stay_within_a_quarter_of_the_descriptor_limit(tmp_path: Path, fsync: str) -> None:
    """With a limit of 40 descriptors, 30 sessions appended to in turn hold at most 10 leases."""
    child = subprocess.run(
        [sys.executable, "-c", BOUNDED, str(tmp_path), fsync], capture_output=True, timeout=120
    )
    assert child.returncode == 0, child.stderr.decode()
    assert int(child.stdout) <= 10
    for n in range(30):
        stored = asyncio.run(FileSessionStore(tmp_path).load(f"s{n}"))
        assert stored is not None
        assert [m["n"] for m in stored.messages] == [0, 1, 2]
