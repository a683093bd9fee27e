"""Listing 1,000 sessions of 100 messages each, warm (the second and later calls).

Ours on the file store (journal format) beside the original library's list over the same
sessions in its own json format (every file read and parsed whole), and beside the floor:
a plain ``os.scandir`` of the directory with a ``stat`` of every entry.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import FileSessionStore

from corpus import conversation, session_ids
from peers import OriginalFileStore

SESSIONS = 1000
MESSAGES = 100
GROUP = f"list {SESSIONS} sessions x {MESSAGES} messages (warm)"


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(ours, original)``: the same sessions in a journal directory and in the original's."""
    root = tmp_path_factory.mktemp("list")
    ours, original = root / "ours", root / "original"
    messages = conversation(MESSAGES)

    async def fill() -> None:
        # fsync=False only makes the set-up quicker: the files are the same as durable ones.
        store = FileSessionStore(ours, fsync=False)
        theirs = OriginalFileStore(str(original))
        for session_id in session_ids(SESSIONS):
            await store.save(session_id, messages)
            await theirs.save(session_id, messages)

    asyncio.run(fill())
    return ours, original


def test_list(benchmark: Any, loop: asyncio.AbstractEventLoop, roots: tuple[Path, Path]) -> None:
    store = FileSessionStore(roots[0])
    start = time.perf_counter()
    cold = loop.run_until_complete(store.list())
    benchmark.extra_info["cold_ms"] = (time.perf_counter() - start) * 1000  # one call: noisy

    benchmark.group = GROUP
    benchmark.extra_info.update(sessions=SESSIONS, messages=MESSAGES)
    listed = benchmark.pedantic(lambda: loop.run_until_complete(store.list()), rounds=50, warmup_rounds=1)
    assert listed == cold
    assert sorted(meta.id for meta in listed) == session_ids(SESSIONS)
    assert all(meta.message_count == MESSAGES for meta in listed)
    updated = [meta.updated for meta in listed]
    assert updated == sorted(updated, reverse=True)


def test_original_library_list(
    benchmark: Any, loop: asyncio.AbstractEventLoop, roots: tuple[Path, Path]
) -> None:
    """The original library's list, ported line for line: every file read and parsed whole."""
    store = OriginalFileStore(str(roots[1]))

    benchmark.group = GROUP
    benchmark.extra_info.update(sessions=SESSIONS, messages=MESSAGES)
    listed = benchmark.pedantic(lambda: loop.run_until_complete(store.list()), rounds=5, warmup_rounds=1)
    assert sorted(meta["id"] for meta in listed) == session_ids(SESSIONS)
    assert all(meta["message_count"] == MESSAGES for meta in listed)
    updated = [meta["updated_at"] for meta in listed]
    assert updated == sorted(updated, reverse=True)


def test_floor_scandir_stat(benchmark: Any, roots: tuple[Path, Path]) -> None:
    """The floor for a warm list: the directory read and every entry stat'ed, nothing parsed."""

    def scan() -> list[os.stat_result]:
        with os.scandir(roots[0]) as entries:
            return [entry.stat() for entry in entries]

    benchmark.group = GROUP
    benchmark.extra_info.update(sessions=SESSIONS, messages=MESSAGES)
    stats = benchmark.pedantic(scan, rounds=50, warmup_rounds=1)
    assert len(stats) == SESSIONS
