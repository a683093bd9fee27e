"""CPU time per awaited durable auto-save against the floor's, and the process's CPU while idle.

The targets of issue 20, from one run:
- the CPU time of the whole process (``time.process_time``: every thread, user and system)
  per awaited durable auto-save at 1000 messages, at most 2x the CPU time of the floor: one
  ~1.5 KB line appended with ``write`` and made durable with ``fdatasync``, on the same disk;
- the wall time of the same save, at most 1.5x the floor's and at most 1.2x its own at 10
  messages;
- after a burst of saves, under 5 ms of CPU over 2 s of idle, the event loop running.

Beside them runs the hand-over, the least any save that leaves the event loop does: the
loop appends the floor's line, hands the descriptor to a plain thread that fdatasyncs it,
and sleeps until one wake-up (a pipe watched with ``add_reader``) says it is done. It is
the mechanism the issue prescribes without any of this library, so its ratio to the floor
is what this machine charges for leaving the loop at all (a wake-up of a sleeping thread
each way), and the auto-save's ratio to it is what the library adds.

The four sides (the floor, the hand-over, an auto-save at 10 messages, one at 1000) run in interleaved
blocks of ten awaited saves, each side first in turn, so a shared host's drift moves them
alike (``harness.paired`` does the same for two sides). A block's CPU and wall time are taken
inside the running loop. The group-commit thread's last few instructions of a save (going
back to sleep after handing the outcome over) may fall into the next block; over 1,000 saves
that is noise. The figures are in ``extra_info``; the benchmark's own timing is whole rounds.
"""

from __future__ import annotations

import asyncio
import os
import queue
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import FileSessionStore

from corpus import conversation
from harness import FLOOR_LINE, append_floor_line, autosave_round, durable_autosaves, rounds_run

BLOCK, ROUNDS = 10, 100  # 1,000 saves a side, as the issue measured
LONG, SHORT = 1000, 10
IDLE_SECONDS, BURST = 2.0, 200
NAP = 50e-6  # seconds asleep before each save of the nap side

#: One awaited save (or floor append); a side of the interleaved rounds.
Save = Callable[[], Awaitable[None]]


async def _block(save: Save) -> tuple[float, float]:
    """``save`` ``BLOCK`` times in a row, each awaited: (CPU seconds of the process, wall seconds)."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(BLOCK):
        await save()
    return time.process_time() - cpu, time.perf_counter() - wall


def _store_side(
    loop: asyncio.AbstractEventLoop, root: Path, length: int
) -> tuple[Save, Callable[[int], None]]:
    """A durable file store's auto-save at ``length`` messages, and a check that ``runs`` of
    them were stored."""
    return durable_autosaves(loop, root, length, BLOCK * (ROUNDS + 1))


@pytest.fixture
def hand_over(loop: asyncio.AbstractEventLoop, tmp_path: Path) -> Iterator[Save]:
    """The hand-over side: append the floor's line on the loop, fdatasync it on a thread that
    sleeps on a queue, come back through one pipe wake-up watched by the loop."""
    fd = os.open(tmp_path / "hand-over.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    jobs: queue.SimpleQueue[asyncio.Future[None] | None] = queue.SimpleQueue()
    done: list[asyncio.Future[None]] = []

    def sync_thread() -> None:
        while (job := jobs.get()) is not None:
            os.fdatasync(fd)
            done.append(job)
            os.write(wake_write, b"!")

    def settle() -> None:
        os.read(wake_read, 512)
        while done:
            done.pop().set_result(None)

    async def save() -> None:
        os.write(fd, FLOOR_LINE)
        job = loop.create_future()
        jobs.put(job)
        await job

    thread = threading.Thread(target=sync_thread, name="hand-over fdatasync")
    thread.start()
    loop.add_reader(wake_read, settle)
    try:
        yield save
    finally:
        loop.remove_reader(wake_read)
        jobs.put(None)
        thread.join()
        for descriptor in (fd, wake_read, wake_write):
            os.close(descriptor)


def _per_save(samples: list[tuple[float, float]], which: int) -> float:
    """Microseconds per save of the CPU (``which=0``) or wall (``1``) time of ``samples``' blocks."""
    return sum(sample[which] for sample in samples) / (len(samples) * BLOCK) * 1e6


def _paired_ratio(ours: list[tuple[float, float]], theirs: list[tuple[float, float]], which: int) -> float:
    """The median over rounds of the ratio of two sides' blocks, taken in the same round."""
    return statistics.median(mine[which] / base[which] for mine, base in zip(ours, theirs, strict=True))


def test_cpu_per_durable_autosave(
    benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path, hand_over: Save
) -> None:
    """CPU and wall time per awaited durable auto-save at 1000 and 10 messages, beside the
    floor and the hand-over."""
    long, check_long = _store_side(loop, tmp_path / "long", LONG)
    short, check_short = _store_side(loop, tmp_path / "short", SHORT)
    floor_fd = os.open(tmp_path / "floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    async def floor() -> None:
        append_floor_line(floor_fd, True)

    sides: dict[str, Save] = {"floor": floor, "hand-over": hand_over, "short": short, "long": long}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}

    def one_round() -> None:
        names = list(sides)
        first = len(samples["floor"]) % len(names)
        for name in names[first:] + names[:first]:
            samples[name].append(loop.run_until_complete(_block(sides[name])))

    benchmark.group = "cpu per durable auto-save"
    try:
        benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=1)
    finally:
        os.close(floor_fd)
    runs = BLOCK * rounds_run(benchmark, ROUNDS, 1)
    check_long(runs)
    check_short(runs)
    for side in ("floor", "hand-over"):
        assert (tmp_path / f"{side}.jsonl").stat().st_size == len(FLOOR_LINE) * runs
    if not benchmark.disabled:
        benchmark.extra_info.update(_figures({name: blocks[1:] for name, blocks in samples.items()}))


def _figures(samples: dict[str, list[tuple[float, float]]]) -> dict[str, float]:
    """The targets' figures from each side's blocks (the warm-up round left out)."""
    floor, hand_over, short, long = (samples[name] for name in ("floor", "hand-over", "short", "long"))
    long_cpu, hand_over_cpu, floor_cpu = (sum(cpu for cpu, _ in side) for side in (long, hand_over, floor))
    return {
        "saves": len(long) * BLOCK,
        "cpu µs (1000)": _per_save(long, 0),
        "cpu µs (10)": _per_save(short, 0),
        "cpu µs (floor)": _per_save(floor, 0),
        "cpu µs (hand-over)": _per_save(hand_over, 0),
        "cpu ratio to floor (target <= 2)": long_cpu / floor_cpu,
        "cpu ratio of the hand-over to floor": hand_over_cpu / floor_cpu,
        "cpu ratio to the hand-over": long_cpu / hand_over_cpu,
        "wall µs (1000)": _per_save(long, 1),
        "wall µs (10)": _per_save(short, 1),
        "wall µs (floor)": _per_save(floor, 1),
        "wall µs (hand-over)": _per_save(hand_over, 1),
        "wall ratio to floor (target <= 1.5)": _paired_ratio(long, floor, 1),
        "wall ratio of the hand-over to floor": _paired_ratio(hand_over, floor, 1),
        "wall ratio to 10 (target <= 1.2)": _paired_ratio(long, short, 1),
        "cores busy (1000)": long_cpu / sum(wall for _, wall in long),
    }


def _threads_cpu_ns() -> dict[str, int]:
    """Each thread's time on a CPU so far, in ns, by name (Linux ``schedstat``; empty elsewhere).
    Python threads go by their ``threading`` name, others by the kernel's ``comm``."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    spent: dict[str, int] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return spent
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat", encoding="ascii") as stat:
                ns = int(stat.read().split()[0])
            with open(f"/proc/self/task/{tid}/comm", encoding="utf-8") as comm:
                name = names.get(int(tid)) or comm.read().strip()
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile, or no schedstat here
        spent[f"{name} ({tid})"] = ns
    return spent


def test_cpu_after_a_nap(benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    """The event loop thread's CPU time per auto-save without fsync (no thread, no disk wait:
    the library's own work), back to back and after sleeping 50 us before each save.

    A save that leaves the loop while the disk works resumes on a thread that slept; the
    floor's thread sleeps too, but has almost nothing to do once it wakes. Where a sleeping
    CPU loses its caches (a VM whose idle CPU exits to the host), the same Python code costs
    more after a sleep, and the ratio here says how much: it is the part of ``cpu ratio to
    the hand-over`` no change to the save path can remove, short of doing less after a
    wake-up. The nap itself is not counted (``time.thread_time`` around each save only)."""
    messages = conversation(LONG + BLOCK * (ROUNDS + 1) * 2 + 1)
    _, save = autosave_round(loop, FileSessionStore(tmp_path, fsync=False), messages, LONG)
    samples: dict[str, list[float]] = {"back to back": [], "after a nap": []}

    async def block(nap: float) -> float:
        spent = 0.0
        for _ in range(BLOCK):
            if nap:
                time.sleep(nap)  # noqa: ASYNC251 - the loop's thread asleep, as while a disk works
            started = time.thread_time()
            await save()
            spent += time.thread_time() - started
        return spent

    def one_round() -> None:
        sides = [("back to back", 0.0), ("after a nap", NAP)]
        if len(samples["after a nap"]) % 2:
            sides.reverse()
        for name, nap in sides:
            samples[name].append(loop.run_until_complete(block(nap)))

    benchmark.group = "cpu after a nap"
    benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=1)
    if not benchmark.disabled:
        warm, cold = (sum(samples[name][1:]) for name in ("back to back", "after a nap"))
        saves = (len(samples["after a nap"]) - 1) * BLOCK
        benchmark.extra_info.update(
            {
                "saves": saves,
                "loop cpu µs (back to back)": warm / saves * 1e6,
                "loop cpu µs (after a 50 µs nap)": cold / saves * 1e6,
                "cpu ratio after a nap": cold / warm,
            }
        )


def test_idle_cpu_after_a_burst(benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    """After a burst of auto-saves (durable and not) and a load, the process's CPU over 2 s of
    idle with the event loop running (``asyncio.sleep``): under 5 ms, the issue asks. A loop
    that polls, or a thread that spins or watches for work, shows here; the threads that
    spent more than 0.1 ms of it are named in ``extra_info``."""
    messages = conversation(LONG + BURST + 1)
    stores = [FileSessionStore(tmp_path / "durable"), FileSessionStore(tmp_path / "no-fsync", fsync=False)]
    rounds = [autosave_round(loop, store, messages, LONG) for store in stores]
    spent: dict[str, float] = {}

    def burst() -> None:
        async def saves() -> None:
            for _ in range(BURST):
                for _, one_message in rounds:
                    await one_message()
            assert await stores[0].load(rounds[0][0]) is not None

        loop.run_until_complete(saves())

    def idle() -> None:
        threads = _threads_cpu_ns()
        cpu = time.process_time()
        loop.run_until_complete(asyncio.sleep(IDLE_SECONDS))
        spent["idle cpu ms (target < 5)"] = (time.process_time() - cpu) * 1e3
        after = _threads_cpu_ns()
        for name, ns in after.items():
            if ns - threads.get(name, 0) > 100_000:
                spent[f"idle cpu ms, {name}"] = (ns - threads.get(name, 0)) / 1e6
        spent["threads"] = len(after) or threading.active_count()

    benchmark.group = "idle after a burst"
    benchmark.extra_info.update(saves=BURST * len(stores), idle_s=IDLE_SECONDS)
    benchmark.pedantic(idle, setup=burst, rounds=1, iterations=1)
    benchmark.extra_info.update(spent)
    for store, (session_id, _) in zip(stores, rounds, strict=True):
        stored = loop.run_until_complete(store.load(session_id))
        assert stored is not None
        assert stored.messages == messages[: LONG + BURST]
