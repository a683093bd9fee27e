"""Benchmark set-up: the compiled backend must be live, the gc frozen while timing, and the
share of CPU time the hypervisor stole during the run recorded with the results."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import simulacra_session


def _cpu_ticks() -> list[int] | None:
    """The machine's CPU time so far, by kind (``/proc/stat``: user, nice, system, idle,
    iowait, irq, softirq, steal, ...), or ``None`` off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            return [int(field) for field in stat.readline().split()[1:]]
    except OSError:
        return None


_TICKS_AT_START = _cpu_ticks()


def pytest_configure(config: pytest.Config) -> None:
    if simulacra_session.BACKEND != "native" and not os.environ.get("SIMULACRA_SESSION_PURE"):
        raise pytest.UsageError("benchmarks need the compiled extension (pip install .)")


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    """Record the share of CPU time the hypervisor took from this VM during the run (steal):
    on a shared host it slows every figure, and the table says so."""
    now = _cpu_ticks()
    if _TICKS_AT_START is None or now is None or len(now) < 8:
        return
    spent = [after - before for after, before in zip(now, _TICKS_AT_START, strict=True)]
    total = sum(spent[:8])
    if total:
        output_json["machine_info"]["cpu_steal_percent"] = round(100 * spent[7] / total, 1)


@pytest.fixture(autouse=True)
def _frozen_gc() -> Iterator[None]:
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def _settled_disk() -> None:
    """Flush what earlier set-ups wrote without syncing (the listing corpus is ~190 MB), so its
    writeback does not land in this benchmark's fdatasyncs."""
    if hasattr(os, "sync"):
        os.sync()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop of the test's own, to time one coroutine at a time on."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()
