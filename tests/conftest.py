"""Shared test set-up: a hypothesis profile sized for a 2-core CI machine, the ``hotpath``
fixture that runs a test on both backends in one process, and a way to make a file cold
(its pages out of the page cache)."""

from __future__ import annotations

import ctypes
import mmap
import os
import time
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")


@pytest.fixture(params=["_native", "_fallback"], ids=["native", "pure"])
def hotpath(request: pytest.FixtureRequest) -> ModuleType:
    """Each backend's hot-path module in turn: the compiled extension (skipped when it is
    not built, except on CI) and its pure-Python twin."""
    try:
        return import_module(f"simulacra_session.{request.param}")
    except ImportError:
        if request.param != "_native" or os.environ.get("CI") == "true":
            raise
        pytest.skip("the compiled extension is not built")


def _resident_pages(fd: int, size: int) -> list[bool]:
    """Which pages of the file are in the page cache (``mincore``: reading nothing, so
    starting no readahead)."""
    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    pages = (size + page - 1) // page
    vector = (ctypes.c_ubyte * pages)()
    with mmap.mmap(fd, size, access=mmap.ACCESS_COPY) as mapped:  # private: the file is untouched
        start = ctypes.c_char.from_buffer(mapped)
        try:
            if libc.mincore(ctypes.byref(start), ctypes.c_size_t(size), vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
        finally:
            del start  # the buffer export must end before the map closes
    return [bool(flag & 1) for flag in vector]


def _evict(path: Path, attempts: int = 50) -> bool:
    """Drop the file's pages from the page cache; whether any is gone (tmpfs keeps them).

    A page still under I/O (readahead an earlier read started) outlives a drop, so the drop
    is repeated until no page is left, or none went at all, or ``attempts`` ran out.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages stay
        size = os.fstat(fd).st_size
        resident = [True]
        for _ in range(attempts):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            resident = _resident_pages(fd, size) if size else [True]
            if all(resident) or not any(resident):
                break
            time.sleep(0.001)
        return not all(resident)
    finally:
        os.close(fd)


@pytest.fixture
def evict() -> Callable[[Path], bool]:
    """``evict(path)``: the file's pages dropped from the page cache, and whether they went."""
    if not all(hasattr(os, name) for name in ("posix_fadvise", "preadv", "RWF_NOWAIT")):
        pytest.skip("no posix_fadvise or RWF_NOWAIT here")
    return _evict
