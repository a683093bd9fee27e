"""One auto-save: ``message_complete`` to durable on disk, at each conversation length."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import FileSessionStore, SessionManager, SimpleConversation

from corpus import LENGTHS, conversation


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
    messages = conversation(length + 1)
    conv = SimpleConversation()
    manager = SessionManager(FileSessionStore(tmp_path, fsync=fsync), conv)

    async def prepare() -> str:
        session_id = manager.start_new()
        conv.load(messages[:length])
        await manager.save()
        return session_id

    session_id = loop.run_until_complete(prepare())

    def rewind() -> None:
        conv.load(messages[:length])

    async def one_message() -> None:
        conv.append(messages[length])
        await manager.flush()

    benchmark.group = f"auto-save at {length} messages"
    benchmark.pedantic(
        lambda: loop.run_until_complete(one_message()), setup=rewind, rounds=60 if length < 1000 else 25
    )
    stored = loop.run_until_complete(manager.store.load(session_id))
    assert stored is not None
    assert len(stored.messages) == length + 1
