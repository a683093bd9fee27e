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
    """
    future = asyncio.ensure_future(work)
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.cancelled():
                raise
            cancelled = True
    if cancelled:
        if not future.cancelled():
            future.exception()  # retrieved: the cancellation is what the caller gets
        raise asyncio.CancelledError
    return future.result()
