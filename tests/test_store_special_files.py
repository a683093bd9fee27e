"""Entries named like session files that are not regular files (a FIFO, a directory): no
read blocks on one (session files are opened without blocking, then checked with ``fstat``),
and each is an unreadable file as the docs say: skipped by ``list()`` and ``forks()`` with a
warning, ``CorruptSessionError`` naming it on ``load``, and on writes, which leave it (as they
leave a symlink); the store check's repair sets it aside, a delete removes it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from simulacra_session.doctor import check_store
from simulacra_session.errors import CorruptSessionError
from simulacra_session.stores.file import FileFormat, FileSessionStore
from simulacra_session.testing import msg

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no FIFOs on Windows")

T = TypeVar("T")
FORMATS = ["jsonl", "json"]
#: How long a call may wait before it is taken as blocked on the FIFO: a guard against a
#: hang (the FIFO is then opened for writing, which frees it), not a timing assertion.
GUARD = 30.0


def release(fifo: Path) -> None:
    """Open ``fifo``'s other end and close it, so a reader blocked opening it goes on."""
    with contextlib.suppress(OSError):  # ENXIO: nobody is opening it to read
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def finished(fifo: Path, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``'s result; the test fails if the call blocked on ``fifo`` (then freed)."""

    async def guarded() -> T:
        task = asyncio.ensure_future(call())
        done, _ = await asyncio.wait({task}, timeout=GUARD)
        if not done:
            while not task.done():
                release(fifo)
                await asyncio.wait({task}, timeout=0.1)
            task.exception()  # retrieved: the failure is the block itself
            pytest.fail(f"blocked opening the FIFO {fifo}")
        return task.result()

    return asyncio.run(guarded())


def refused(fifo: Path, call: Callable[[], Awaitable[Any]]) -> None:
    """``call()`` raises ``CorruptSessionError`` naming ``fifo``, which stays."""
    with pytest.raises(CorruptSessionError) as caught:
        finished(fifo, call)
    assert caught.value.path == str(fifo)
    assert str(fifo) in str(caught.value)
    assert fifo.is_fifo()


@pytest.fixture
def fifo_store(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[FileSessionStore, Path]:
    """A store with sessions ``p`` and ``real``, and a FIFO named as session ``x``'s file,
    indexed as a fork of ``p`` (a hard link to it), as if ``x`` had been one."""
    file_format: FileFormat = request.param
    store = FileSessionStore(tmp_path, format=file_format)
    asyncio.run(store.save("p", [msg("p")]))
    asyncio.run(store.save("real", [msg("r")], {"parent_id": "p"}))
    fifo = tmp_path / f"x.{file_format}"
    os.mkfifo(fifo)
    os.link(fifo, tmp_path / "p-forks" / fifo.name)
    return store, fifo


@pytest.mark.parametrize("fifo_store", FORMATS, indirect=True)
def test_reads_skip_or_refuse_a_fifo(
    fifo_store: tuple[FileSessionStore, Path], caplog: pytest.LogCaptureFixture
) -> None:
    store, fifo = fifo_store
    caplog.set_level(logging.WARNING, logger="simulacra_session")
    assert [m.id for m in finished(fifo, store.list)] == ["real", "p"]
    assert str(fifo) in caplog.text
    assert [m.id for m in finished(fifo, lambda: store.forks("p"))] == ["real"]
    refused(fifo, lambda: store.load("x"))
    refused(fifo, lambda: store.load_tail("x", 1))
    other = FileSessionStore(store.root, format="json" if store.format == "jsonl" else "jsonl")
    refused(fifo, lambda: other.load("x"))
    refused(fifo, lambda: store.append("x", [msg("y")]))


@pytest.mark.parametrize("fifo_store", FORMATS, indirect=True)
def test_writes_refuse_a_fifo_and_a_delete_removes_it(fifo_store: tuple[FileSessionStore, Path]) -> None:
    """A save or a conversion refuses what the store never made, as it refuses a symlink,
    and leaves it where it is (the store check sets it aside); a delete removes it."""
    store, fifo = fifo_store
    refused(fifo, lambda: store.save("x", [msg("x")]))
    refused(fifo, lambda: store.convert("x", "json" if store.format == "jsonl" else "jsonl"))
    assert finished(fifo, lambda: store.delete("x")) is True
    assert not os.path.lexists(fifo)
    assert finished(fifo, lambda: store.load("x")) is None


@pytest.mark.parametrize("fifo_store", FORMATS, indirect=True)
def test_the_store_check_names_a_fifo_and_sets_it_aside(fifo_store: tuple[FileSessionStore, Path]) -> None:
    store, fifo = fifo_store
    found = finished(fifo, lambda: check_store(store))
    assert ("unreadable", "x", str(fifo)) in {(p.kind, p.session_id, p.path) for p in found.problems}
    repaired = finished(fifo, lambda: check_store(store, repair=True))
    assert ("unreadable", "x", True) in {(p.kind, p.session_id, p.repaired) for p in repaired.problems}
    assert not os.path.lexists(fifo)
    [aside] = Path(store.root).glob(f"{fifo.name}.corrupt-*")
    assert aside.is_fifo()


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_directory_is_an_unreadable_file(tmp_path: Path, file_format: FileFormat) -> None:
    store = FileSessionStore(tmp_path, format=file_format)
    asyncio.run(store.save("real", [msg("r")]))
    directory = tmp_path / f"d.{file_format}"
    directory.mkdir()
    assert [m.id for m in asyncio.run(store.list())] == ["real"]
    with pytest.raises(CorruptSessionError) as caught:
        asyncio.run(store.load("d"))
    assert caught.value.path == str(directory)
    with pytest.raises(CorruptSessionError):
        asyncio.run(store.load_tail("d", 1))
