"""A store write cancelled by an anyio cancel scope (``anyio.fail_after``, which the Claude
Agent SDK puts around its session-store writes, or a cancelled ``CancelScope``) ends as that
scope's own cancellation: a ``TimeoutError`` from ``fail_after``, nothing from a cancelled
scope, the write complete. The stores wait out a write they handed to a thread, then re-raise
the ``CancelledError`` they caught: a new one, without the scope's message, made anyio take the
cancellation for someone else's and let it escape (found by a helper's review of the adapters).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from simulacra_session import FileSessionStore, SessionStore
from simulacra_session.stores.sql import SqlSessionStore

STORES: dict[str, Callable[[Path], SessionStore]] = {
    "jsonl": lambda path: FileSessionStore(path),
    "json": lambda path: FileSessionStore(path, format="json"),
    "sqlite": lambda path: SqlSessionStore(f"sqlite:///{path / 'sessions.db'}"),
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SessionStore:
    made: SessionStore = STORES[request.param](tmp_path)
    return made


def _not_cancelling() -> None:
    """The task carries no cancellation on (Python 3.11 on counts them)."""
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):
        assert task.cancelling() == 0


async def _texts(store: SessionStore) -> list[str] | None:
    """The texts of session ``s1``'s messages; ``None`` when it is absent."""
    stored = await store.load("s1")
    return None if stored is None else [message["text"] for message in stored.messages]


async def test_fail_after_around_a_write_is_a_timeout_and_the_write_is_complete(store: SessionStore) -> None:
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0):  # the deadline has passed: the cancellation meets the write
            await store.save("s1", [{"text": "m0"}])
    _not_cancelling()
    assert await _texts(store) == ["m0"]
    await store.append("s1", [{"text": "m1"}])  # the store carries on
    assert await _texts(store) == ["m0", "m1"]


async def test_a_cancelled_scope_around_a_write_swallows_its_cancellation(store: SessionStore) -> None:
    await store.save("s1", [{"text": "m0"}])
    with anyio.CancelScope() as scope:
        scope.cancel()
        await store.append("s1", [{"text": "m1"}])
    assert scope.cancelled_caught
    _not_cancelling()
    assert await _texts(store) == ["m0", "m1"]
