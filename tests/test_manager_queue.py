"""SessionManager's save queue, on a store that takes its time: writes never interleave,
bursts coalesce, failures are reported and recovered from, and nothing is left behind."""

from __future__ import annotations

import asyncio

import pytest

from manager_stores import SlowStore
from simulacra_session import (
    InMemorySessionStore,
    LifecycleErrorEvent,
    SessionManager,
    SimpleConversation,
)
from simulacra_session.testing import assistant, texts
from simulacra_session.testing import msg as user


async def test_burst_coalesces_and_never_interleaves() -> None:
    store = SlowStore(delay=0.005)
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new()
    for index in range(50):
        conversation.append(user(f"m{index}"))
        if index % 10 == 0:
            await asyncio.sleep(0)
    await manager.flush()
    assert store.max_active == 1
    assert len(store.saves) <= 12  # 1 start + at most 2 writes per burst of 10, never 50
    stored = await store.load(session_id)
    assert stored is not None
    assert len(stored.messages) == 50
    assert store.saves[-1] == (session_id, 50)


async def test_failing_auto_save_emits_lifecycle_error_and_recovers() -> None:
    store = SlowStore(delay=0)
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    errors: list[LifecycleErrorEvent] = []
    manager.on("lifecycle_error", errors.append)
    session_id = manager.start_new()
    await manager.flush()
    store.fail_with = OSError(28, "No space left on device")
    conversation.append(user("lost?"))  # must not raise into the conversation
    await manager.flush()
    assert len(errors) == 1
    assert errors[0].operation == "save"
    assert errors[0].context == {"session_id": session_id}
    assert isinstance(errors[0].error, OSError)
    store.fail_with = None
    conversation.append(assistant("no"))
    await manager.flush()
    stored = await store.load(session_id)
    assert stored is not None
    assert texts(stored.messages) == ["lost?", "no"]


async def test_explicit_save_raises_store_errors() -> None:
    store = SlowStore(delay=0)
    manager = SessionManager(store, SimpleConversation(), auto_save=False)
    manager.start_new()
    store.fail_with = OSError(5, "Input/output error")
    with pytest.raises(OSError, match="Input/output"):
        await manager.save()


async def test_what_a_failed_auto_save_meant_to_store_goes_with_the_next() -> None:
    store = SlowStore(delay=0)
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    errors: list[LifecycleErrorEvent] = []
    manager.on("lifecycle_error", errors.append)
    store.fail_with = OSError(104, "Connection reset by peer")
    session_id = manager.start_new("Quarterly report")  # explicit: must win over the slug
    await manager.flush()
    store.fail_with = None
    conversation.append(user("hi there, please summarise the attached numbers"))
    await manager.flush()
    stored = await store.load(session_id)
    assert stored is not None
    assert (len(errors), stored.metadata.label, len(stored.messages)) == (1, "Quarterly report", 1)


async def test_rename_of_another_session_waits_for_its_save_in_flight() -> None:
    store = SlowStore(delay=0.01)
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    first = manager.start_new()
    conversation.append(user("one"))
    await manager.flush()
    conversation.append(user("two"))  # its auto-save is under way
    manager.start_new()
    await manager.rename(first, "renamed")
    stored = await store.load(first)
    assert stored is not None
    assert (texts(stored.messages), stored.metadata.label) == (["one", "two"], "renamed")


# -- children and sessions left -------------------------------------------------------


async def test_flush_waits_for_children() -> None:
    store = SlowStore(delay=0.01)
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    manager.start_new()
    child = conversation.spawn_child()
    child.append(user("slow child"))
    await manager.flush()
    assert store.active == {key: 0 for key in store.active}
    (child_manager,) = manager.children
    assert child_manager.current_session_id is not None
    stored = await store.load(child_manager.current_session_id)
    assert stored is not None
    assert texts(stored.messages) == ["slow child"]


async def test_a_disposed_childs_failed_save_reaches_the_parent_or_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = SlowStore(delay=0.005)
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    errors: list[LifecycleErrorEvent] = []
    manager.on("lifecycle_error", errors.append)
    manager.start_new("parent")
    child = conversation.spawn_child()
    await manager.flush()
    store.fail_with = OSError(104, "Connection reset by peer")
    child.append(assistant("the sub-agent's answer"))  # its auto-save is in flight
    child.dispose()
    await manager.flush()
    assert [event.operation for event in errors] == ["save"]
    manager.off("lifecycle_error", errors.append)
    other = conversation.spawn_child()
    other.append(assistant("nobody listens"))
    await manager.flush()
    assert "with no lifecycle_error listener" in caplog.text
    assert "Connection reset by peer" in caplog.text


async def test_sessions_left_and_children_disposed_keep_nothing() -> None:
    conversation = SimpleConversation()
    manager = SessionManager(InMemorySessionStore(), conversation)
    for index in range(30):
        manager.start_new()
        conversation.append(user(f"m{index}"))
        if index % 3 == 0:
            await manager.flush()
    await manager.flush()
    assert list(manager._writers) == [manager.current_session_id]
    for _ in range(20):
        child = conversation.spawn_child()
        child.append(user("sub-agent work"))
        child.dispose()
    await manager.flush()
    assert manager._children == []
    assert manager.children == ()
