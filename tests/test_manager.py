"""SessionManager behaviour: auto-save, slugs, load, fork chains, children, delete, events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import (
    CheckpointState,
    CorruptSessionError,
    FileSessionStore,
    InMemorySessionStore,
    InvalidSessionIdError,
    LifecycleErrorEvent,
    LoadEvent,
    Message,
    NoActiveSessionError,
    SaveEvent,
    SessionManager,
    SessionNotFoundError,
    SessionStore,
    SimpleConversation,
)


def user(text: str, **extra: Any) -> Message:
    return {"role": "user", "content": [{"type": "text", "text": text}], **extra}  # type: ignore[typeddict-item]


def assistant(text: str, **extra: Any) -> Message:
    return {"role": "assistant", "content": [{"type": "text", "text": text}], **extra}  # type: ignore[typeddict-item]


def texts(messages: Sequence[Message]) -> list[str]:
    return [m["content"][0]["text"] for m in messages]  # type: ignore[typeddict-item]


class SlowStore(InMemorySessionStore):
    """A real in-memory store whose saves take time and are counted, to observe queuing."""

    def __init__(self, delay: float = 0.01) -> None:
        super().__init__()
        self.delay = delay
        self.saves: list[tuple[str, int]] = []
        self.active: dict[str, int] = {}
        self.max_active = 0
        self.fail_with: BaseException | None = None
        self.appends = 0

    async def save(
        self, id: str, messages: Sequence[Message], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await self._write(super().save, id, messages, metadata)

    async def append(
        self, id: str, messages: Sequence[Message], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await self._write(super().append, id, messages, metadata)
        self.appends += 1

    async def _write(
        self,
        write: Callable[[str, Sequence[Message], Mapping[str, Any] | None], Awaitable[None]],
        id: str,
        messages: Sequence[Message],
        metadata: Mapping[str, Any] | None,
    ) -> None:
        self.active[id] = self.active.get(id, 0) + 1
        self.max_active = max(self.max_active, self.active[id])
        try:
            await asyncio.sleep(self.delay)
            if self.fail_with is not None:
                raise self.fail_with
            await write(id, messages, metadata)
            stored = await super().load(id)
            assert stored is not None
            self.saves.append((id, len(stored.messages)))
        finally:
            self.active[id] -= 1


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SessionStore:
    if request.param == "memory":
        return InMemorySessionStore()
    return FileSessionStore(tmp_path / "sessions")


# -- start_new / auto-save ------------------------------------------------------------


def test_start_new_without_loop_persists_at_once(store: SessionStore) -> None:
    conversation = SimpleConversation([user("old")])
    manager = SessionManager(store, conversation)
    session_id = manager.start_new("first")
    assert conversation.messages == ()
    assert manager.current_session_id == session_id
    assert manager.is_loaded
    stored = asyncio.run(store.load(session_id))
    assert stored is not None
    assert stored.metadata.label == "first"
    assert stored.messages == []


def test_start_new_without_auto_save_or_label_writes_nothing(store: SessionStore) -> None:
    manager = SessionManager(store, SimpleConversation(), auto_save=False)
    manager.start_new()
    assert asyncio.run(store.list()) == []


def test_sync_appends_save_at_once_without_a_loop(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new()
    conversation.append(user("hello there"))
    conversation.append(assistant("hi"))
    stored = asyncio.run(store.load(session_id))
    assert stored is not None
    assert texts(stored.messages) == ["hello there", "hi"]
    assert stored.metadata.label == "hello there"


async def test_auto_save_after_each_message(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    saved: list[SaveEvent] = []
    manager.on("save", saved.append)
    session_id = manager.start_new()
    conversation.append(user("hello"))
    await manager.flush()
    conversation.append(assistant("hi"))
    await manager.flush()
    stored = await store.load(session_id)
    assert stored is not None
    assert texts(stored.messages) == ["hello", "hi"]
    assert stored.metadata.message_count == 2
    assert saved[-1].id == session_id
    assert texts(saved[-1].messages) == ["hello", "hi"]
    assert all(isinstance(m.get("id"), str) and isinstance(m.get("timestamp"), int) for m in stored.messages)


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


async def test_raising_listener_never_breaks_a_save(
    store: SessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)

    def broken(event: SaveEvent) -> None:
        raise RuntimeError("listener bug")

    manager.on("save", broken)
    session_id = manager.start_new()
    with caplog.at_level(logging.ERROR, logger="simulacra_session"):
        conversation.append(user("still saved"))
        await manager.flush()
    stored = await store.load(session_id)
    assert stored is not None
    assert texts(stored.messages) == ["still saved"]
    assert "listener bug" in caplog.text


async def test_save_metadata_extra_and_reserved(store: SessionStore) -> None:
    manager = SessionManager(store, SimpleConversation([user("x")]), auto_save=False)
    with pytest.raises(NoActiveSessionError, match="no active session"):
        await manager.save()
    session_id = manager.start_new()
    await manager.save(provider="anthropic", model="claude", team={"name": "ops"})
    stored = await store.load(session_id)
    assert stored is not None
    assert stored.metadata.provider == "anthropic"
    assert stored.metadata.model == "claude"
    assert stored.metadata.model_extra == {"team": {"name": "ops"}}
    for key in ("updated_at", "parent_id", "message_count", "detached"):
        with pytest.raises(ValueError, match=key):
            await manager.save(**{key: "x"})


# -- slugs ----------------------------------------------------------------------------


async def test_auto_slug_derived_once_from_first_user_text(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new()
    conversation.append(assistant("greeting first"))
    conversation.append(user("  Please   summarize the quarterly report for the board meeting tomorrow  "))
    await manager.flush()
    conversation.append(user("something else entirely"))
    await manager.flush()
    stored = await store.load(session_id)
    assert stored is not None
    assert stored.metadata.label == "Please summarize the quarterly report for the"


async def test_explicit_label_wins_over_slug(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new("My label")
    conversation.append(user("derived text"))
    await manager.flush()
    stored = await store.load(session_id)
    assert stored is not None
    assert stored.metadata.label == "My label"
    await manager.rename(session_id, "Renamed")
    conversation.append(user("more"))
    await manager.flush()
    stored = await store.load(session_id)
    assert stored is not None
    assert stored.metadata.label == "Renamed"


async def test_auto_slug_off(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation, auto_slug=False)
    session_id = manager.start_new()
    conversation.append(user("no label please"))
    await manager.flush()
    stored = await store.load(session_id)
    assert stored is not None
    assert stored.metadata.label is None


# -- load -----------------------------------------------------------------------------


async def test_load_most_recent_and_new_on_empty(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    loaded = await manager.load()  # empty store: a new session
    assert loaded == manager.current_session_id
    conversation.append(user("first"))
    await manager.flush()
    second = manager.start_new()
    conversation.append(user("second"))
    await manager.flush()
    other = SimpleConversation()
    reader = SessionManager(store, other)
    events: list[LoadEvent] = []
    reader.on("load", events.append)
    assert await reader.load() == second
    assert texts(other.messages) == ["second"]
    assert events[0].id == second
    assert texts(events[0].messages) == ["second"]
    assert await reader.load(loaded) == loaded
    assert texts(other.messages) == ["first"]


async def test_load_missing_and_invalid(store: SessionStore) -> None:
    manager = SessionManager(store, SimpleConversation())
    with pytest.raises(SessionNotFoundError, match="session not found: nope"):
        await manager.load("nope")
    for bad in ("../etc/passwd", "a/b", ".hidden", "", "x" * 129):
        with pytest.raises(InvalidSessionIdError):
            await manager.load(bad)
        with pytest.raises(InvalidSessionIdError):
            await manager.fork(bad)
        with pytest.raises(InvalidSessionIdError):
            await manager.delete(bad)
        with pytest.raises(InvalidSessionIdError):
            await manager.rename(bad, "x")
        with pytest.raises(InvalidSessionIdError):
            await manager.forks(bad)


async def test_load_restores_checkpoint_state(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new()
    conversation.checkpoint_state = CheckpointState(message_id="m1", summary="so far")
    conversation.append(user("a"))
    await manager.flush()
    other = SimpleConversation()
    await SessionManager(store, other).load(session_id)
    assert other.checkpoint_state == CheckpointState(message_id="m1", summary="so far")


# -- forks ----------------------------------------------------------------------------


async def test_attached_fork_stores_only_its_own_messages(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    parent = manager.start_new()
    conversation.extend([user("p1"), assistant("p2")])
    await manager.flush()
    fork = await manager.fork(parent)
    assert manager.current_session_id == fork
    assert texts(conversation.messages) == ["p1", "p2"]
    conversation.append(user("f1"))
    await manager.flush()
    stored = await store.load(fork)
    assert stored is not None
    assert texts(stored.messages) == ["f1"]
    assert stored.metadata.parent_id == parent
    assert stored.metadata.fork_message_count == 2
    assert stored.metadata.fork_message_id == conversation.messages[1]["id"]
    assert not stored.metadata.detached
    assert [m.id for m in await manager.forks(parent)] == [fork]


async def test_fork_resolves_to_parent_history_at_fork_time_without_ids(store: SessionStore) -> None:
    # messages without ids: the original library would inherit whatever the parent grows to
    await store.save("parent", [user("p1"), user("p2")])
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation, auto_save=False)
    fork = await manager.fork("parent")
    await store.save("parent", [user("p1"), user("p2"), user("p3 later")])
    other = SimpleConversation()
    await SessionManager(store, other).load(fork)
    assert texts(other.messages) == ["p1", "p2"]


async def test_fork_of_missing_parent(store: SessionStore) -> None:
    manager = SessionManager(store, SimpleConversation())
    with pytest.raises(SessionNotFoundError, match="ghost"):
        await manager.fork("ghost")


async def test_deep_fork_chain_resolves_without_recursion(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    current = manager.start_new()
    depth = 300
    for level in range(depth):
        conversation.append(user(f"level {level}"))
        await manager.flush()
        current = await manager.fork(current)
    other = SimpleConversation()
    await SessionManager(store, other).load(current)
    assert texts(other.messages) == [f"level {level}" for level in range(depth)]


async def test_fork_cycle_is_corrupt(store: SessionStore) -> None:
    await store.save("a", [user("a")], {"parent_id": "b"})
    await store.save("b", [user("b")], {"parent_id": "a"})
    with pytest.raises(CorruptSessionError, match="cycle"):
        await SessionManager(store, SimpleConversation()).load("a")


async def test_detached_fork(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    parent = manager.start_new()
    conversation.checkpoint_state = CheckpointState(message_id="x", summary="sum")
    conversation.append(user("parent msg"))
    await manager.flush()
    side = SimpleConversation([user("own start")])
    side_manager = SessionManager(store, side)
    fork = await side_manager.fork(parent, detached=True)
    assert texts(side.messages) == ["own start"]
    assert side.checkpoint_state == CheckpointState(message_id="x", summary="sum")
    stored = await store.load(fork)
    assert stored is not None
    assert stored.metadata.detached is True
    assert stored.metadata.parent_id == parent
    assert texts(stored.messages) == ["own start"]
    other = SimpleConversation()
    await SessionManager(store, other).load(fork)
    assert texts(other.messages) == ["own start"]


async def test_attached_fork_copies_checkpoint_state(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    parent = manager.start_new()
    conversation.checkpoint_state = CheckpointState(message_id="c", summary="s")
    conversation.append(user("x"))
    await manager.flush()
    fresh = SimpleConversation()
    fork = await SessionManager(store, fresh).fork(parent)
    stored = await store.load(fork)
    assert stored is not None
    assert stored.metadata.checkpoint_state == CheckpointState(message_id="c", summary="s")
    assert fresh.checkpoint_state == CheckpointState(message_id="c", summary="s")


# -- delete ---------------------------------------------------------------------------


async def test_delete_keeps_fork_history(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    root = manager.start_new()
    conversation.extend([user("r1"), assistant("r2")])
    await manager.flush()
    child = await manager.fork(root)
    conversation.append(user("c1"))
    await manager.flush()
    grandchild = await manager.fork(child)
    conversation.append(user("g1"))
    await manager.flush()
    before = {}
    for session_id in (child, grandchild):
        probe = SimpleConversation()
        await SessionManager(store, probe).load(session_id)
        before[session_id] = texts(probe.messages)

    deleter = SessionManager(store, SimpleConversation())
    assert await deleter.delete(root) is True
    assert await store.load(root) is None
    for session_id, expected in before.items():
        probe = SimpleConversation()
        await SessionManager(store, probe).load(session_id)
        assert texts(probe.messages) == expected
    assert await deleter.delete(root) is False


async def test_delete_current_session(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new()
    conversation.append(user("bye"))
    assert await manager.delete(session_id) is True
    assert manager.current_session_id is None
    assert not manager.is_loaded
    assert conversation.messages == ()
    assert await store.load(session_id) is None


async def test_rename_other_session_and_missing(store: SessionStore) -> None:
    await store.save("other", [user("keep me")], {"label": "old"})
    manager = SessionManager(store, SimpleConversation())
    await manager.rename("other", "new")
    stored = await store.load("other")
    assert stored is not None
    assert stored.metadata.label == "new"
    assert texts(stored.messages) == ["keep me"]
    with pytest.raises(SessionNotFoundError):
        await manager.rename("missing", "x")
    with pytest.raises(ValueError, match="label"):
        await manager.rename("other", "")


# -- children -------------------------------------------------------------------------


async def test_child_conversations_get_detached_fork_sessions(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    parent = manager.start_new()
    conversation.append(user("parent talk"))
    child = conversation.spawn_child()
    child.append(user("child task: look things up"))
    checkpoint = conversation.spawn_child(is_checkpoint=True)
    checkpoint.append(user("summarize everything"))
    await manager.flush()
    forks = await manager.forks(parent)
    assert len(forks) == 2
    by_checkpoint = {bool(meta.is_checkpoint): meta for meta in forks}
    child_meta, checkpoint_meta = by_checkpoint[False], by_checkpoint[True]
    assert child_meta.detached is True
    assert child_meta.label == "child task: look things up"
    assert checkpoint_meta.label is None
    stored = await store.load(child_meta.id)
    assert stored is not None
    assert texts(stored.messages) == ["child task: look things up"]
    assert len(manager.children) == 2
    child.dispose()
    assert len(manager.children) == 1
    child.append(user("after dispose"))  # no longer saved
    await manager.flush()
    stored = await store.load(child_meta.id)
    assert stored is not None
    assert len(stored.messages) == 1


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


# -- events and lifecycle -------------------------------------------------------------


async def test_dispose_is_idempotent_and_follows_conversation(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    disposed: list[bool] = []
    manager.on("dispose", lambda: disposed.append(True))
    session_id = manager.start_new()
    conversation.dispose()
    manager.dispose()
    assert disposed == [True]
    conversation.append(user("not saved"))
    await manager.flush()  # the save start_new queued still lands after dispose
    stored = await store.load(session_id)
    assert stored is not None
    assert stored.messages == []
    with pytest.raises(RuntimeError, match="disposed"):
        manager.start_new()


async def test_async_with_flushes(store: SessionStore) -> None:
    conversation = SimpleConversation()
    async with SessionManager(store, conversation) as manager:
        session_id = manager.start_new()
        conversation.append(user("flushed on exit"))
    stored = await store.load(session_id)
    assert stored is not None
    assert texts(stored.messages) == ["flushed on exit"]


def test_sync_with_disposes(store: SessionStore) -> None:
    conversation = SimpleConversation()
    with SessionManager(store, conversation) as manager:
        manager.start_new()
    conversation.append(user("ignored"))


def test_unknown_event_and_bad_store() -> None:
    manager = SessionManager(InMemorySessionStore(), SimpleConversation())
    with pytest.raises(ValueError, match="unknown event"):
        manager.on("saved", print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SessionStore"):
        SessionManager(object(), SimpleConversation())  # type: ignore[arg-type]


async def test_messages_before_start_are_not_lost(store: SessionStore) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    conversation.append(user("early"))
    await manager.flush()
    assert manager.current_session_id is not None
    stored = await store.load(manager.current_session_id)
    assert stored is not None
    assert texts(stored.messages) == ["early"]


# -- delta saves ----------------------------------------------------------------------


async def test_appends_only_new_messages_and_falls_back_to_full_saves() -> None:
    store = SlowStore(delay=0)
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new()
    await manager.flush()
    conversation.append(user("one"))
    await manager.flush()
    conversation.append(user("two"))
    await manager.flush()
    assert store.appends == 2  # start_new wrote the session; both messages were appended

    await manager.save(full=True)  # explicit rewrite
    assert store.appends == 2

    history = list(conversation.messages)
    history[0] = user("one, edited")  # an earlier message object replaced
    conversation.load(history)
    conversation.append(user("three"))
    await manager.flush()
    assert store.appends == 2
    stored = await store.load(session_id)
    assert stored is not None
    assert texts(stored.messages) == ["one, edited", "two", "three"]

    store.fail_with = OSError(5, "Input/output error")
    conversation.append(user("four"))
    await manager.flush()
    store.fail_with = None
    conversation.append(user("five"))  # after a failed save: rewrite, nothing lost
    await manager.flush()
    assert store.appends == 2
    stored = await store.load(session_id)
    assert stored is not None
    assert texts(stored.messages) == ["one, edited", "two", "three", "four", "five"]

    conversation.append(user("six"))
    await manager.flush()
    assert store.appends == 3

    other = SimpleConversation()
    reader = SessionManager(store, other)
    await reader.load(session_id)  # after load: the first write rewrites
    other.append(user("seven"))
    await reader.flush()
    assert store.appends == 3
    other.append(user("eight"))
    await reader.flush()
    assert store.appends == 4
    stored = await store.load(session_id)
    assert stored is not None
    assert texts(stored.messages)[-3:] == ["six", "seven", "eight"]
