"""Timing rounds that run on an event loop, leaving out the loop's own start and stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["IN_LOOP", "InLoopTimer"]


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
