"""LangChain chat message history in any simulacra-session store.

``SimulacraChatMessageHistory(session_id, store)`` is a ``BaseChatMessageHistory``: give it to
``RunnableWithMessageHistory`` (or read and extend it yourself). Each LangChain message is one
store message, the JSON object ``message_to_dict`` makes (``{"type": ..., "data": ...}``), read
back with ``messages_from_dict``: tool calls, tool messages, additional kwargs, response
metadata, ids and names come back equal. ``session_id`` is any string, stored under
``session_id_for_key(session_id)`` with ``{"integration": "langchain", "key": session_id}`` in
the session's metadata.

The async methods (``aget_messages``, ``aadd_messages``, ``aclear``) run on the caller's
loop. The sync API (``messages``, ``add_messages``, ``clear``) is for plain scripts and
worker threads; the rule it follows: **each sync call runs on one event loop and the calling
thread waits for it**, the ``loop`` given or else a private loop this module runs in a daemon
thread for every history of the process (closed at exit). However many threads call, a store
meets one loop, so one store's operations never run in two threads at once. A store that is
not bound to a loop (files, memory, an ``SqlSessionStore`` on a sync engine: what
``sqlite:///``, ``postgresql+psycopg://`` and ``mysql+pymysql://`` URLs make) works either
way. A store bound to one (an ``SqlSessionStore`` on an async engine: its pooled connections
belong to the loop that opened them), or one the application also uses from async code, is
given the application's loop (``loop=``), where it is used and closed; call the sync API from
other threads then. Called from a thread whose event loop is running (a Jupyter notebook's
too), the sync API raises ``SyncCallError`` instead of blocking that loop: await the ``a*``
methods there.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from ..errors import CorruptSessionError, SessionError
from ..history import resolve_history
from ..ids import session_id_for_key
from ..protocols import SessionStore
from . import _writes
from ._imports import require
from ._owner import Owner

require("langchain_core", "langchain")  # before the imports below: a missing framework names its extra

from langchain_core.chat_history import BaseChatMessageHistory  # noqa: E402
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict  # noqa: E402

__all__ = ["INTEGRATION", "SimulacraChatMessageHistory", "SyncCallError"]

T = TypeVar("T")
#: The ``integration`` metadata key of the sessions this module writes.
INTEGRATION = "langchain"


class SyncCallError(SessionError, RuntimeError):
    """The sync API of a ``SimulacraChatMessageHistory`` cannot run where it was called: in a
    thread whose event loop is running (it would block that loop: await the ``a*`` method), or
    with a ``loop`` that is not running."""


class SimulacraChatMessageHistory(BaseChatMessageHistory):
    """The LangChain messages of ``session_id`` (any string) in ``store``, oldest first.

    ``key`` is ``session_id``, ``id`` the session it is stored as (``session_id_for_key``); a
    session another integration wrote under that id is refused (``ForeignSessionError``).
    ``aadd_messages`` is one durable ``append`` per batch on a store that has it (every bundled
    store but ``AdapterSessionStore``), whatever the history's length; on another store, a load
    and a save from the revision read (again when another writer saved meanwhile), which
    never drops another writer's batch within the process, but on an ``AdapterSessionStore``
    may across processes (its revision check is not atomic there).
    Reading resolves forks (a session forked with a ``SessionManager`` reads what it inherits
    too); ``aclear`` removes the whole history with ``history.truncate``, which keeps the
    history of forks inheriting it. ``loop``: where the sync API runs (see the module). Holds
    no messages itself: a new object over the same store, in another process, continues the
    same history.
    """

    def __init__(
        self, session_id: str, store: SessionStore, *, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        super().__init__()
        self.key = session_id
        self.id = session_id_for_key(session_id)
        self.store = store
        self._owner = Owner(store, INTEGRATION, session_id)
        self._loop = loop

    def __repr__(self) -> str:
        return f"SimulacraChatMessageHistory({self.key!r}, {self.store!r})"

    # -- async: the store's own operations ------------------------------------------------

    async def aget_messages(self) -> list[BaseMessage]:
        """The history, oldest first (inherited messages of a fork included); ``[]`` when absent."""
        resolved = await resolve_history(self.store, self.id)
        if resolved is None:
            return []
        self._owner.check(resolved.stored)
        found: list[BaseMessage] = []
        for index, item in enumerate(resolved.messages):
            try:
                found.extend(messages_from_dict([item]))
            except (KeyError, ValueError, TypeError) as error:
                raise CorruptSessionError(
                    f"message {index} of session {self.id!r} is not a LangChain message "
                    f"(message_to_dict's {{'type', 'data'}}): {type(error).__name__}: {error}"
                ) from error
        return found

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` after the history: one durable append for the batch. A message
        holding a value JSON cannot hold (``message_to_dict`` keeps Python values as they
        are: a tool's ``artifact`` of bytes or a datetime) raises ``SerializationError``
        naming the key and the session, none of the batch written."""
        if messages:
            items = [message_to_dict(message) for message in messages]
            owner = self._owner
            owner.saw(await _writes.append(self.store, self.id, items, owner.metadata, owner.seen))

    async def aclear(self) -> None:
        """Remove every message; the session stays, empty, with its metadata."""
        await _writes.clear(self.store, self.id, self._owner.metadata)

    # -- sync: the async methods, run on one loop ----------------------------------------

    @property  # the base class declares an attribute that its implementations make a property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The history (``aget_messages``), for code without a running loop."""
        return self._run_sync("messages", "aget_messages", self.aget_messages)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """``aadd_messages``, for code without a running loop."""
        batch = list(messages)
        self._run_sync("add_messages", "aadd_messages", lambda: self.aadd_messages(batch))

    def clear(self) -> None:
        """``aclear``, for code without a running loop."""
        self._run_sync("clear", "aclear", self.aclear)

    def _run_sync(self, name: str, async_name: str, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise SyncCallError(
                f"{name} of the LangChain history {self.key!r} was called in a thread whose "
                f"event loop is running and would block it: await {async_name}() there instead"
            )
        loop = self._loop if self._loop is not None else _private_loop()
        if not loop.is_running():
            raise SyncCallError(
                f"{name} of the LangChain history {self.key!r} needs its loop running: {loop!r} is not"
            )
        return asyncio.run_coroutine_threadsafe(work(), loop).result()


class _LoopThread:
    """An event loop running in a daemon thread of its own (once made), until ``stop``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        running = threading.Event()
        self.loop.call_soon(running.set)
        self._thread = threading.Thread(target=self._run, name="simulacra-session langchain", daemon=True)
        self._thread.start()
        running.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


_private: _LoopThread | None = None
_private_guard = threading.Lock()


def _private_loop() -> asyncio.AbstractEventLoop:
    """The loop the sync API runs on when given none, started on first use."""
    global _private
    with _private_guard:
        if _private is None:
            _private = _LoopThread()
        return _private.loop


@atexit.register
def _stop_private_loop() -> None:
    """At exit: the private loop finishes its executor's work and closes."""
    with _private_guard:
        if _private is not None:
            _private.stop()


def _forget_private_loop() -> None:
    """In a forked child: the parent's loop thread is not there, the next call starts one."""
    global _private, _private_guard
    _private, _private_guard = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_private_loop)
