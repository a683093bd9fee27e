"""A SessionManager's auto-save that failed with ``StoreError`` may have landed: the next write
first reads the session to tell. When that read fails too (the server still down), the write
that may have landed is still the one to look for once the store answers again: taking the
next request, never written, for it left every later auto-save refused with ``ConflictError``
until ``recover()`` (found by a review of bbfed76).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from manager_stores import Watched
from simulacra_session import InMemorySessionStore, JsonObject, SimpleConversation, StoreError
from simulacra_session.messages import Message
from simulacra_session.models import Revision, StoredSession
from simulacra_session.testing import msg, run, texts


class DownStore(InMemorySessionStore):
    """A real in-memory store behind a server that can go down: ``lose_reply`` makes the next
    append land and then fail as a connection lost at the commit; ``down`` fails every call."""

    def __init__(self) -> None:
        super().__init__()
        self.lose_reply = False
        self.down = False
        self.gate: asyncio.Event | None = None  # set: loads wait for it (a slow read)
        self.reading = asyncio.Event()

    def _refuse(self, operation: str, id: str) -> None:
        if self.down:
            raise StoreError(f"{operation} of session {id!r} failed: connection refused")

    async def load(self, id: str) -> StoredSession | None:
        self._refuse("load", id)
        if self.gate is not None:
            self.reading.set()
            await self.gate.wait()
        return await super().load(id)

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        self._refuse("save", id)
        return await super().save(id, messages, metadata, expected=expected)

    async def append(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        self._refuse("append", id)
        revision = await super().append(id, messages, metadata, expected=expected)
        if self.lose_reply:  # committed, then the server went away before answering
            self.lose_reply = False
            self.down = True
            raise StoreError(f"append of session {id!r} failed: whether it was committed is unknown")
        return revision


def test_auto_saves_go_on_when_the_store_stays_down_past_the_next_write() -> None:
    store = DownStore()
    watched = Watched(store)

    async def talk() -> str:
        session_id = await watched.start()
        store.lose_reply = True
        await watched.say("m2")  # lands; its answer is lost
        await watched.say("m3")  # the server is still down: the read to tell fails
        store.down = False  # back
        await watched.say("m4", "m5")
        return session_id

    session_id = run(talk())
    assert [type(event.error) for event in watched.errors] == [StoreError, StoreError]
    stored = run(store.load(session_id))
    assert stored is not None
    assert texts(stored.messages) == ["m1", "m2", "m3", "m4", "m5"]


class RawConversation(SimpleConversation):
    """A conversation of the user's own: it keeps each message as given (no JSON copy), which
    the ``Conversation`` protocol allows (saved messages are only treated as immutable)."""

    def append(self, message: Message) -> Message:
        self._messages.append(message)
        self._events.emit("message_complete", message)
        return message


def test_a_write_that_landed_is_known_by_its_messages_as_stored() -> None:
    """The write that may have landed is compared with the session as JSON holds it: a message
    holding a tuple (a list once stored) made it look unlanded, and every later auto-save failed
    with ``ConflictError``."""
    store = DownStore()
    watched = Watched(store, RawConversation())

    async def talk() -> str:
        session_id = await watched.start()
        store.lose_reply = True
        watched.conversation.append({**msg("m2"), "span": (3, 5)})  # type: ignore[arg-type]  # lands; its answer is lost
        await watched.manager.flush()
        store.down = False
        await watched.say("m3", "m4")
        return session_id

    session_id = run(talk())
    assert [type(event.error) for event in watched.errors] == [StoreError]
    stored = run(store.load(session_id))
    assert stored is not None
    assert texts(stored.messages) == ["m1", "m2", "m3", "m4"]
    assert stored.messages[1]["span"] == [3, 5]


def test_a_write_cancelled_in_its_read_to_tell_keeps_the_unsure_one_to_look_for() -> None:
    """The same when the next write is cancelled (by someone else) while it reads the session:
    it wrote nothing, so the write that may have landed is still the one to look for."""
    store = DownStore()
    watched = Watched(store)

    async def talk() -> str:
        session_id = await watched.start()
        store.lose_reply = True
        await watched.say("m2")  # lands; its answer is lost
        store.down = False
        store.gate = gate = asyncio.Event()
        watched.conversation.append(msg("m3"))  # its write first reads the session, slowly
        await store.reading.wait()
        (task,) = [
            task for task in asyncio.all_tasks() if task.get_name() == f"simulacra-session save {session_id}"
        ]
        task.cancel()
        store.gate = None
        gate.set()
        await watched.manager.flush()
        await watched.say("m4")
        return session_id

    session_id = run(talk())
    assert [type(event.error) for event in watched.errors] == [StoreError]
    stored = run(store.load(session_id))
    assert stored is not None
    assert texts(stored.messages) == ["m1", "m2", "m3", "m4"]
