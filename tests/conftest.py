"""Shared test set-up: a hypothesis profile sized for a 2-core CI machine, the
``hotpath`` fixture that runs a test on both backends in one process, and, with
``SIMULACRA_TEST_LOOP=uvloop``, every event loop (pytest-asyncio's and ``asyncio.run``'s) a
uvloop one, as many agent servers run."""

from __future__ import annotations

import os
from importlib import import_module
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")

if os.environ.get("SIMULACRA_TEST_LOOP") == "uvloop":
    import asyncio

    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


@pytest.fixture(params=["_native", "_pure"], ids=["native", "pure"])
def hotpath(request: pytest.FixtureRequest) -> ModuleType:
    """Each backend's hot-path module in turn: the compiled extension (skipped when it is
    not built, except on CI) and its pure-Python twin."""
    try:
        return import_module(f"simulacra_session.{request.param}")
    except ImportError:
        if request.param != "_native" or os.environ.get("CI") == "true":
            raise
        pytest.skip("the compiled extension is not built")
