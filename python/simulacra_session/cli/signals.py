"""How the command meets SIGTERM and SIGINT: each raises where the command is (``Terminated``,
``KeyboardInterrupt``), so what it was doing is undone as for an error; except where a raise
would leave a thread it started running after it returned. There the signal waits, for the
event loop's next callback or for ``asyncio.run``'s clean-up to end, and is raised then."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

__all__ = ["Terminated", "interruptible", "run"]

_T = TypeVar("_T")

_held: list[type[KeyboardInterrupt]] | None = None
"""While ``asyncio.run`` cleans up after the command (in the main thread): the signals come
meanwhile, raised once it has."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever the command is, so that what it was doing is undone as for
    Ctrl-C. A ``KeyboardInterrupt``: asyncio passes it on as it does Ctrl-C's, where another
    exception raised in its own code would be logged and dropped as a callback's error."""


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(main)``; but a signal coming once ``main`` has ended is raised when
    ``asyncio.run`` has cleaned up (cancelled what ``main`` left, shut its executor down), unless
    ``main`` failed: its error stands. Raised within, it cut the clean-up short: the executor's
    threads ran on after the command returned (on uvloop failing, the loop closed under them)."""
    if threading.current_thread() is not threading.main_thread():  # signals go to the main one
        return asyncio.run(main)
    global _held

    async def command() -> _T:
        global _held
        try:
            return await main
        finally:
            _held = []

    try:
        done = asyncio.run(command())
    finally:
        held, _held = _held, None
    if held:
        raise held[0]
    return done


def _raising(error: type[KeyboardInterrupt]) -> Callable[[int, FrameType | None], None]:
    """A signal's handler raising ``error`` where the command is; but one landing as a thread
    is started (its pool not told of it yet: ``Thread.start`` runs it, then waits for it) is
    raised as the event loop's next callback, and one landing in ``asyncio.run``'s clean-up
    once it ends (``run``). Raised there, it left a worker of the loop's executor out of the
    pool: ``asyncio.run`` returned without waiting for the work the worker had taken, whose
    warnings then came after "terminated", no longer the command's."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if _held is not None or not _starting_a_thread(frame):
            _raise(error)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to hand it to: a thread started outside one
            raise error from None
        loop.call_soon_threadsafe(_raise, error)

    return handler


def _starting_a_thread(frame: FrameType | None) -> bool:
    """Whether ``frame`` or a caller's runs in the standard library's thread machinery
    (``threading``, the executor's pool), where an exception can orphan a running thread.
    Nothing is imported here: the signal may land in an import (the pool's, on Python 3.13)."""
    pool = sys.modules.get("concurrent.futures.thread")
    machinery = {threading.__file__, getattr(pool, "__file__", None)}
    while frame is not None:
        if frame.f_code.co_filename in machinery:
            return True
        frame = frame.f_back
    return False


def _raise(error: type[KeyboardInterrupt]) -> None:
    """Raise ``error``, or hold it while ``asyncio.run`` cleans up (``run``). Also a loop
    callback: asyncio passes a ``KeyboardInterrupt`` raised in one on."""
    if _held is None:
        raise error
    _held.append(error)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Meanwhile, SIGTERM raises ``Terminated`` and SIGINT ``KeyboardInterrupt`` (unless a
    handler of the program's own is set for it) through ``_raising``, where Python lets a
    handler be set: in the main thread (``main`` called in another keeps the process's)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers = {signal.SIGTERM: _raising(Terminated)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        handlers[signal.SIGINT] = _raising(KeyboardInterrupt)
    kept = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in kept.items():
            signal.signal(signum, handler)
