"""One meaning for a cancelled write: it never started, or it completed before the
``CancelledError`` reached the caller. Never a write landing after the caller was told
it was cancelled."""

from __future__ import annotations

import asyncio
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
            await asyncio.shield(future)
        except asyncio.CancelledError as cancel:
            if future.cancelled():
                raise
            caught = cancel
    if caught is not None:
        if not future.cancelled():
            future.exception()  # retrieved: the cancellation is what the caller gets
        raise caught
    return future.result()
