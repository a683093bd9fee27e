"""One auto-save (``message_complete`` to durable on disk) at each conversation length.

The conversation grows by one message per round, from the named length on; beside it, the
floor: appending one ~1.5 KB line to a file and fdatasyncing it, on the same disk, and the
peers doing the same job with their own durability settings: the original library's save,
openai-agents' ``SQLiteSession.add_items`` and LangGraph's ``SqliteSaver.put`` (both on a
SQLite file in WAL mode with ``synchronous=FULL``: every commit fsyncs the WAL).

Our auto-save rounds (``conversation.append`` then ``await manager.flush()``) are timed
from inside the running loop (``IN_LOOP``), not around ``loop.run_until_complete``, whose
own cost (~15 us a round) would otherwise be most of a no-fsync save:
``test_harness_empty_round`` times an empty round both ways. The peers' rounds keep the
plain timer: their costs dwarf it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from agents import SQLiteSession
from langgraph.checkpoint.sqlite import SqliteSaver

from simulacra_session import FileSessionStore

from corpus import LENGTHS, conversation
from harness import FLOOR_LINE, IN_LOOP, append_floor_line, autosave_round, rounds_run
from peers import LangGraphThread, OriginalFileStore, sqlite_durability

ROUNDS = 50


@pytest.mark.benchmark(timer=IN_LOOP)
@pytest.mark.parametrize("fsync", [True, False], ids=["durable", "no-fsync"])
@pytest.mark.parametrize("length", LENGTHS)
def test_autosave(
    benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path, length: int, fsync: bool
) -> None:
    _timed_autosaves(benchmark, loop, tmp_path, length, ROUNDS, fsync)


def _timed_autosaves(
    benchmark: Any,
    loop: asyncio.AbstractEventLoop,
    tmp_path: Path,
    length: int,
    rounds: int,
    fsync: bool,
    pause: Callable[[], None] | None = None,
) -> None:
    """``rounds`` auto-saves to a file store of a conversation ``length`` messages long at the
    start, timed in the loop (``pause``: run untimed before each), then checked on disk. The
    collections the garbage collector made meanwhile go in ``extra_info``."""
    messages = conversation(length + rounds + 1)
    store = FileSessionStore(tmp_path, fsync=fsync)
    session_id, one_message = autosave_round(loop, store, messages, length)

    benchmark.group = "auto-save (durable)" if fsync else "auto-save (no fsync)"
    benchmark.extra_info["messages"] = length
    collected = _collections()
    benchmark.pedantic(IN_LOOP.run, (loop, one_message), setup=pause, rounds=rounds, warmup_rounds=1)
    benchmark.extra_info["gc collections"] = _collections() - collected  # the warm-up's too
    stored = loop.run_until_complete(store.load(session_id))
    assert stored is not None
    assert stored.messages == messages[: length + rounds_run(benchmark, rounds, 1)]


TAIL_LENGTH, TAIL_ROUNDS = 1000, 2000


@pytest.mark.benchmark(timer=IN_LOOP)
@pytest.mark.parametrize("fsync", [True, False], ids=["durable", "no-fsync"])
def test_autosave_tail(benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path, fsync: bool) -> None:
    """p99 against p50 of an auto-save at 1000 messages, over enough rounds (2,000) that the
    99th percentile is the 20th slowest, not the slowest of 50. The collector runs as in an
    application (only what the set-up made is frozen)."""
    _timed_autosaves(benchmark, loop, tmp_path, TAIL_LENGTH, TAIL_ROUNDS, fsync)
    _note_tail(benchmark)


def _collections() -> int:
    """How many collections the garbage collector has made so far, of every generation: the
    p99 of 2,000 rounds lands on one when they fall in more than 1% of rounds."""
    return sum(generation["collections"] for generation in gc.get_stats())


def _note_tail(benchmark: Any) -> None:
    """The rounds' p99 and its ratio to their p50, in ``extra_info`` (none in a smoke run)."""
    if benchmark.disabled:
        return
    rounds = sorted(benchmark.stats.stats.data)
    p50, p99 = rounds[len(rounds) // 2], rounds[len(rounds) * 99 // 100]
    benchmark.extra_info.update({"rounds": len(rounds), "p99 µs": p99 * 1e6, "p99/p50": p99 / p50})


PAUSE_SECONDS, PAUSE_ROUNDS = 0.002, 200


def _pause() -> None:
    """Between rounds, untimed: quiet, as between an agent's model responses, so the disk and
    the CPUs settle and the group-commit thread has long been asleep."""
    time.sleep(PAUSE_SECONDS)


@pytest.mark.benchmark(timer=IN_LOOP)
def test_autosave_after_a_pause(benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    """A durable auto-save at 1000 messages after 2 ms of quiet: the group-commit thread is woken."""
    benchmark.extra_info["pause ms"] = PAUSE_SECONDS * 1e3
    _timed_autosaves(benchmark, loop, tmp_path, TAIL_LENGTH, PAUSE_ROUNDS, True, pause=_pause)


def test_floor_after_a_pause(benchmark: Any, tmp_path: Path) -> None:
    """The floor, one append+fdatasync after each 2 ms of quiet: the disk after a pause."""
    fd = os.open(tmp_path / "floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    benchmark.group = "auto-save (durable)"
    benchmark.extra_info["pause ms"] = PAUSE_SECONDS * 1e3
    benchmark.pedantic(append_floor_line, (fd, True), setup=_pause, rounds=PAUSE_ROUNDS)
    os.close(fd)
    assert (tmp_path / "floor.jsonl").stat().st_size == len(FLOOR_LINE) * rounds_run(benchmark, PAUSE_ROUNDS)


async def _nothing() -> None:
    pass


@pytest.mark.parametrize("fsync", [True, False], ids=["durable", "no-fsync"])
def test_harness_empty_round(benchmark: Any, loop: asyncio.AbstractEventLoop, fsync: bool) -> None:
    """What ``loop.run_until_complete`` costs a round: an empty coroutine, timed around it."""
    benchmark.group = "auto-save (durable)" if fsync else "auto-save (no fsync)"
    benchmark.pedantic(lambda: loop.run_until_complete(_nothing()), rounds=ROUNDS * 4, warmup_rounds=1)


@pytest.mark.benchmark(timer=IN_LOOP)
@pytest.mark.parametrize("fsync", [True, False], ids=["durable", "no-fsync"])
def test_harness_empty_round_in_loop(benchmark: Any, loop: asyncio.AbstractEventLoop, fsync: bool) -> None:
    """What the in-loop timing of the auto-saves adds to a round: an empty coroutine, timed so."""
    benchmark.group = "auto-save (durable)" if fsync else "auto-save (no fsync)"
    benchmark.pedantic(IN_LOOP.run, (loop, _nothing), rounds=ROUNDS * 4, warmup_rounds=1)


@pytest.mark.parametrize("fsync", [True, False], ids=["durable", "no-fsync"])
def test_floor_append_line(benchmark: Any, tmp_path: Path, fsync: bool) -> None:
    """The floor for a durable auto-save: one ~1.5 KB line appended and fdatasynced, over as
    many rounds as ``test_autosave_tail``, so the disk's own p99 stands beside the saves'."""
    fd = os.open(tmp_path / "floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    benchmark.group = "auto-save (durable)" if fsync else "auto-save (no fsync)"
    benchmark.pedantic(append_floor_line, (fd, fsync), rounds=TAIL_ROUNDS, warmup_rounds=1)
    _note_tail(benchmark)
    os.close(fd)
    assert (tmp_path / "floor.jsonl").stat().st_size == len(FLOOR_LINE) * rounds_run(
        benchmark, TAIL_ROUNDS, 1
    )


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
    stored = store._load("s")
    assert stored is not None
    assert stored["messages"] == messages[: length + rounds_run(benchmark, ROUNDS, 1)]


@pytest.mark.parametrize("length", LENGTHS)
def test_openai_agents_sqlite_session(
    benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path, length: int
) -> None:
    """openai-agents ``SQLiteSession.add_items``: one new message per round, file database."""
    messages = conversation(length + ROUNDS + 1)
    db = tmp_path / "agents.db"
    session = SQLiteSession("s", db)
    try:
        loop.run_until_complete(session.add_items(messages[:length]))
        upcoming = iter(messages[length:])

        benchmark.group = "auto-save (durable)"
        benchmark.extra_info["messages"] = length
        with closing(sqlite3.connect(db)) as conn:
            benchmark.extra_info.update(sqlite_durability(conn))
        benchmark.pedantic(
            lambda: loop.run_until_complete(session.add_items([next(upcoming)])),
            rounds=ROUNDS,
            warmup_rounds=1,
        )
        assert (
            loop.run_until_complete(session.get_items())
            == messages[: length + rounds_run(benchmark, ROUNDS, 1)]
        )
    finally:
        session.close()


@pytest.mark.parametrize("length", LENGTHS)
def test_langgraph_sqlite_saver(benchmark: Any, tmp_path: Path, length: int) -> None:
    """LangGraph ``SqliteSaver.put``: a checkpoint holding the whole message list, one message longer."""
    messages = conversation(length + ROUNDS + 1)
    with SqliteSaver.from_conn_string(str(tmp_path / "langgraph.db")) as saver:
        thread = LangGraphThread(saver, "s")
        thread.append(messages[:length])
        upcoming = iter(messages[length:])

        benchmark.group = "auto-save (durable)"
        benchmark.extra_info["messages"] = length
        benchmark.extra_info.update(sqlite_durability(saver.conn))
        benchmark.pedantic(lambda: thread.append([next(upcoming)]), rounds=ROUNDS, warmup_rounds=1)
        stored = saver.get_tuple({"configurable": {"thread_id": "s", "checkpoint_ns": ""}})
        assert stored is not None
        assert stored.config == thread.config
        ran = rounds_run(benchmark, ROUNDS, 1)
        assert stored.checkpoint["channel_values"]["messages"] == messages[: length + ran]
