"""A store write cancelled by an anyio cancel scope (``anyio.fail_after``, which the Claude
Agent SDK puts around its session-store writes, or a cancelled ``CancelScope``) ends as that
scope's own cancellation: a ``TimeoutError`` from ``fail_after``, nothing from a cancelled
scope, the write complete. The stores wait out a write they handed to a thread, then re-raise
the ``CancelledError`` they caught: a new one, without the scope's message, made anyio take the
cancellation for someone else's and let it escape (found by a helper's review of the adapters).
"""

from __future__ import annotations

import asyncio
import selectors
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from simulacra_session import FileSessionStore
from simulacra_session.stores._cancellation import finish
from simulacra_session.stores.sql import SqlSessionStore

Writable = FileSessionStore | SqlSessionStore
STORES: dict[str, Callable[[Path], Writable]] = {
    "jsonl": lambda path: FileSessionStore(path),
    "json": lambda path: FileSessionStore(path, format="json"),
    "sqlite": lambda path: SqlSessionStore(f"sqlite:///{path / 'sessions.db'}"),
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Writable]:
    made: Writable = STORES[request.param](tmp_path)
    yield made
    if isinstance(made, SqlSessionStore):
        asyncio.run(made.close())  # its engine's connections: closed, not left to the collector


def _not_cancelling() -> None:
    """The task carries no cancellation on (Python 3.11 on counts them)."""
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):
        assert task.cancelling() == 0


async def _texts(store: Writable) -> list[str] | None:
    """The texts of session ``s1``'s messages; ``None`` when it is absent."""
    stored = await store.load("s1")
    return None if stored is None else [message["text"] for message in stored.messages]


async def test_fail_after_around_a_write_is_a_timeout_and_the_write_is_complete(store: Writable) -> None:
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0):  # the deadline has passed: the cancellation meets the write
            await store.save("s1", [{"text": "m0"}])
    _not_cancelling()
    assert await _texts(store) == ["m0"]
    await store.append("s1", [{"text": "m1"}])  # the store carries on
    assert await _texts(store) == ["m0", "m1"]


async def test_a_cancelled_scope_around_a_write_swallows_its_cancellation(store: Writable) -> None:
    await store.save("s1", [{"text": "m0"}])
    with anyio.CancelScope() as scope:
        scope.cancel()
        await store.append("s1", [{"text": "m1"}])
    assert scope.cancelled_caught
    _not_cancelling()
    assert await _texts(store) == ["m0", "m1"]


class _CountingSelector(selectors.DefaultSelector):
    """The event loop's selector, counting its waits: one per turn of the loop."""

    turns = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self.turns += 1
        return super().select(timeout)


def test_a_write_cancelled_by_an_anyio_scope_is_waited_for_asleep() -> None:
    """Once anyio's scope has cancelled the task, it cancels it again on every turn of the loop
    until the task leaves the scope; the store waits out its write in a shielded scope of its
    own, so the loop sleeps meanwhile instead of turning thousands of times (a core busy)."""
    selector = _CountingSelector()
    loop = asyncio.SelectorEventLoop(selector)
    written = threading.Event()

    async def cancelled_write() -> int:
        threading.Timer(0.3, written.set).start()  # the write the thread does ends then
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.01):
                await finish(asyncio.to_thread(written.wait))
        return selector.turns

    try:
        turns = loop.run_until_complete(cancelled_write())
    finally:
        loop.close()
    assert written.is_set()
    assert turns < 100  # spinning, the loop turned some 10,000 times in the 0.3 s
