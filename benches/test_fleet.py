"""A fleet: many conversations in one process, each auto-saving, durable, on one file store.

Reports messages saved per second and the event loop's responsiveness while it runs (the
lateness of a 1 ms ticker). Conversations pace their messages like model responses would.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import FileSessionStore, SessionManager, SimpleConversation

from corpus import conversation


@pytest.mark.parametrize(("sessions", "messages", "pace_ms"), [(1000, 20, 0), (1000, 20, 200)])
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
        lateness: list[float] = []
        running = True

        async def ticker() -> None:
            while running:
                start = time.perf_counter()
                await asyncio.sleep(0.001)
                lateness.append(time.perf_counter() - start - 0.001)

        async def talk(conv: SimpleConversation, manager: SessionManager, rng: random.Random) -> None:
            for message in corpus:
                conv.append(message)
                await asyncio.sleep(rng.uniform(0, 2 * pace_ms / 1000) if pace_ms else 0)
            await manager.flush()

        tick = asyncio.create_task(ticker())
        start = time.perf_counter()
        pairs = enumerate(zip(conversations, managers, strict=True))
        await asyncio.gather(*(talk(c, m, random.Random(i)) for i, (c, m) in pairs))
        elapsed = time.perf_counter() - start
        running = False
        await tick
        lateness.sort()
        results["messages_per_s"] = sessions * messages / elapsed
        results["stall_p99_ms"] = lateness[int(0.99 * (len(lateness) - 1))] * 1000
        stored = await store.load(managers[-1].current_session_id or "")
        assert stored is not None
        assert len(stored.messages) == messages

    benchmark.group = "fleet"
    benchmark.pedantic(lambda: asyncio.run(fleet()), rounds=1, iterations=1)
    benchmark.extra_info.update(results)
