"""The group-commit thread (``Committer``, ``CommitChannel``) on both backends, and the file
store's use of it: outcomes per descriptor through one readable descriptor, locks released
once durable, nothing leaked when a loop goes away, another way where a loop cannot watch."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import select
import threading
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from simulacra_session import FileSessionStore
from simulacra_session.stores.file import commit

posix = pytest.mark.skipif(os.name != "posix", reason="a channel needs a descriptor a loop can watch")


def _written(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"data\n")
    return fd


def _outcomes(channel: object, count: int) -> list[tuple[int, int]]:
    """Wait (in ``select``, as a loop would) until ``count`` outcomes arrived; them, in order."""
    got: list[tuple[int, int]] = []
    while len(got) < count:
        readable, _, _ = select.select([channel.fileno()], [], [], 30)  # type: ignore[attr-defined]
        assert readable, "no outcome within 30 s"
        got += channel.drain()  # type: ignore[attr-defined]
    return got


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as error:
        if error.errno == errno.EBADF:
            return False
        raise
    return True


@posix
def test_outcomes_arrive_per_descriptor_and_leave_it_open(hotpath: ModuleType, tmp_path: Path) -> None:
    committer, channel = hotpath.Committer(), hotpath.CommitChannel()
    fds = [_written(tmp_path / f"f{index}") for index in range(6)]
    try:
        closed = fds.pop()
        os.close(closed)
        for fd in [*fds, closed]:
            assert committer.submit(fd, channel)
        outcomes = _outcomes(channel, len(fds) + 1)
        assert sorted(outcomes) == sorted([(fd, 0) for fd in fds] + [(closed, errno.EBADF)])
        assert all(_is_open(fd) for fd in fds)  # the drainer closes them
        assert channel.drain() == []
        assert select.select([channel.fileno()], [], [], 0)[0] == []  # the signal was cleared
    finally:
        committer.stop()
        for fd in fds:
            os.close(fd)


@posix
def test_a_fault_of_the_pure_thread_fails_its_batch_and_it_serves_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled thread's twin of this is ``cargo test``'s (a panicking sync)."""
    from simulacra_session._pure import sync

    real, calls = sync.sync_files, []

    def faulty_once(fds: list[int]) -> list[int]:
        calls.append(fds)
        if len(calls) == 1:
            raise RuntimeError("the sync's own fault")
        return real(fds)

    monkeypatch.setattr(sync, "sync_files", faulty_once)
    committer, channel = sync.Committer(), sync.CommitChannel()
    fd = _written(tmp_path / "f")
    try:
        assert committer.submit(fd, channel)
        assert _outcomes(channel, 1) == [(fd, errno.EIO)]
        assert committer.submit(fd, channel)
        assert _outcomes(channel, 1) == [(fd, 0)]
    finally:
        committer.stop()
        os.close(fd)


@posix
def test_a_durable_descriptor_has_its_flock_released(hotpath: ModuleType, tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    committer, channel = hotpath.Committer(), hotpath.CommitChannel()
    fd = _written(tmp_path / "f")
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        committer.submit(fd, channel)
        assert _outcomes(channel, 1) == [(fd, 0)]
        other = os.open(tmp_path / "f", os.O_RDONLY)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free before the drainer closes fd
        finally:
            os.close(other)
    finally:
        committer.stop()
        os.close(fd)


@posix
def test_a_closed_channel_has_its_descriptors_closed(hotpath: ModuleType, tmp_path: Path) -> None:
    committer = hotpath.Committer()
    early, late = hotpath.CommitChannel(), hotpath.CommitChannel()
    delivered, pending = _written(tmp_path / "a"), _written(tmp_path / "b")
    committer.submit(delivered, early)
    select.select([early.fileno()], [], [], 30)
    early.close()  # delivered, never drained
    late.close()
    committer.submit(pending, late)  # delivered after its channel closed
    committer.stop()  # what was handed over is done when it returns
    assert not _is_open(delivered)
    assert not _is_open(pending)
    assert early.drain() == late.drain() == []


@posix
def test_a_stopped_committer_takes_nothing(hotpath: ModuleType, tmp_path: Path) -> None:
    committer, channel = hotpath.Committer(), hotpath.CommitChannel()
    committer.stop()  # never started
    fd = _written(tmp_path / "f")
    try:
        assert committer.submit(fd, channel) is False
        committer.stop()
        assert _is_open(fd)
    finally:
        os.close(fd)


@posix
def test_a_closed_channel_keeps_the_thread_serving_others(hotpath: ModuleType, tmp_path: Path) -> None:
    committer, closed, live = hotpath.Committer(), hotpath.CommitChannel(), hotpath.CommitChannel()
    closed.close()
    fd = _written(tmp_path / "f")
    try:
        committer.submit(-1, closed)  # closing it fails (EBADF): the thread carries on
        committer.submit(fd, live)
        assert _outcomes(live, 1) == [(fd, 0)]
    finally:
        committer.stop()
        os.close(fd)


@posix
def test_an_append_whose_hand_over_fails_leaves_nothing_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simulacra_session.stores.file import _COMMIT

    class Refusing:
        def submit(self, fd: int, channel: object) -> bool:
            raise OSError(errno.EAGAIN, "the group-commit thread cannot start")

    store = FileSessionStore(tmp_path)
    asyncio.run(store.save("s", [{"text": "a"}]))
    asyncio.run(store.append("s", [{"text": "b"}]))  # the journal known: the loop's path
    monkeypatch.setattr(_COMMIT, "_committer", Refusing())
    with pytest.raises(OSError, match="cannot start"):
        asyncio.run(store.append("s", [{"text": "c"}]))
    fcntl = pytest.importorskip("fcntl")
    other = os.open(tmp_path / "s.jsonl", os.O_RDONLY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the failed append's lock is gone
    finally:
        os.close(other)
    monkeypatch.undo()
    asyncio.run(FileSessionStore(tmp_path).append("s", [{"text": "d"}]))


class _LoopWithoutReaders(asyncio.SelectorEventLoop):
    """A loop that cannot watch a descriptor, as Windows' proactor loop."""

    def add_reader(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError


def _open_fds() -> set[str]:
    """This process's open descriptors (none where the system lists none)."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(listing):
            return set(os.listdir(listing))
    return set()


def test_a_loop_that_cannot_watch_syncs_in_its_executor(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    loop = _LoopWithoutReaders()
    try:
        loop.run_until_complete(store.save("s", [{"text": "a"}]))
        before = _open_fds()
        for text in "bcd":
            loop.run_until_complete(store.append("s", [{"text": text}]))
        assert _open_fds() <= before  # each descriptor closed once durable
        stored = loop.run_until_complete(store.load("s"))
        assert stored is not None
        assert [message["text"] for message in stored.messages] == list("abcd")
    finally:
        loop.close()


def _handed_over(
    store: FileSessionStore, text: str
) -> tuple[asyncio.AbstractEventLoop, asyncio.Task[object]]:
    """A new loop, run for one iteration: an append to ``s`` written and handed over, its
    outcome not drained yet."""
    loop = asyncio.new_event_loop()
    task: asyncio.Task[Any] = loop.create_task(store.append("s", [{"text": text}]))
    loop.call_soon(loop.stop)
    loop.run_forever()
    return loop, task


def _channel_of(loop: asyncio.AbstractEventLoop) -> commit._LoopJobs:
    from simulacra_session.stores.file import _COMMIT

    return _COMMIT._loops[id(loop)]


@posix
def test_an_append_whose_loop_is_gone_leaves_nothing_open(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    asyncio.run(store.save("s", [{"text": "a"}]))
    before = _open_fds()
    loop, task = _handed_over(store, "b")
    assert select.select([_channel_of(loop).channel.fileno()], [], [], 30)[0]  # durable, never drained
    loop.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Task was destroyed but it is pending"
        del loop, task
        gc.collect()
    assert _open_fds() <= before  # the journal's descriptor and the channel's, closed
    asyncio.run(store.append("s", [{"text": "c"}]))
    stored = asyncio.run(FileSessionStore(tmp_path).load("s"))
    assert stored is not None
    assert [message["text"] for message in stored.messages] == list("abc")


@posix
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_closes_its_copies_of_the_parents_jobs(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    asyncio.run(store.save("s", [{"text": "a"}]))
    loop, task = _handed_over(store, "b")
    try:
        waiting = list(_channel_of(loop).waiting)
        assert waiting
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
            pid = os.fork()
        if pid == 0:
            os._exit(0 if not any(_is_open(fd) for fd in waiting) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        loop.run_until_complete(task)
        assert not any(_is_open(fd) for fd in waiting)
    finally:
        loop.close()


def _sync_threads() -> int:
    """Group-commit threads alive: Python ones by name, native ones by the kernel's name."""
    named = sum(thread.name == "simulacra-session sync" for thread in threading.enumerate())
    comms = [Path(f"/proc/self/task/{tid}/comm") for tid in os.listdir("/proc/self/task")]
    return named + sum(_name_of(comm).startswith("simulacra-sessi") for comm in comms)


def _name_of(comm: Path) -> str:
    """A thread's kernel name; none for one that ended since its directory was listed (the
    ending this test waits for: reading it then failed with FileNotFoundError)."""
    try:
        return comm.read_text()
    except FileNotFoundError:
        return ""


@posix
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="threads are counted through /proc")
def test_a_dropped_committer_ends_its_thread(hotpath: ModuleType, tmp_path: Path) -> None:
    before = _sync_threads()
    committer, channel = hotpath.Committer(), hotpath.CommitChannel()
    fd = _written(tmp_path / "f")
    try:
        committer.submit(fd, channel)
        assert _outcomes(channel, 1) == [(fd, 0)]
        assert _sync_threads() == before + 1
        del committer
        gc.collect()
        deadline = time.monotonic() + 30
        while _sync_threads() > before and time.monotonic() < deadline:
            time.sleep(0.01)  # the test waits for the thread to end; the library never polls
        assert _sync_threads() == before
    finally:
        os.close(fd)
