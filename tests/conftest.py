"""Shared test set-up: a hypothesis profile sized for a 2-core CI machine and the
``hotpath`` fixture that runs a test on both backends in one process."""

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
