"""Benchmark set-up: the compiled backend must be live, and the gc frozen while timing."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import simulacra_session


def pytest_configure(config: pytest.Config) -> None:
    if simulacra_session.BACKEND != "native" and not os.environ.get("SIMULACRA_SESSION_PURE"):
        raise pytest.UsageError("benchmarks need the compiled extension (pip install .)")


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
