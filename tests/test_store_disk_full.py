"""A full disk, a real one (a 512 KiB tmpfs mounted for each test): a write that does not fit
raises the disk's ``OSError`` (``ENOSPC``) and leaves the session as it was, with no temp
file; every write acknowledged before it loads; once space is freed the store and the
manager go on, losing nothing (the manager's auto-saves that did not fit included). SQLite
through the SQL store too.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulacra_session import (
    FileSessionStore,
    LifecycleErrorEvent,
    SessionManager,
    SimpleConversation,
    StoreError,
)
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, texts
from test_store_residue import residue

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="mounts a tmpfs")

FORMATS = ["jsonl", "json"]
BIG = "x" * 3000  # a message's text: a few fill the disk


@pytest.fixture
def disk() -> Iterator[Path]:
    """A fresh 512 KiB tmpfs, outside pytest's temp directories; unmounted afterwards."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("mounting a small disk needs root, under CI too")
        pytest.skip("mounting a small disk needs root")
    where = Path(tempfile.mkdtemp(prefix="simulacra-full-"))
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", where], check=True, timeout=60)
        try:
            yield where
        finally:
            subprocess.run(["umount", where], check=True, timeout=60)
    finally:
        where.rmdir()


def fill(disk: Path) -> Path:
    """A file taking every byte left on ``disk``."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="No space left"):  # noqa: PT012  # until it is full
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


def stored(root: Path, session_id: str) -> list[str]:
    """The session's messages as a new store (another process) loads them."""
    loaded = asyncio.run(FileSessionStore(root).load(session_id))
    assert loaded is not None
    return texts(loaded.messages)


@pytest.mark.parametrize("file_format", FORMATS)
def test_appends_until_the_disk_is_full_lose_nothing_acknowledged(disk: Path, file_format: str) -> None:
    root = disk / "sessions"
    store = FileSessionStore(root, format=file_format)  # type: ignore[arg-type]
    asyncio.run(store.save("ballast", [msg(BIG * 10)]))
    asyncio.run(store.save("s", [msg("0")]))
    acknowledged = ["0"]
    with pytest.raises(OSError, match="No space left") as raised:  # noqa: PT012  # until it is full
        for n in range(1, 1000):
            asyncio.run(store.append("s", [msg(f"{n}{BIG}")]))
            acknowledged.append(f"{n}{BIG}")
    assert raised.value.errno == errno.ENOSPC
    assert len(acknowledged) > 1
    assert residue(root) == []
    assert stored(root, "s") == acknowledged
    assert asyncio.run(store.delete("ballast"))  # room again
    asyncio.run(store.append("s", [msg("after")]))
    assert stored(root, "s") == [*acknowledged, "after"]
    assert stored(root, "s") == texts(asyncio.run(store.load("s")).messages)  # type: ignore[union-attr]


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_save_that_does_not_fit_leaves_every_session_as_it_was(disk: Path, file_format: str) -> None:
    root = disk / "sessions"
    store = FileSessionStore(root, format=file_format)  # type: ignore[arg-type]
    asyncio.run(store.save("p", [msg("p")]))
    asyncio.run(store.save("s", [msg("s")], {"parent_id": "p", "fork_message_count": 1}))
    files = {path.name: path.read_bytes() for path in root.iterdir() if path.is_file()}
    filler = fill(disk)
    for session_id, metadata in (("s", None), ("new", None), ("fork", {"parent_id": "p"})):
        with pytest.raises(OSError, match="No space left") as raised:
            asyncio.run(store.save(session_id, [msg(BIG)], metadata))
        assert raised.value.errno == errno.ENOSPC, session_id
    assert {path.name: path.read_bytes() for path in root.iterdir() if path.is_file()} == files
    assert residue(root) == []
    assert sorted(m.id for m in asyncio.run(FileSessionStore(root).list())) == ["p", "s"]
    assert [m.id for m in asyncio.run(FileSessionStore(root).forks("p"))] == ["s"]
    filler.unlink()
    asyncio.run(store.save("fork", [msg(BIG)], {"parent_id": "p"}))
    assert sorted(m.id for m in asyncio.run(FileSessionStore(root).forks("p"))) == ["fork", "s"]


def test_the_managers_auto_saves_that_did_not_fit_are_written_once_there_is_room(disk: Path) -> None:
    async def main() -> str:
        conversation = SimpleConversation()
        manager = SessionManager(FileSessionStore(disk / "sessions"), conversation)
        errors: list[LifecycleErrorEvent] = []
        manager.on("lifecycle_error", errors.append)
        session_id = manager.start_new("full")
        conversation.append(msg("before"))
        await manager.flush()
        filler = fill(disk)
        conversation.append(msg(f"1{BIG}"))
        await manager.flush()
        conversation.append(msg(f"2{BIG}"))
        await manager.flush()
        assert errors
        assert all(isinstance(e.error, OSError) and e.error.errno == errno.ENOSPC for e in errors)
        filler.unlink()
        conversation.append(msg("after"))
        await manager.flush()
        manager.dispose()
        return session_id

    session_id = asyncio.run(main())
    assert stored(disk / "sessions", session_id) == ["before", f"1{BIG}", f"2{BIG}", "after"]
    assert residue(disk / "sessions") == []


def test_sqlite_appends_until_the_disk_is_full_lose_nothing_acknowledged(disk: Path) -> None:
    # the SQL store on SQLite: a commit that does not fit is rolled back and raised as a
    # StoreError naming the session and the table; the database goes on once there is room
    ballast = disk / "ballast"
    ballast.write_bytes(bytes(128 * 1024))
    url = f"sqlite:///{disk}/sessions.db"

    async def fill_up() -> list[str]:
        acknowledged = ["0"]
        async with SqlSessionStore(url) as store:
            await store.save("s", [msg("0")])
            with pytest.raises(StoreError) as raised:  # noqa: PT012  # until it is full
                for n in range(1, 1000):
                    await store.append("s", [msg(f"{n}{BIG}")])
                    acknowledged.append(f"{n}{BIG}")
            why = str(raised.value)
            assert "'s'" in why
            assert "simulacra_sessions" in why
            assert "full" in why
            ballast.unlink()  # room again
            await store.append("s", [msg("after")])
        return [*acknowledged, "after"]

    async def load() -> list[str]:
        async with SqlSessionStore(url, create=False) as store:
            loaded = await store.load("s")
        assert loaded is not None
        return texts(loaded.messages)

    acknowledged = asyncio.run(fill_up())
    assert len(acknowledged) > 2
    assert asyncio.run(load()) == acknowledged
