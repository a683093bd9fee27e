"""SessionManager behaviour on stores built to observe it: queuing, coalescing, failures, deltas.

What a manager does on any store (auto-save, slugs, load, forks, children, delete, events)
is ``simulacra_session.testing.SessionManagerConformance``, which every bundled store runs
(tests/test_store_memory.py, tests/test_store_file.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import (
    CheckpointState,
    FileSessionStore,
    InMemorySessionStore,
    LifecycleErrorEvent,
    Message,
    SessionManager,
    SimpleConversation,
    StoredSession,
)
from simulacra_session.testing import (
    SessionManagerConformance,
    SessionStoreContract,
    assistant,
    texts,
)
from simulacra_session.testing import msg as user


def test_conformance_halves_share_no_test_name() -> None:
    """A name in both would silently shadow one half's test in SessionStoreConformance."""
    manager = {name for name in vars(SessionManagerConformance) if name.startswith("test")}
    contract = {name for name in vars(SessionStoreContract) if name.startswith("test")}
    assert manager
    assert contract
    assert not manager & contract


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


# -- the save queue -------------------------------------------------------------------


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


# -- children -------------------------------------------------------------------------


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


# -- events ---------------------------------------------------------------------------


def test_unknown_event_and_bad_store() -> None:
    manager = SessionManager(InMemorySessionStore(), SimpleConversation())
    with pytest.raises(ValueError, match="unknown event"):
        manager.on("saved", print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SessionStore"):
        SessionManager(object(), SimpleConversation())  # type: ignore[arg-type]


# -- delta saves ----------------------------------------------------------------------


@pytest.mark.parametrize("base", [InMemorySessionStore, FileSessionStore])
async def test_a_subclass_overriding_append_has_it_called(tmp_path: Path, base: type[Any]) -> None:
    """The stores' task-free append path is taken only where ``append`` is the store's own."""
    calls: list[int] = []

    class Counting(base):  # type: ignore[misc,valid-type]
        async def append(
            self, id: str, messages: Sequence[Message], metadata: Mapping[str, Any] | None = None
        ) -> None:
            calls.append(len(messages))
            await super().append(id, messages, metadata)

    store = Counting() if base is InMemorySessionStore else Counting(tmp_path)
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new()
    await manager.flush()
    for text in ("one", "two"):
        conversation.append(user(text))
        await manager.flush()
    assert calls == [1, 1]
    stored = await store.load(session_id)
    assert stored is not None
    assert texts(stored.messages) == ["one", "two"]


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


class LoadCountingStore(InMemorySessionStore):
    """A real in-memory store that records which sessions were loaded."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.fail_saves = False

    async def load(self, id: str) -> StoredSession | None:
        self.loads.append(id)
        return await super().load(id)

    async def save(
        self, id: str, messages: Sequence[Message], metadata: Mapping[str, Any] | None = None
    ) -> None:
        self._check_disk()
        await super().save(id, messages, metadata)

    async def append(
        self, id: str, messages: Sequence[Message], metadata: Mapping[str, Any] | None = None
    ) -> None:
        self._check_disk()
        await super().append(id, messages, metadata)

    def _check_disk(self) -> None:
        if self.fail_saves:
            raise OSError(28, "No space left on device")


async def test_fork_of_the_saved_current_session_reads_only_the_parent() -> None:
    store = LoadCountingStore()
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    current = manager.start_new()
    for level in range(20):
        conversation.append(user(f"level {level}"))
        await manager.flush()
        store.loads.clear()
        parent, current = current, await manager.fork(current)
        assert store.loads == [parent]  # its metadata (checkpoint state), not the chain
    conversation.checkpoint_state = CheckpointState(message_id="m", summary="s")
    conversation.append(user("last"))
    await manager.flush()
    tip = await manager.fork(current)
    other = SimpleConversation()
    await SessionManager(store, other).load(tip)
    assert texts(other.messages) == [f"level {level}" for level in range(20)] + ["last"]
    assert other.checkpoint_state == CheckpointState(message_id="m", summary="s")


async def test_fork_of_an_unsaved_current_session_reads_the_store() -> None:
    store = LoadCountingStore()
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation, auto_save=False)
    root = manager.start_new("root")
    conversation.append(user("saved"))
    await manager.save()
    child = await manager.fork(root)
    conversation.append(user("not saved"))
    store.loads.clear()
    await manager.fork(child)  # the stored history, as it always was: the unsaved message is not in it
    assert store.loads == [child, root]
    assert texts(conversation.messages) == ["saved"]

    talking = SimpleConversation()
    auto = SessionManager(store, talking)
    session = auto.start_new()
    talking.append(user("kept"))
    await auto.flush()
    store.fail_saves = True
    talking.append(user("lost"))
    await auto.flush()
    store.fail_saves = False
    store.loads.clear()
    await auto.fork(session)  # after a failed save the store is read
    assert store.loads == [session]
    assert texts(talking.messages) == ["kept"]


# -- found in review: each test fails on the code before its fix ----------------------


class RemoteStore(InMemorySessionStore):
    """The memory store behind a network round trip: every call yields to the loop first."""

    async def list(self, *, limit: int | None = None, offset: int = 0) -> list[Any]:
        await asyncio.sleep(0.01)
        return await super().list(limit=limit, offset=offset)

    async def delete(self, id: str) -> bool:
        await asyncio.sleep(0.01)
        return await super().delete(id)


class ProtocolOnlyStore:
    """A store written against ``SessionStore`` alone (no bundled base), recording its pages."""

    def __init__(self) -> None:
        self.inner = InMemorySessionStore()
        self.pages: list[tuple[int | None, int]] = []

    async def save(
        self, id: str, messages: Sequence[Message], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await self.inner.save(id, messages, metadata)

    async def load(self, id: str) -> StoredSession | None:
        return await self.inner.load(id)

    async def list(self, *, limit: int | None = None, offset: int = 0) -> list[Any]:
        self.pages.append((limit, offset))
        return await self.inner.list(limit=limit, offset=offset)

    async def delete(self, id: str) -> bool:
        return await self.inner.delete(id)


async def test_list_pages_in_the_store_through_the_protocol() -> None:
    store = ProtocolOnlyStore()
    manager = SessionManager(store, SimpleConversation())
    ids = [manager.start_new(f"s{index}") for index in range(4)]
    await manager.flush()
    assert [m.id for m in await manager.list()] == ids[::-1]
    assert [m.id for m in await manager.list(limit=2, offset=1)] == ids[2:0:-1]
    assert await manager.list(offset=9) == []
    with pytest.raises(ValueError, match="negative"):
        await manager.list(limit=-1)
    assert await manager.load() == ids[-1]  # the most recent, listed with limit=1
    assert store.pages == [(None, 0), (2, 1), (None, 9), (-1, 0), (1, 0)]  # each page the store's own


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


async def test_a_message_completed_during_delete_goes_to_a_new_session() -> None:
    store = RemoteStore()
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    deleted = manager.start_new("A")
    conversation.append(user("one"))
    await manager.flush()
    asyncio.get_running_loop().call_later(0.005, conversation.append, assistant("late"))
    assert await manager.delete(deleted)
    await manager.flush()
    assert await store.load(deleted) is None
    current = manager.current_session_id
    assert current not in (None, deleted)
    stored = await store.load(current)
    assert stored is not None
    assert texts(stored.messages) == ["late"]


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


@pytest.mark.parametrize("inherited", [1, 3])
async def test_clearing_an_attached_fork_detaches_it_with_what_follows(inherited: int) -> None:
    store = InMemorySessionStore()
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    parent = manager.start_new()
    for index in range(inherited):
        conversation.append(user(f"a{index}"))
    fork = await manager.fork(parent)
    conversation.clear()
    conversation.append(user("x1"))
    conversation.append(assistant("x2"))
    await manager.flush()
    stored = await store.load(fork)
    assert stored is not None
    assert texts(stored.messages) == ["x1", "x2"]
    assert (stored.metadata.parent_id, stored.metadata.detached) == (parent, True)
    reader = SessionManager(store, SimpleConversation())
    await reader.load(fork)
    assert texts(reader.conversation.messages) == ["x1", "x2"]


async def test_a_history_loaded_over_an_attached_fork_detaches_it() -> None:
    store = InMemorySessionStore()
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    parent = manager.start_new()
    conversation.append(user("a0"))
    conversation.append(user("a1"))
    fork = await manager.fork(parent)
    conversation.append(user("b0"))
    await manager.flush()
    conversation.load([*conversation.messages])  # equal copies: still inherits
    conversation.append(user("b1"))
    await manager.flush()
    conversation.load([user("z0"), user("z1"), user("z2")])  # other messages, as long
    conversation.append(user("z3"))
    await manager.flush()
    reader = SessionManager(store, SimpleConversation())
    await reader.load(fork)
    assert texts(reader.conversation.messages) == ["z0", "z1", "z2", "z3"]
