"""Revisions between two views of one file store (as two processes have), in both formats, and
a manager whose write was cancelled in flight: it finds out whether the write landed before
its next one, instead of reporting a conflict with itself."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import ConflictError, FileSessionStore, SessionManager, SimpleConversation
from simulacra_session.stores.file import FileFormat
from simulacra_session.testing import msg, texts
from test_manager_failures import write_task


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
async def test_a_view_older_than_another_writers_save_is_refused(
    tmp_path: Path, file_format: FileFormat
) -> None:
    mine = FileSessionStore(tmp_path, format=file_format)
    theirs = FileSessionStore(tmp_path, format=file_format)
    base = await mine.save("s", [msg("a")])
    assert (await mine.load("s")).revision == base  # it knows the journal: appends on the event loop
    newer = await theirs.append("s", [msg("theirs")])
    with pytest.raises(ConflictError, match=f"session s changed.*{base}.*{newer}") as raised:
        await mine.append("s", [msg("mine")], expected=base)
    assert (raised.value.expected, raised.value.actual) == (base, newer)
    with pytest.raises(ConflictError):
        await mine.save("s", [msg("a"), msg("mine")], expected=base)
    assert texts((await FileSessionStore(tmp_path).load("s")).messages) == ["a", "theirs"]
    landed = await mine.append("s", [msg("mine")], expected=newer)
    stored = await FileSessionStore(tmp_path).load("s")
    assert (texts(stored.messages), stored.revision) == (["a", "theirs", "mine"], landed)
    assert await mine.append("s", [msg("again")], expected=landed) == (await mine.load("s")).revision


async def test_a_version_1_journal_is_checked_before_it_is_rewritten(tmp_path: Path) -> None:
    from test_journal_parse import to_v1

    store = FileSessionStore(tmp_path)
    await store.save("s", [msg("a")])
    path = tmp_path / "s.jsonl"
    path.write_bytes(to_v1(path.read_bytes()))
    loaded = (await FileSessionStore(tmp_path).load("s")).revision
    await FileSessionStore(tmp_path).append("s", [msg("theirs")])  # rewritten in version 2
    with pytest.raises(ConflictError):
        await FileSessionStore(tmp_path).append("s", [msg("mine")], expected=loaded)
    assert texts((await store.load("s")).messages) == ["a", "theirs"]


@pytest.mark.parametrize("waits", [0, 1, 2, 3])
async def test_a_write_cancelled_in_flight_is_not_a_conflict_with_itself(tmp_path: Path, waits: int) -> None:
    store = FileSessionStore(tmp_path)
    await store.save("s", [msg("seed")])
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    errors: list[Any] = []
    manager.on("lifecycle_error", errors.append)
    await manager.load("s")
    conversation.append(msg("a"))  # its auto-save is in flight
    for _ in range(waits):
        await asyncio.sleep(0)
    with suppress(ValueError):  # none left in flight: it landed already
        write_task("s").cancel()  # landed or not, the manager is not told which
    await manager.flush()  # written again, from the revision the store holds once it has checked
    conversation.append(msg("b"))
    await manager.flush()
    assert errors == []
    assert texts((await FileSessionStore(tmp_path).load("s")).messages) == ["seed", "a", "b"]
