"""SessionManager's save queue across event loops and cancellations: an auto-save cut short by
``asyncio.run``'s clean-up is written by the next flush (not again on the loop closing); a
``CancelledError`` a store raises itself is a failure, reported once, not a write retried for
ever; a write made with no loop running waits for one in flight on a loop left open, or
takes up one left on a closed loop (or one that ended as its loop stopped); a flush on another
loop than a write stalled on one that is not running raises instead of waiting for ever. On
the memory and the file store; run on each backend."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import (
    EventLoopError,
    FileSessionStore,
    InMemorySessionStore,
    JsonObject,
    LifecycleErrorEvent,
    Revision,
    SessionError,
    SessionManager,
    SessionStore,
    SimpleConversation,
    StoreError,
)
from simulacra_session.testing import msg, texts

#: Long enough for any write here; only turns a hang into a failure.
GUARD = 30

_Write = Callable[..., Awaitable[Revision]]


class Stalls:
    """A store's writes, stalled or failed on demand (mixed into a real store).

    ``hold`` makes the next write wait ``"before"`` it lands or ``"after"`` (landed, not yet
    heard of) until ``release`` is set or the write is cancelled, and set ``held`` (an event
    the test makes on its loop); ``stop_loop`` makes the next write stop its event loop as it
    ends; ``cancels`` writes raise ``CancelledError`` themselves, as a driver whose pool closes
    does. ``late`` counts the writes begun on a loop after a held write was cancelled there.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.hold: str | None = None
        self.held = asyncio.Event()
        self.release: asyncio.Future[None] | None = None
        self.stop_loop = False
        self.cancels = 0
        self.raised = 0
        self.cancelled_on: asyncio.AbstractEventLoop | None = None
        self.late = 0

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        return await self._write(super().save, id, messages, metadata, expected)  # type: ignore[misc]

    async def append(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        return await self._write(super().append, id, messages, metadata, expected)  # type: ignore[misc]

    async def _write(
        self,
        write: _Write,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None,
        expected: Revision | None,
    ) -> Revision:
        loop = asyncio.get_running_loop()
        if loop is self.cancelled_on:
            self.late += 1
        if self.cancels:
            self.cancels -= 1
            self.raised += 1
            raise asyncio.CancelledError  # the store's own code: nobody cancelled the write
        hold, self.hold = self.hold, None
        stop, self.stop_loop = self.stop_loop, False
        try:
            if hold == "before":
                await self._wait(loop)
            revision = await write(id, messages, metadata, expected=expected)
            if hold == "after":
                await self._wait(loop)
            return revision
        finally:
            if stop:
                loop.stop()

    async def _wait(self, loop: asyncio.AbstractEventLoop) -> None:
        self.release = loop.create_future()
        self.held.set()
        try:
            await self.release
        except asyncio.CancelledError:
            self.cancelled_on = loop
            raise


class StalledMemory(Stalls, InMemorySessionStore):
    pass


class StalledFile(Stalls, FileSessionStore):
    pass


Stalled = StalledMemory | StalledFile


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Stalled:
    return StalledMemory() if request.param == "memory" else StalledFile(tmp_path)


def watched(store: SessionStore) -> tuple[SessionManager, SimpleConversation, list[LifecycleErrorEvent]]:
    """A manager on ``store``, its lifecycle errors collected."""
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    errors: list[LifecycleErrorEvent] = []
    manager.on("lifecycle_error", errors.append)
    return manager, conversation, errors


def write_task(session_id: str) -> asyncio.Task[Any]:
    """The task of the write in flight for ``session_id``."""
    (task,) = [
        task for task in asyncio.all_tasks() if task.get_name() == f"simulacra-session save {session_id}"
    ]
    return task


async def stored_texts(store: SessionStore, session_id: str) -> list[str]:
    stored = await store.load(session_id)
    assert stored is not None
    return texts(stored.messages)


def stored_now(store: SessionStore, session_id: str) -> list[str]:
    """What the store holds, read with no event loop running."""
    return asyncio.run(stored_texts(store, session_id))


async def say_held(store: Stalled, conversation: SimpleConversation, text: str, hold: str) -> None:
    """Add a message whose auto-save is held ``hold`` it lands; return once it is."""
    store.hold, store.held = hold, asyncio.Event()
    conversation.append(msg(text))
    await asyncio.wait_for(store.held.wait(), GUARD)


# -- a write cancelled by someone else: asyncio.run closing, say ------------------------


@pytest.mark.parametrize("hold", ["before", "after"])
def test_an_auto_save_cut_short_by_asyncio_run_is_written_by_the_next_flush(
    store: Stalled, hold: str
) -> None:
    """asyncio.run's clean-up cancels the write in flight: it is not started again on the loop
    closing (where a store's thread work fails: its executor is shut down), but kept for the
    next flush, on the next loop, which writes it (checking first whether it landed)."""
    manager, conversation, errors = watched(store)

    async def first() -> str:
        session_id = manager.start_new("cut short")
        await manager.flush()
        await say_held(store, conversation, "m1", hold)
        return session_id

    session_id = asyncio.run(first())
    assert store.cancelled_on is not None  # the write was cancelled in flight
    assert store.late == 0  # and nothing written again on the loop closing

    async def second() -> list[str]:
        await asyncio.wait_for(manager.flush(), GUARD)
        return await stored_texts(store, session_id)

    assert asyncio.run(second()) == ["m1"]
    assert errors == []


def test_an_auto_save_in_flight_when_asyncio_run_returns_is_not_lost(tmp_path: Path) -> None:
    """The audit's case on the plain file store, whose writes go to a thread: the save
    asyncio.run's clean-up cancelled is written by the next flush, no error reported."""
    store = FileSessionStore(tmp_path)
    manager, conversation, errors = watched(store)
    session_id = manager.start_new()  # no loop running: written at once

    async def turn() -> None:
        conversation.append(msg("m1"))  # returns with its auto-save in flight

    asyncio.run(turn())

    async def later() -> list[str]:
        await asyncio.wait_for(manager.flush(), GUARD)
        return await stored_texts(store, session_id)

    assert asyncio.run(later()) == ["m1"]
    assert errors == []


@pytest.mark.parametrize("then", ["flush", "message"])
async def test_a_write_cancelled_with_nobody_waiting_goes_with_the_next_flush(
    store: Stalled, then: str
) -> None:
    """Kept rather than started again at once, the write another task cancelled on a loop that
    goes on is written by the next flush, or with the next message: nothing waits for ever."""
    manager, conversation, errors = watched(store)
    session_id = manager.start_new("cancelled")
    await manager.flush()
    await say_held(store, conversation, "m1", "before")
    task = write_task(session_id)
    task.cancel()
    await asyncio.wait([task])  # its end is settled (the writer hears of it first)
    expected = ["m1"]
    if then == "message":
        conversation.append(msg("m2"))
        expected.append("m2")
    await asyncio.wait_for(manager.flush(), GUARD)
    assert await stored_texts(store, session_id) == expected
    assert errors == []


# -- a CancelledError the store raises itself ---------------------------------------------


async def test_a_cancelled_error_the_store_raises_itself_fails_the_write_once(store: Stalled) -> None:
    """Nobody cancelled the write: it failed (a driver's pool closing under it), and is
    reported as a StoreError naming the session and the call, not tried again and again."""
    manager, conversation, errors = watched(store)
    session_id = manager.start_new("pool closing")
    await manager.flush()
    store.cancels = 5  # were it retried, the sixth try would land
    conversation.append(msg("m1"))
    await asyncio.wait_for(manager.flush(), GUARD)
    assert store.raised == 1
    assert [type(event.error) for event in errors] == [StoreError]
    assert errors[0].context == {"session_id": session_id}
    message = str(errors[0].error)
    assert session_id in message
    assert "append" in message
    assert "CancelledError" in message
    with pytest.raises(StoreError, match=rf"{session_id}.*save.*CancelledError"):
        await asyncio.wait_for(manager.save(), GUARD)  # an explicit save raises it
    assert store.raised == 2
    store.cancels = 0
    conversation.append(msg("m2"))
    await asyncio.wait_for(manager.flush(), GUARD)
    assert await stored_texts(store, session_id) == ["m1", "m2"]
    assert len(errors) == 1


# -- a write made with no event loop running ----------------------------------------------


def test_a_sync_write_takes_up_a_write_left_on_a_closed_loop(store: Stalled) -> None:
    """A sync wrapper closed its loop with a write in flight (landed, unheard of): the next
    message, added with no loop running, is written at once after it, not beside it."""
    manager, conversation, errors = watched(store)
    session_id = manager.start_new("sync wrapper")  # no loop running: written at once
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(say_held(store, conversation, "m1", "after"))
    finally:
        loop.close()
    conversation.append(msg("m2"))  # no loop running: written at once
    assert stored_now(store, session_id) == ["m1", "m2"]
    assert errors == []


def test_a_sync_write_waits_for_a_write_on_a_loop_not_running(store: Stalled) -> None:
    """A sync wrapper's loop, kept open, stopped with a write in flight: a message added with
    no loop running is queued behind that write (not written beside it, which would conflict
    with it), and goes once that loop runs the write to its end."""
    manager, conversation, errors = watched(store)
    session_id = manager.start_new("long-lived loop")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(say_held(store, conversation, "m1", "after"))
        conversation.append(msg("m2"))  # no loop running
        assert errors == []
        assert stored_now(store, session_id) == ["m1"]  # queued

        async def finish() -> list[str]:
            assert store.release is not None
            store.release.set_result(None)
            await asyncio.wait_for(manager.flush(), GUARD)
            return await stored_texts(store, session_id)

        assert loop.run_until_complete(finish()) == ["m1", "m2"]
    finally:
        loop.close()
    assert errors == []


# -- a write that ended on a loop not running ----------------------------------------------


@pytest.mark.parametrize("then", ["sync", "other loop"])
def test_a_write_that_ended_on_a_loop_not_running_is_taken_up(store: Stalled, then: str) -> None:
    """A write that ended as its loop stopped (its report waits for that loop to run again) is
    settled by the next call from elsewhere: a message added with no loop running is written
    at once after it, and a flush on another loop returns."""
    manager, conversation, errors = watched(store)
    session_id = manager.start_new("stopped")
    loop = asyncio.new_event_loop()
    try:

        async def turn() -> None:
            store.stop_loop = True
            conversation.append(msg("m1"))

        started = loop.create_task(turn())
        guard = loop.call_later(GUARD, loop.stop)  # only a guard: the write stops it
        loop.run_forever()  # until the write ends, stopping the loop
        guard.cancel()
        assert started.done()
        assert not store.stop_loop
        if then == "sync":
            conversation.append(msg("m2"))  # no loop running: written at once
            assert stored_now(store, session_id) == ["m1", "m2"]
        else:

            async def other() -> list[str]:
                await asyncio.wait_for(manager.flush(), GUARD)
                return await stored_texts(store, session_id)

            assert asyncio.run(other()) == ["m1"]
    finally:
        loop.close()
    assert errors == []


# -- a write in flight on another loop, not running ----------------------------------------


def test_waiting_on_another_loop_for_a_write_on_a_loop_not_running_raises(store: Stalled) -> None:
    """flush() and save() on a second loop, while the write in flight is on a first loop that
    is open but not running, raise an EventLoopError (a SessionError) naming the session (that
    wait would never end); the write goes on once the first loop runs again. A delete there
    raises it too, and leaves the manager on its session, the conversation as it was."""
    manager, conversation, errors = watched(store)
    session_id = manager.start_new("two loops")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(say_held(store, conversation, "m1", "before"))

        async def other() -> None:
            conversation.append(msg("m2"))  # queued behind the write in flight
            stalled = rf"session {session_id}: .*another event loop.*not running"
            with pytest.raises(EventLoopError, match=stalled) as raised:
                await asyncio.wait_for(manager.flush(), GUARD)
            assert isinstance(raised.value, SessionError)
            assert raised.value.session_id == session_id
            with pytest.raises(EventLoopError, match=stalled):
                await asyncio.wait_for(manager.save(label="refused"), GUARD)
            with pytest.raises(EventLoopError, match=stalled):
                await asyncio.wait_for(manager.delete(session_id), GUARD)
            assert manager.current_session_id == session_id  # the delete undone
            assert texts(conversation.messages) == ["m1", "m2"]

        asyncio.run(other())

        async def finish() -> list[str]:
            assert store.release is not None
            store.release.set_result(None)
            await asyncio.wait_for(manager.flush(), GUARD)
            return await stored_texts(store, session_id)

        assert loop.run_until_complete(finish()) == ["m1", "m2"]
    finally:
        loop.close()
    assert errors == []
