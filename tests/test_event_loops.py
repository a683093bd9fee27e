"""The suite's event loop: uvloop's when ``SIMULACRA_TEST_LOOP=uvloop`` asks for it (the test
command runs the suite once so), so that run cannot fall back to asyncio's loop unnoticed."""

from __future__ import annotations

import asyncio
import os

import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("SIMULACRA_TEST_LOOP") != "uvloop", reason="SIMULACRA_TEST_LOOP=uvloop runs it"
)


def _is_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    return type(loop).__module__.split(".")[0] == "uvloop"


async def test_async_tests_run_on_uvloop() -> None:
    assert _is_uvloop(asyncio.get_running_loop())


def test_asyncio_run_runs_on_uvloop() -> None:
    async def loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert _is_uvloop(asyncio.run(loop()))
