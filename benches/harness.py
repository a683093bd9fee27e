"""Timing rounds that run on an event loop, leaving out the loop's own start and stop."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from simulacra_session import FileSessionStore, SessionManager, SessionStore, SimpleConversation

from corpus import conversation

__all__ = [
    "FLOOR_LINE",
    "IN_LOOP",
    "InLoopTimer",
    "append_floor_line",
    "autosave_round",
    "paired",
    "rounds_run",
    "run_in_loop",
]

FLOOR_LINE = b'{"role":"user","content":"' + b"x" * 1500 + b'"}\n'  # ~1.5 KB, as a message


def append_floor_line(fd: int, fsync: bool) -> None:
    """The floor of an auto-save: one ~1.5 KB line appended, fdatasynced when ``fsync``."""
    os.write(fd, FLOOR_LINE)
    if fsync:
        os.fdatasync(fd)


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
        entered = time.perf_counter()
        taken = run_in_loop(loop, round)
        self._left_out += time.perf_counter() - entered - taken


def run_in_loop(loop: asyncio.AbstractEventLoop, round: Callable[[], Awaitable[None]]) -> float:
    """Run ``round`` with ``loop.run_until_complete``; the seconds it took inside the loop,
    from its first statement to its last."""
    marks: list[float] = []

    async def timed() -> None:
        marks.append(time.perf_counter())
        await round()
        marks.append(time.perf_counter())

    loop.run_until_complete(timed())
    return marks[1] - marks[0]


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


def durable_autosaves(
    loop: asyncio.AbstractEventLoop, root: os.PathLike[str], length: int, rounds: int
) -> tuple[Callable[[], Awaitable[None]], Callable[[int], None]]:
    """A durable file store's auto-save round at ``length`` messages (enough messages for
    ``rounds`` of them), and a check that ``runs`` rounds were stored."""
    messages = conversation(length + rounds + 1)
    store = FileSessionStore(root)
    session_id, one_message = autosave_round(loop, store, messages, length)

    def check(runs: int) -> None:
        stored = loop.run_until_complete(store.load(session_id))
        assert stored is not None
        assert stored.messages == messages[: length + runs]

    return one_message, check


def sized(config: Any, full: int, smoke: int) -> int:
    """``full`` in a timed run, ``smoke`` in a smoke run (``--benchmark-disable``): a fixture
    sized for its figure need not be filled to that size to show that the benchmark works."""
    return smoke if config.getoption("benchmark_disable") else full


def rounds_run(benchmark: Any, rounds: int, warmup_rounds: int = 0) -> int:
    """How many times ``benchmark.pedantic(..., rounds=rounds, warmup_rounds=warmup_rounds)``
    ran its target: once with ``--benchmark-disable`` (a smoke run), else every round. What a
    benchmark checks on disk afterwards depends on it."""
    return 1 if benchmark.disabled else rounds + warmup_rounds


def paired(
    benchmark: Any, rounds: int, baseline: Callable[[], float], ours: Callable[[], float], block: int = 1
) -> None:
    """Time ``ours`` against ``baseline`` in interleaved blocks of ``block`` runs each, each
    run returning the seconds it took; every round is one block of each, in turn first.

    A shared host drifts in speed over seconds, so two benchmarks run a minute apart
    compare two hosts; blocks taken back to back see the same one. ``extra_info`` gets
    both sides' medians and the median over rounds of the ratio of their blocks' medians
    (the benchmark's own timing is the whole round). Blocks longer than one run keep each
    side's runs back to back, as in its own benchmark: a conversation's saves follow one
    another, each awaited.
    """
    times: tuple[list[list[float]], list[list[float]]] = ([], [])

    def one_round() -> None:
        first = len(times[0]) % 2
        for side in (first, 1 - first):
            run = (baseline, ours)[side]
            times[side].append([run() for _ in range(block)])

    benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=1)
    if benchmark.disabled:
        return
    base, own = times[0][1:], times[1][1:]  # less the warm-up round
    ratios = [
        statistics.median(mine) / statistics.median(theirs) for mine, theirs in zip(own, base, strict=True)
    ]
    benchmark.extra_info.update(
        {
            "runs": len(own) * block,
            "ours µs": statistics.median(t for runs in own for t in runs) * 1e6,
            "baseline µs": statistics.median(t for runs in base for t in runs) * 1e6,
            "paired ratio": statistics.median(ratios),
        }
    )
