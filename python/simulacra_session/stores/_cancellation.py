"""One meaning for a cancelled write: it never started, or it completed before the
``CancelledError`` reached the caller. Never a write landing after the caller was told
it was cancelled."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["finish"]

_T = TypeVar("_T")


async def finish(work: Awaitable[_T]) -> _T:
    """Await ``work`` to its end even when cancelled meanwhile; then re-raise the cancellation.

    A write handed to a thread cannot be called back, so the caller waits for it: when
    ``CancelledError`` reaches the caller, the write and the store's state are complete.
    The cancellation re-raised is the one caught, message and all: anyio's cancel scopes
    (``fail_after``, which the Claude Agent SDK puts around its writes) know theirs by it.
    """
    future = asyncio.ensure_future(work)
    caught: asyncio.CancelledError | None = None
    while not future.done():
        try:
            await (asyncio.shield(future) if caught is None else _sheltered(future))
        except asyncio.CancelledError as cancel:
            if future.cancelled():
                raise
            caught = cancel
    if caught is not None:
        if not future.cancelled():
            future.exception()  # retrieved: the cancellation is what the caller gets
        raise caught
    return future.result()


async def _sheltered(future: asyncio.Future[_T]) -> None:
    """Wait for ``future`` once cancelled: an anyio cancel scope (when anyio is in use) cancels
    its task again on every loop turn until the task leaves it, so the loop would spin for as
    long as the write takes; inside a shielded scope of anyio's own, it waits asleep."""
    anyio = sys.modules.get("anyio")
    if anyio is None:
        await asyncio.shield(future)
        return
    with anyio.CancelScope(shield=True):
        await asyncio.shield(future)
