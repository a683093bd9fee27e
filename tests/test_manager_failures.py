"""SessionManager's saves when something goes wrong: bad metadata fails the call that gave it
and no later save, and a flush cut short (or a write cancelled by someone else, or left on
an event loop closed under it) loses no auto-save. On the memory and the file store; run on
each backend."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from manager_stores import SlowStore
from simulacra_session import (
    FileSessionStore,
    InMemorySessionStore,
    InvalidMetadataError,
    JsonObject,
    LifecycleErrorEvent,
    Revision,
    SerializationError,
    SessionError,
    SessionManager,
    SessionStore,
    SimpleConversation,
)
from simulacra_session.testing import msg, texts


class GatedMemoryStore(SlowStore):
    """The shared slow in-memory store, whose writes wait until ``opened`` is set (a write
    stays in flight while a test acts), refusing metadata that holds ``vetoed``, as a store
    with rules of its own may."""

    def __init__(self) -> None:
        super().__init__(delay=0)
        self.opened = asyncio.Event()
        self.opened.set()

    async def _write(
        self,
        write: Callable[..., Awaitable[Revision]],
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None,
        expected: Revision | None,
    ) -> Revision:
        await self.opened.wait()
        if metadata and "vetoed" in metadata:
            raise InvalidMetadataError(f"session {id}: vetoed={metadata['vetoed']!r} is refused here")
        return await super()._write(write, id, messages, metadata, expected)


class GatedFileStore(FileSessionStore):
    """A durable file store whose writes wait until ``opened`` is set (revisions checked)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened = asyncio.Event()
        self.opened.set()

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        await self.opened.wait()
        return await super().save(id, messages, metadata, expected=expected)

    async def append(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        await self.opened.wait()
        return await super().append(id, messages, metadata, expected=expected)


Gated = GatedMemoryStore | GatedFileStore


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Gated:
    return GatedMemoryStore() if request.param == "memory" else GatedFileStore(tmp_path)


async def started(store: Gated) -> tuple[SessionManager, SimpleConversation, list[LifecycleErrorEvent], str]:
    """A manager with a saved session, its lifecycle errors collected."""
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    errors: list[LifecycleErrorEvent] = []
    manager.on("lifecycle_error", errors.append)
    session_id = manager.start_new("failures")
    await manager.flush()
    return manager, conversation, errors, session_id


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


# -- metadata ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "error", "named"),
    [
        ({"score": math.nan}, SerializationError, r"nan at \$\.score"),
        ({"tags": {1, 2}}, SerializationError, r"set at \$\.tags"),
        ({"provider": 123}, InvalidMetadataError, "provider=123"),
        ({"label": 5}, InvalidMetadataError, "label=5"),
    ],
)
async def test_bad_metadata_fails_its_save_alone_while_an_auto_save_is_queued(
    store: Gated, bad: dict[str, Any], error: type[SessionError], named: str
) -> None:
    manager, conversation, errors, session_id = await started(store)
    store.opened.clear()
    conversation.append(msg("m0"))  # its auto-save in flight
    conversation.append(msg("m1"))  # queued: the bad save must not be folded into it
    saving = asyncio.ensure_future(manager.save(**bad))
    await asyncio.sleep(0)
    store.opened.set()
    with pytest.raises(error, match=named):
        await saving
    conversation.append(msg("m2"))
    await manager.flush()
    await manager.save(provider="anthropic")
    assert errors == []
    stored = await store.load(session_id)
    assert stored is not None
    assert (texts(stored.messages), stored.metadata.provider) == (["m0", "m1", "m2"], "anthropic")
    assert stored.metadata.label == "failures"


async def test_metadata_a_store_refuses_is_not_carried_into_later_saves() -> None:
    store = GatedMemoryStore()  # its rule is its own: the manager cannot check it beforehand
    manager, conversation, errors, session_id = await started(store)
    store.opened.clear()
    conversation.append(msg("m0"))
    conversation.append(msg("m1"))  # queued: the explicit save is folded into it
    saving = asyncio.ensure_future(manager.save(vetoed=True))
    await asyncio.sleep(0)
    store.opened.set()
    with pytest.raises(InvalidMetadataError, match="vetoed=True"):
        await saving
    assert [type(event.error) for event in errors] == [InvalidMetadataError]  # the auto-save's part
    conversation.append(msg("m2"))
    await manager.flush()
    await manager.save()
    assert len(errors) == 1
    assert await stored_texts(store, session_id) == ["m0", "m1", "m2"]


@pytest.mark.parametrize("label", [5, ["a"]])
async def test_start_new_with_a_bad_label_raises_at_once_and_changes_nothing(
    store: Gated, label: object
) -> None:
    """As ``save(label=...)`` and ``rename`` do: it was saved in the background, the failure
    an event, the session never stored, the conversation cleared, auto-slug turned off."""
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    kept = manager.start_new()
    conversation.append(msg("before"))
    await manager.flush()
    with pytest.raises(InvalidMetadataError, match=re.escape(f"label={label!r}")):
        manager.start_new(label)  # type: ignore[arg-type]
    assert (manager.current_session_id, texts(conversation.messages)) == (kept, ["before"])
    conversation.append(msg("after"))
    await manager.flush()
    assert await stored_texts(store, kept) == ["before", "after"]


async def test_a_failed_auto_saves_metadata_outlives_a_failed_explicit_save() -> None:
    store = GatedMemoryStore()
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    errors: list[LifecycleErrorEvent] = []
    manager.on("lifecycle_error", errors.append)
    store.fail_with = OSError(28, "No space left on device")
    session_id = manager.start_new("Quarterly report")  # in the background: it fails
    await manager.flush()
    with pytest.raises(OSError, match="No space"):
        await manager.save()  # the label goes with it, and with the next save again
    store.fail_with = None
    conversation.append(msg("hi there, please summarise the attached numbers"))
    await manager.flush()
    stored = await store.load(session_id)
    assert stored is not None
    assert (len(errors), stored.metadata.label, len(stored.messages)) == (1, "Quarterly report", 1)


# -- flush cut short, writes cancelled ----------------------------------------------------


async def test_a_flush_cut_short_loses_no_auto_save(store: Gated) -> None:
    manager, conversation, errors, session_id = await started(store)
    store.opened.clear()
    for index in range(5):
        conversation.append(msg(f"m{index}"))  # one write in flight, the rest queued
    with pytest.raises(asyncio.TimeoutError):  # not the builtin on Python 3.10
        await asyncio.wait_for(manager.flush(), timeout=0.01)  # the write waits
    store.opened.set()
    await manager.flush()
    assert errors == []
    assert await stored_texts(store, session_id) == [f"m{index}" for index in range(5)]


async def test_cancelled_while_leaving_async_with_the_saves_still_land(store: Gated) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new("failures")
    await manager.flush()
    leaving = asyncio.Event()

    async def converse() -> None:
        async with manager:
            store.opened.clear()
            for index in range(5):
                conversation.append(msg(f"m{index}"))
            leaving.set()

    task = asyncio.ensure_future(converse())
    await leaving.wait()  # the task waits in the flush of leaving `async with`
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    store.opened.set()
    await manager.flush()  # disposed: the saves under way still finish
    assert await stored_texts(store, session_id) == [f"m{index}" for index in range(5)]


async def test_a_cancelled_flush_keeps_the_waiting_of_an_explicit_save(store: Gated) -> None:
    manager, conversation, _, session_id = await started(store)
    store.opened.clear()
    conversation.append(msg("m0"))
    saving = asyncio.ensure_future(manager.save(provider="anthropic"))
    flushing = asyncio.ensure_future(manager.flush())
    await asyncio.sleep(0)
    flushing.cancel()
    with suppress(asyncio.CancelledError):
        await flushing
    store.opened.set()
    await saving  # not cancelled with the flush: it gets the outcome of its write
    stored = await store.load(session_id)
    assert stored is not None
    assert (texts(stored.messages), stored.metadata.provider) == (["m0"], "anthropic")


@pytest.mark.parametrize("waits", [0, 1, 2, 3, 5])
async def test_a_write_cancelled_by_someone_else_loses_no_auto_save(store: Gated, waits: int) -> None:
    manager, conversation, errors, session_id = await started(store)
    conversation.append(msg("m0"))  # in flight; cancelled before or after it lands
    for index in range(1, 4):
        conversation.append(msg(f"m{index}"))  # queued behind it
    for _ in range(waits):
        await asyncio.sleep(0)
    with suppress(ValueError):  # none left in flight: it landed already
        write_task(session_id).cancel()
    await manager.flush()
    assert errors == []  # not a conflict with itself either
    assert await stored_texts(store, session_id) == ["m0", "m1", "m2", "m3"]
    conversation.append(msg("m4"))
    await manager.flush()
    assert await stored_texts(store, session_id) == ["m0", "m1", "m2", "m3", "m4"]


# -- a loop closed under a write ----------------------------------------------------------


@pytest.mark.parametrize("waits", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("kind", ["memory", "file"])
def test_a_write_left_on_a_closed_loop_is_taken_up_on_the_next(tmp_path: Path, kind: str, waits: int) -> None:
    """A sync wrapper's requests, each on a new event loop closed without asyncio.run's clean-up:
    a save the first one left in flight (or landed, unheard of) or queued is written on the
    next loop, with what that one adds; flush() returns."""
    store: SessionStore = InMemorySessionStore() if kind == "memory" else FileSessionStore(tmp_path)
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    errors: list[LifecycleErrorEvent] = []
    manager.on("lifecycle_error", errors.append)
    abandoned: list[asyncio.Future[None]] = []

    async def first() -> str:
        session_id = manager.start_new("sync wrapper")
        await manager.flush()
        conversation.append(msg("m0"))
        conversation.append(msg("m1"))
        abandoned.append(asyncio.ensure_future(manager.save(provider="anthropic")))  # dies with the loop
        for _ in range(waits):
            await asyncio.sleep(0)
        return session_id  # with the saves in flight or queued

    async def second(session_id: str) -> list[str]:
        conversation.append(msg("m2"))
        await asyncio.wait_for(manager.flush(), timeout=60)  # only a guard: it never hangs
        await manager.save(model="claude")
        return await stored_texts(store, session_id)

    loop = asyncio.new_event_loop()
    session_id = loop.run_until_complete(first())
    loop.close()
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(second(session_id)) == ["m0", "m1", "m2"]
        stored = loop.run_until_complete(store.load(session_id))
    finally:
        loop.close()
    assert errors == []
    assert stored is not None
    assert (stored.metadata.label, stored.metadata.model) == ("sync wrapper", "claude")
