"""Locks by session id that every event loop and thread of the process shares.

An ``asyncio.Lock`` serves the one loop it is first used on, and writers of one session may
run on several (a loop per thread; LangChain's private loop beside the application's), or
through several store objects. These locks are granted in turn, first come first served, to
waiters of any loop, each woken on its own loop; a waiter never blocks its loop's thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["SharedLocks"]


class SharedLocks:
    """One lock per id, made on first use and dropped when nobody holds or awaits it."""

    __slots__ = ("_guard", "_queues")

    def __init__(self) -> None:
        self._guard = threading.Lock()
        #: per held id, the turns of those awaiting it, oldest first (a turn: a future of the
        #: waiter's loop, given a result when the lock passes to it)
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}
        if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's holders
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._guard = threading.Lock()
        self._queues = {}

    @asynccontextmanager
    async def held(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s lock, awaiting it on the running loop while another holds it."""
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] | None = None
        with self._guard:
            queue = self._queues.get(key)
            if queue is None:
                self._queues[key] = deque()
            else:
                turn = loop.create_future()
                queue.append(turn)
        if turn is not None:
            await self._wait(key, turn)
        try:
            yield
        finally:
            self._pass_on(key)

    async def _wait(self, key: str, turn: asyncio.Future[None]) -> None:
        """Await ``turn``; cancelled, leave the queue, or pass on the lock when it came meanwhile."""
        try:
            await turn
        except asyncio.CancelledError:
            with self._guard:
                queue = self._queues[key]  # there while anyone holds the lock or awaits it
                if turn in queue:
                    queue.remove(turn)
                    raise
            if not turn.cancelled():  # given the lock as the cancellation came
                self._pass_on(key)
            # else the lock is on its way to this cancelled turn: _grant passes it on
            raise

    def _pass_on(self, key: str) -> None:
        """Give ``key``'s lock to the oldest waiter whose loop can still wake it, or drop the
        lock when none waits."""
        while True:
            with self._guard:
                queue = self._queues[key]
                if not queue:
                    del self._queues[key]
                    return
                turn = queue.popleft()
            try:
                turn.get_loop().call_soon_threadsafe(self._grant, key, turn)
                return
            except RuntimeError:  # its loop is closed: nobody will take that turn
                continue

    def _grant(self, key: str, turn: asyncio.Future[None]) -> None:
        """On the waiter's loop: its turn has come, unless it was cancelled meanwhile."""
        if turn.cancelled():
            self._pass_on(key)
        else:
            turn.set_result(None)
