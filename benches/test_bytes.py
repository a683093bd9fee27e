"""Bytes written over one conversation saved after every message, to 1000 messages.

The original library rewrites the whole session on each save, so what it writes grows with
the square of the conversation's length; a journal appends each message once (plus a commit
record per save, compacted away when they outweigh the messages). Counted by the kernel:
``/proc/self/io``'s ``wchar``, every byte this process (all its threads) handed to ``write``
and ``pwrite`` meanwhile. One round each: the figure is a count, not a timing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import FileSessionStore, SessionManager, SimpleConversation

from corpus import conversation
from peers import OriginalFileStore

LENGTH = 1000
GROUP = f"bytes written over a {LENGTH}-message conversation"
_IO = Path("/proc/self/io")

pytestmark = pytest.mark.skipif(not _IO.exists(), reason="needs Linux's /proc/self/io")


def _written() -> int:
    """Bytes this process has handed to write calls so far."""
    fields = dict(line.split(": ") for line in _IO.read_text().splitlines())
    return int(fields["wchar"])


def _count(benchmark: Any, run: Any) -> int:
    counted: list[int] = []

    def measured() -> None:
        before = _written()
        asyncio.run(run())
        counted.append(_written() - before)

    benchmark.group = GROUP
    benchmark.pedantic(measured, rounds=1, iterations=1)
    benchmark.extra_info["bytes_written"] = counted[0]
    benchmark.extra_info["messages"] = LENGTH
    return counted[0]


def test_bytes_written_journal(benchmark: Any, tmp_path: Path) -> None:
    """Ours: a SimpleConversation auto-saving to a durable journal, awaited after each message."""
    messages = conversation(LENGTH)
    store = FileSessionStore(tmp_path)

    async def run() -> None:
        conv = SimpleConversation()
        async with SessionManager(store, conv) as manager:
            session_id = manager.start_new()
            for message in messages:
                conv.append(message)
                await manager.flush()
        stored = await store.load(session_id)
        assert stored is not None
        assert stored.messages == messages

    written = _count(benchmark, run)
    size = next(tmp_path.glob("*.jsonl")).stat().st_size
    benchmark.extra_info["file_bytes"] = size
    assert size <= written < 3 * size  # each message once, its commit records and compactions


def test_bytes_written_original_library(benchmark: Any, tmp_path: Path) -> None:
    """The original library's save (ported line for line): the whole file, every time."""
    messages = conversation(LENGTH)
    store = OriginalFileStore(str(tmp_path))

    async def run() -> None:
        for end in range(1, LENGTH + 1):
            await store.save("s", messages[:end])

    written = _count(benchmark, run)
    size = (tmp_path / "s.json").stat().st_size
    benchmark.extra_info["file_bytes"] = size
    assert written > LENGTH // 3 * size  # the square: on average half the final file, each save
