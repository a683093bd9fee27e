"""Timing rounds that run on an event loop, leaving out the loop's own start and stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from simulacra_session import SessionManager, SessionStore, SimpleConversation

__all__ = ["IN_LOOP", "InLoopTimer", "autosave_round", "rounds_run"]


class InLoopTimer:
    """A pytest-benchmark timer for rounds run on an event loop: the loop's start and stop are left out.

    ``run(loop, round)`` runs one round with ``loop.run_until_complete`` and notes when the
    round's coroutine began and ended; the clock (``perf_counter``) then leaves out the time
    before and after, so a round is timed as if it ran inside an already running loop:
    from its first statement to its last, end to end. (``run_until_complete`` itself costs
    ~15 us a round here; ``test_harness_empty_round`` measures it both ways.)
    """

    def __init__(self) -> None:
        self._left_out = 0.0

    def __call__(self) -> float:
        return time.perf_counter() - self._left_out

    def run(self, loop: asyncio.AbstractEventLoop, round: Callable[[], Awaitable[None]]) -> None:
        marks: list[float] = []

        async def timed() -> None:
            marks.append(time.perf_counter())
            await round()
            marks.append(time.perf_counter())

        entered = time.perf_counter()
        loop.run_until_complete(timed())
        left = time.perf_counter()
        self._left_out += (marks[0] - entered) + (left - marks[1])


IN_LOOP = InLoopTimer()


def autosave_round(
    loop: asyncio.AbstractEventLoop, store: SessionStore, messages: list[dict[str, Any]], length: int
) -> tuple[str, Callable[[], Awaitable[None]]]:
    """A session saved with the first ``length`` messages, and one auto-save round: the next
    message appended to the conversation, then ``await manager.flush()`` (stored, durable where
    the store is). Returns the session's id and the round."""
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)

    async def prepare() -> str:
        session_id = manager.start_new()
        conversation.load(messages[:length])
        await manager.save(full=True)
        return session_id

    session_id = loop.run_until_complete(prepare())
    upcoming = iter(messages[length:])

    async def one_message() -> None:
        conversation.append(next(upcoming))
        await manager.flush()

    return session_id, one_message


def rounds_run(benchmark: Any, rounds: int, warmup_rounds: int = 0) -> int:
    """How many times ``benchmark.pedantic(..., rounds=rounds, warmup_rounds=warmup_rounds)``
    ran its target: once with ``--benchmark-disable`` (a smoke run), else every round. What a
    benchmark checks on disk afterwards depends on it."""
    return 1 if benchmark.disabled else rounds + warmup_rounds
