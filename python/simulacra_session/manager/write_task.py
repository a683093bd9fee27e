"""The task a session's write runs in: started eagerly where Python can (3.12+), and able to
tell a cancellation someone asked for (``task.cancel()``: the loop closing, a caller) from a
``CancelledError`` the store's own code raised (a driver's pool closing under the write),
which is a failure of the write like any other, not a reason to write it again."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

__all__ = ["cancel_requested", "start"]


if sys.version_info >= (3, 12):

    def start(write: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``write`` as a task that starts at once (eagerly), up to its first wait: an
        append's bytes are written, and a durable one handed to the sync thread, within the
        call that submitted it, a loop iteration sooner."""
        return asyncio.Task(write, loop=asyncio.get_running_loop(), name=name, eager_start=True)

elif sys.version_info >= (3, 11):

    def start(write: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``write`` as a task (eager start needs Python 3.12)."""
        return asyncio.get_running_loop().create_task(write, name=name)

else:

    class _WriteTask(asyncio.Task[None]):
        """A task that remembers whether someone asked to cancel it (Python 3.10 has no
        ``Task.cancelling``)."""

        cancel_asked = False

        def cancel(self, msg: Any = None) -> bool:
            self.cancel_asked = True
            return super().cancel(msg)

    def start(write: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``write`` as a task that remembers a cancel (eager start needs Python 3.12)."""
        return _WriteTask(write, loop=asyncio.get_running_loop(), name=name)


if sys.version_info >= (3, 11):

    def cancel_requested() -> bool:
        """Whether someone asked to cancel the task running now (else a ``CancelledError``
        caught in it was raised by the code it awaited)."""
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

else:

    def cancel_requested() -> bool:
        """Whether someone asked to cancel the task running now: only a write's task (see
        ``start``) knows; ``asyncio.run``'s, which a sync write runs in, nobody else cancels."""
        task = asyncio.current_task()
        return isinstance(task, _WriteTask) and task.cancel_asked
