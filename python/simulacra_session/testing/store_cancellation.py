"""Cancellation with one meaning, on every store: a cancelled write either never started or
completed before ``CancelledError`` reached the caller, never landing afterwards.

Each write is cancelled after a number of event loop iterations, and after short random
pauses (a write handed to a thread is cancelled mid-way). What the store holds when the
caller hears of the cancellation must be the state before or after the write, and stay so:
the loop's end (``asyncio.run``) waits for the work its threads still run, and the session
is read again after it, and again after a write to another session (a cancelled write kept
to be sent with the next one lands then). Each failure names the contract and the point of
cancellation.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from ..protocols import AppendableSessionStore, SessionStore
from .helpers import StoreFixture, msg, run, texts

__all__ = ["StoreCancellationContract"]

CANCEL = (
    "SessionStore: a cancelled write never started, or completed before CancelledError reached the caller"
)

_Write = Callable[[], Coroutine[Any, Any, Any]]


async def _cancel(store: SessionStore, write: _Write, wait: float | int) -> tuple[bool, list[str] | None]:
    """Start ``write``, cancel it after ``wait`` (loop iterations, or seconds), await it: whether
    the caller was told it was cancelled, and the session's messages then."""
    task = asyncio.ensure_future(write())
    if isinstance(wait, int):
        for _ in range(wait):
            await asyncio.sleep(0)
    else:
        await asyncio.sleep(wait)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        told = True
    else:
        told = False
    stored = await store.load("c")
    return told, None if stored is None else texts(stored.messages)


class StoreCancellationContract(StoreFixture):
    """A cancelled ``save``, ``append`` (when the store has it) and ``delete``."""

    @pytest.mark.parametrize("operation", ["save", "append", "delete"])
    def test_a_cancelled_write_never_lands_afterwards(self, store: SessionStore, operation: str) -> None:
        writes: dict[str, _Write] = {
            "save": lambda: store.save("c", [msg("a"), msg("b")]),
            "delete": lambda: store.delete("c"),
        }
        if isinstance(store, AppendableSessionStore):
            appending = store
            writes["append"] = lambda: appending.append("c", [msg("b")])
        if operation not in writes:
            pytest.skip("optional capability: the store has no append() (AppendableSessionStore)")
        before, after = ["a"], None if operation == "delete" else ["a", "b"]
        seed = random.randrange(2**32)
        pauses = random.Random(seed).sample(range(1, 3000), 4)
        points: list[float | int] = [*range(8), *(pause / 1e6 for pause in pauses)]
        for point in points:
            where = f"{operation} cancelled after {point!r} (seed {seed})"
            if run(store.load("c")) is not None:
                run(store.delete("c"))
            run(store.save("c", [msg("a")]))
            told, seen = run(_cancel(store, writes[operation], point))
            assert seen in (before, after), f"{CANCEL}: {where}: the store holds {seen}"
            if not told:
                assert seen == after, f"{CANCEL}: {where}: it returned, yet the store holds {seen}"
            stored = run(store.load("c"))  # the loop has ended: any work its threads ran is done
            now = None if stored is None else texts(stored.messages)
            assert now == seen, f"{CANCEL}: {where}: it landed after the caller was told ({seen} -> {now})"
            run(store.save("other", [msg("x")]))  # nor with a later write, to another session
            stored = run(store.load("c"))
            later = None if stored is None else texts(stored.messages)
            assert later == seen, f"{CANCEL}: {where}: it landed with a later write ({seen} -> {later})"
