"""The group-commit thread's hand-back to event loops: mailboxes, their wake-ups, polling."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import BACKEND, FileSessionStore, SessionManager, SimpleConversation, _fallback_sync
from simulacra_session.stores import _syncer
from simulacra_session.stores.file import _SYNCER


def msg(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def post() -> Any:
    return _SYNCER._posts[asyncio.get_running_loop()]


async def test_an_awaited_append_is_watched_for_and_a_background_one_wakes_the_loop(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    conversation = SimpleConversation()
    async with SessionManager(store, conversation) as manager:
        manager.start_new()
        conversation.append(msg("first"))
        await manager.flush()  # the first save writes the file; appends follow
        saved = asyncio.Event()
        manager.on("save", lambda *_: saved.set())
        conversation.append(msg("background"))  # an auto-save in flight, nobody waiting
        mailbox = post()
        assert mailbox.waiting == 1
        assert not mailbox.polling  # a background save does not spin the loop
        await asyncio.wait_for(saved.wait(), 30)  # no timer due: only the eventfd wakes the loop
        assert mailbox.waiting == 0
        conversation.append(msg("awaited"))
        flushed = asyncio.ensure_future(manager.flush())
        await asyncio.sleep(0)  # flush() has begun waiting
        assert mailbox.polling == (BACKEND == "native")  # the pure thread would need the GIL
        await flushed
        assert mailbox.waiting == 0
        await asyncio.sleep(0)
        assert not mailbox.polling  # nothing due: back to sleeping in the selector
    stored = await FileSessionStore(tmp_path).load(manager.current_session_id or "")
    assert stored is not None
    assert [m["content"][0]["text"] for m in stored.messages] == ["first", "background", "awaited"]


async def test_a_direct_append_is_watched_for(tmp_path: Path, monkeypatch: Any) -> None:
    store = FileSessionStore(tmp_path)
    await store.save("s", [msg("a")])
    seen: list[bool] = []
    expedite = _syncer._Post.expedite

    def spy(self: Any, core: Any) -> None:
        expedite(self, core)
        seen.append(self.polling)

    monkeypatch.setattr(_syncer._Post, "expedite", spy)
    await store.append("s", [msg("b")])
    assert seen == [BACKEND == "native"]
    assert post().waiting == 0


def test_each_loop_gets_its_own_mailbox_and_a_closed_ones_is_swept(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    seen = []

    async def save(text: str) -> None:
        await store.save("s", [msg("first")])  # a journal the store knows: appends take the syncer
        await store.append("s", [msg(text)])
        seen.append(post())

    asyncio.run(save("a"))
    first = seen[0]
    assert not first.closed
    asyncio.run(save("b"))  # a new loop opens a mailbox and closes the closed loop's
    assert first.closed
    assert seen[1] is not first
    assert list(_SYNCER._posts.values()) == [seen[1]]


@pytest.mark.parametrize(
    ("release", "trusted"),
    [
        ("6.18.44-fc-v1045", True),
        ("5.8.0", True),
        ("5.15.0-91-generic", True),
        ("10.0", True),
        ("5.7.19", False),
        ("5.4.0-150-generic", False),
        ("4.19.0-26-amd64", False),
        ("5", False),
        ("", False),
        ("garbage", False),
    ],
)
def test_syncfs_is_trusted_from_linux_5_8(release: str, trusted: bool) -> None:
    """Before 5.8, syncfs returned 0 when writeback failed: batches then sync file by file.
    (The compiled twin's ``release_reports_syncfs_errors`` has the same table in cargo test.)"""
    assert _fallback_sync._syncfs_reports_errors(release) is trusted


def test_a_mailbox_never_writes_its_descriptor_once_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """After ``close`` the owner closes the descriptor, and its number may go to a journal:
    a post still on its way must have written before ``close`` returns. (The pure twin;
    the compiled one writes under its lock the same way, in ``mailbox.rs``.)"""
    read_fd, write_fd = os.pipe()
    box = _fallback_sync.Mailbox(write_fd)
    writing, release = threading.Event(), threading.Event()
    order: list[str] = []
    real_write = os.write

    def slow_write(fd: int, data: bytes) -> int:
        if fd == write_fd:  # the poster, stalled between deciding to wake and waking
            writing.set()
            release.wait(5)
            order.append("woke")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", slow_write)
    poster = threading.Thread(target=box._post, args=([("token", 0, True)],))
    poster.start()
    assert writing.wait(5)
    closer = threading.Thread(target=lambda: order.append(f"closed with {len(box.close())}"))
    closer.start()
    closer.join(0.05)
    release.set()
    poster.join()
    closer.join()
    os.close(read_fd)
    os.close(write_fd)
    assert order == ["woke", "closed with 1"]


def test_each_file_system_gets_its_own_syncfs_and_small_groups_a_sync_each() -> None:
    """The stores of one process may live on several disks: a ``syncfs`` of one leaves the
    others' files unsynced. (The compiled twin's ``sync_grouped`` has the same case.)"""
    fds = [10, 11, 20, 12, 13, 21, 30, 31, 32, 33]
    devices: list[int | None] = [1, 1, 2, 1, 1, 2, None, 3, 3, 3]
    whole: list[int] = []
    single: list[int] = []

    def syncfs(fd: int) -> bool:
        whole.append(fd)
        return True

    def sync(fd: int) -> int:
        single.append(fd)
        return errno.EIO if fd == 21 else 0

    errnos = _fallback_sync._sync_grouped(fds, devices, syncfs, sync)
    assert whole == [10]  # device 1 has four; 2 and 3 too few; None alone
    assert sorted(single) == [20, 21, 30, 31, 32, 33]
    assert errnos == [0, 0, 0, 0, 0, errno.EIO, 0, 0, 0, 0]
    single.clear()
    assert _fallback_sync._sync_grouped(fds[:5], devices[:5], lambda fd: False, sync) == [0] * 5
    assert len(single) == 5  # a failed syncfs: each file of that file system synced instead


def test_a_batch_across_file_systems_is_made_durable_on_each(tmp_path: Path) -> None:
    """Real descriptors on the test's disk and on /dev/shm (tmpfs) where there is one."""
    directories = [tmp_path] + ([Path("/dev/shm")] if os.path.isdir("/dev/shm") else [])
    fds = []
    for index in range(10):
        path = directories[index % len(directories)] / f"simulacra-sync-{os.getpid()}-{index}"
        fds.append(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.write(fds[-1], b"x")
        os.unlink(path)
    try:
        assert _fallback_sync._sync_all(fds) == [0] * 10
        assert _fallback_sync._sync_all([*fds, -1]) == [0] * 10 + [errno.EBADF]
    finally:
        for fd in fds:
            os.close(fd)
