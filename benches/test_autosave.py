"""One auto-save (``message_complete`` to durable on disk) at each conversation length.

The conversation grows by one message per round, from the named length on; beside it, the
floor: appending one ~1.5 KB line to a file and fdatasyncing it, on the same disk.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import FileSessionStore, SessionManager, SimpleConversation

from corpus import LENGTHS, conversation
from peers import OriginalFileStore

ROUNDS = 50


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize("fsync", [True, False], ids=["durable", "no-fsync"])
@pytest.mark.parametrize("length", LENGTHS)
def test_autosave(
    benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path, length: int, fsync: bool
) -> None:
    messages = conversation(length + ROUNDS + 1)
    conv = SimpleConversation()
    manager = SessionManager(FileSessionStore(tmp_path, fsync=fsync), conv)

    async def prepare() -> str:
        session_id = manager.start_new()
        conv.load(messages[:length])
        await manager.save(full=True)
        return session_id

    session_id = loop.run_until_complete(prepare())
    upcoming = iter(messages[length:])

    async def one_message() -> None:
        conv.append(next(upcoming))
        await manager.flush()

    benchmark.group = "auto-save (durable)" if fsync else "auto-save (no fsync)"
    benchmark.extra_info["messages"] = length
    benchmark.pedantic(lambda: loop.run_until_complete(one_message()), rounds=ROUNDS, warmup_rounds=1)
    stored = loop.run_until_complete(manager.store.load(session_id))
    assert stored is not None
    assert len(stored.messages) == length + ROUNDS + 1


@pytest.mark.parametrize("fsync", [True, False], ids=["durable", "no-fsync"])
def test_floor_append_line(benchmark: Any, tmp_path: Path, fsync: bool) -> None:
    """The floor for a durable auto-save: one ~1.5 KB line appended and fdatasynced."""
    line = b'{"role":"user","content":"' + b"x" * 1500 + b'"}\n'
    fd = os.open(tmp_path / "floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append() -> None:
        os.write(fd, line)
        if fsync:
            os.fdatasync(fd)

    benchmark.group = "auto-save (durable)" if fsync else "auto-save (no fsync)"
    benchmark.pedantic(append, rounds=ROUNDS * 4, warmup_rounds=1)
    os.close(fd)
    assert (tmp_path / "floor.jsonl").stat().st_size == len(line) * (ROUNDS * 4 + 1)


@pytest.mark.parametrize("length", LENGTHS)
def test_original_library_save(
    benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path, length: int
) -> None:
    """The original library's auto-save (a whole-file rewrite), ported line for line."""
    messages = conversation(length + ROUNDS + 1)
    store = OriginalFileStore(str(tmp_path))
    loop.run_until_complete(store.save("s", messages[:length]))
    grown = iter(range(length + 1, length + ROUNDS + 2))

    benchmark.group = "auto-save (no fsync)"
    benchmark.extra_info["messages"] = length
    benchmark.pedantic(
        lambda: loop.run_until_complete(store.save("s", messages[: next(grown)])),
        rounds=ROUNDS,
        warmup_rounds=1,
    )
