"""Shared test set-up: a hypothesis profile sized for a 2-core CI machine, and a way to
make a file cold (its pages out of the page cache)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")


def _evict(path: Path) -> bool:
    """Drop the file's pages from the page cache; whether they are gone (tmpfs keeps them).

    The check reads the last byte without waiting: a miss there starts readahead from that
    page on (to the end of the file), so a file of a few pages keeps its start uncached.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages stay
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        try:
            os.preadv(fd, [bytearray(1)], max(0, os.fstat(fd).st_size - 1), os.RWF_NOWAIT)
        except BlockingIOError:
            return True
        return False
    finally:
        os.close(fd)


@pytest.fixture
def evict() -> Callable[[Path], bool]:
    """``evict(path)``: the file's pages dropped from the page cache, and whether they went."""
    if not all(hasattr(os, name) for name in ("posix_fadvise", "preadv", "RWF_NOWAIT")):
        pytest.skip("no posix_fadvise or RWF_NOWAIT here")
    return _evict
