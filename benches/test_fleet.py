"""A fleet: many conversations in one process, each auto-saving, durable, on one store.

Reports messages saved per second and the event loop's responsiveness while it runs:
- how long single callbacks hold the loop (a stall: nothing else runs meanwhile). Every
  callback the loop runs is timed, less the garbage collector's pauses within it, which are
  reported apart: a collection scans the whole heap, whoever allocated it;
- how late a 1 ms ticker wakes. That also counts every other callback ready in the same
  tick: with 1,000 conversations all ready at once, it is the workload's own size.
Conversations talk all at once, or pace their messages like model responses would. Beside
ours (one file store), the same workload on openai-agents' ``SQLiteSession``: one session
per conversation, all on one shared database file, ``add_items`` once per message.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import sqlite3
import time
from collections.abc import Coroutine, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from agents import SQLiteSession

from simulacra_session import FileSessionStore, SessionManager, SimpleConversation

from corpus import conversation, session_ids
from peers import sqlite_durability

WORKLOADS = [(1000, 20, 0), (1000, 20, 200)]  # (sessions, messages each, mean pause in ms)


async def _pause(rng: random.Random, pace_ms: int) -> None:
    """The wait before a conversation's next message: none, or uniform around ``pace_ms``."""
    await asyncio.sleep(rng.uniform(0, 2 * pace_ms / 1000) if pace_ms else 0)


def _open_fds() -> dict[str, float]:
    """How many file descriptors the process holds (Linux only; nothing elsewhere)."""
    return {"open_fds": len(os.listdir("/proc/self/fd"))} if os.path.isdir("/proc/self/fd") else {}


def _p99_ms(samples: list[float]) -> float:
    samples.sort()
    return samples[int(0.99 * (len(samples) - 1))] * 1000


@contextmanager
def _callbacks_timed() -> Iterator[tuple[list[float], list[float]]]:
    """Time every callback the event loop runs (each ``Handle._run``: task steps, I/O, timers),
    and separately the time the garbage collector paused them: (durations less the collector's
    pauses within them, the collector's pauses)."""
    durations: list[float] = []
    pauses: list[float] = []
    run = asyncio.events.Handle._run
    clock = time.perf_counter
    began = [0.0]

    def collector(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = clock()
        else:
            pauses.append(clock() - began[0])

    def timed(handle: asyncio.Handle) -> None:
        collected = len(pauses)
        start = clock()
        run(handle)
        durations.append(clock() - start - sum(pauses[collected:]))

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    gc.callbacks.append(collector)
    try:
        yield durations, pauses
    finally:
        gc.callbacks.remove(collector)
        asyncio.events.Handle._run = run  # type: ignore[method-assign]


async def _run(talkers: list[Coroutine[Any, Any, None]], total: int) -> dict[str, float]:
    """Run the talkers at once beside a 1 ms ticker: messages/s, the process's CPU time per
    message (every thread, the timing of callbacks and the ticker included, alike for each
    store), the p99 and longest callback (the stall), the ticker's p99 lateness, open fds."""
    lateness: list[float] = []
    running = True

    async def ticker() -> None:
        while running:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lateness.append(time.perf_counter() - start - 0.001)

    tick = asyncio.create_task(ticker())
    with _callbacks_timed() as (durations, pauses):
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*talkers)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    running = False
    await tick
    return {
        "messages_per_s": total / elapsed,
        "cpu_us_per_message": cpu / total * 1e6,
        "callback_max_ms": max(durations) * 1000,
        "callback_p99_ms": _p99_ms(durations),
        "gc_pause_max_ms": max(pauses, default=0.0) * 1000,
        "gc_pauses": len(pauses),
        "tick_lateness_p99_ms": _p99_ms(lateness),
        **_open_fds(),
    }


@pytest.mark.parametrize(("sessions", "messages", "pace_ms"), WORKLOADS)
def test_fleet(benchmark: Any, tmp_path: Path, sessions: int, messages: int, pace_ms: int) -> None:
    corpus = conversation(messages)
    results: dict[str, float] = {}

    async def fleet() -> None:
        store = FileSessionStore(tmp_path / f"run{len(results)}")
        conversations = [SimpleConversation() for _ in range(sessions)]
        managers = [SessionManager(store, c) for c in conversations]
        for manager in managers:
            manager.start_new()
        await asyncio.gather(*(manager.flush() for manager in managers))

        async def talk(conv: SimpleConversation, manager: SessionManager, rng: random.Random) -> None:
            for message in corpus:
                conv.append(message)
                await _pause(rng, pace_ms)
            await manager.flush()

        pairs = enumerate(zip(conversations, managers, strict=True))
        talkers = [talk(c, m, random.Random(i)) for i, (c, m) in pairs]
        results.update(await _run(talkers, sessions * messages))
        stored = await store.load(managers[-1].current_session_id or "")
        assert stored is not None
        assert len(stored.messages) == messages

    benchmark.group = "fleet"
    benchmark.pedantic(lambda: asyncio.run(fleet()), rounds=1, iterations=1)
    benchmark.extra_info.update(results)


@pytest.mark.parametrize(("sessions", "messages", "pace_ms"), WORKLOADS)
def test_fleet_openai_agents_sqlite_session(
    benchmark: Any, tmp_path: Path, sessions: int, messages: int, pace_ms: int
) -> None:
    """The same fleet on openai-agents ``SQLiteSession``s sharing one database file."""
    corpus = conversation(messages)
    results: dict[str, float] = {}
    db = tmp_path / "agents.db"

    async def fleet() -> None:
        peers = [SQLiteSession(session_id, db) for session_id in session_ids(sessions)]
        try:

            async def talk(session: SQLiteSession, rng: random.Random) -> None:
                for message in corpus:
                    await session.add_items([message])
                    await _pause(rng, pace_ms)

            talkers = [talk(session, random.Random(i)) for i, session in enumerate(peers)]
            results.update(await _run(talkers, sessions * messages))
            assert await peers[-1].get_items() == corpus
        finally:
            for session in peers:
                session.close()

    benchmark.group = "fleet"
    benchmark.pedantic(lambda: asyncio.run(fleet()), rounds=1, iterations=1)
    benchmark.extra_info.update(results)
    with closing(sqlite3.connect(db)) as conn:
        benchmark.extra_info.update(sqlite_durability(conn))
        assert conn.execute("SELECT COUNT(*) FROM agent_messages").fetchone() == (sessions * messages,)
