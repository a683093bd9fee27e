"""What a SessionManager's saves write, read from the conversation's history: only the new
messages where they followed the last save (through the ``AppendOnlyConversation`` history
view or by comparison), a rewrite otherwise; what forks inherit and read back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from manager_stores import SlowStore
from simulacra_session import (
    AppendOnlyConversation,
    CheckpointState,
    FileSessionStore,
    InMemorySessionStore,
    JsonObject,
    Message,
    Revision,
    SessionManager,
    SimpleConversation,
    StoredSession,
)
from simulacra_session._emitter import Emitter, Listener
from simulacra_session.testing import assistant, texts
from simulacra_session.testing import msg as user

# -- the history view -----------------------------------------------------------------


class ListConversation:
    """A conversation engine written against ``Conversation`` alone: its history is a list
    that ``load`` and ``clear`` replace; reads of ``messages`` (a copy each) are counted."""

    def __init__(self) -> None:
        self._history: list[Message] = []
        self._events = Emitter()
        self.is_checkpoint = False
        self.checkpoint_state: CheckpointState | None = None
        self.reads = 0

    @property
    def messages(self) -> Sequence[Message]:
        self.reads += 1
        return tuple(self._history)

    def add(self, *messages: Message) -> None:
        self._history.extend(messages)
        self._events.emit("message_complete", messages[-1])

    def load(self, messages: Sequence[Message]) -> None:
        self._history = list(messages)

    def clear(self) -> None:
        self._history = []

    def on(self, event: str, listener: Listener) -> None:
        self._events.on(event, listener)

    def off(self, event: str, listener: Listener) -> None:
        self._events.off(event, listener)

    def once(self, event: str, listener: Listener) -> None:
        self._events.once(event, listener)


class ViewConversation(ListConversation):
    """The same engine, an ``AppendOnlyConversation``: ``history`` is its list itself."""

    @property
    def history(self) -> Sequence[Message]:
        return self._history


def test_simple_conversation_hands_out_its_history_view_and_snapshots() -> None:
    conversation = SimpleConversation()
    assert isinstance(conversation, AppendOnlyConversation)
    view = conversation.history
    conversation.append(user("one"))
    conversation.extend([user("two"), user("three")])
    assert conversation.history is view
    assert texts(view) == ["one", "two", "three"]
    snapshot = conversation.messages  # what users read: a copy that never changes
    conversation.append(user("four"))
    assert (type(snapshot), texts(snapshot)) == (tuple, ["one", "two", "three"])
    conversation.load(view[:2])
    loaded = conversation.history
    assert loaded is not view  # a history not grown at its end is in a new sequence
    assert texts(view) == ["one", "two", "three", "four"]
    conversation.clear()
    assert conversation.history is not loaded
    assert (texts(loaded), conversation.history) == (["one", "two"], [])


async def test_messages_that_are_not_objects_are_saved_labelled_and_forked() -> None:
    """A message need not be a JSON object (a framework's item may be a list): the label
    derived from the first user message, and a fork's last message id, failed on one with
    ``AttributeError`` (the auto-save raising into the conversation)."""
    store = InMemorySessionStore()
    conversation = ListConversation()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new()
    conversation.add(["item", 1])  # type: ignore[arg-type]  # deliberately not a JsonObject
    conversation.add(user("hello there"), 7)  # type: ignore[arg-type]  # deliberately not one
    await manager.flush()
    stored = await store.load(session_id)
    assert stored is not None
    messages: Sequence[object] = stored.messages  # typed JsonObject; here they are not
    assert (messages[0], messages[-1], stored.metadata.label) == (["item", 1], 7, "hello there")
    fork = await manager.fork(session_id)
    forked = await store.load(fork)
    assert forked is not None
    assert (forked.metadata.fork_message_count, forked.metadata.fork_message_id) == (3, None)


@pytest.mark.parametrize("kind", [ViewConversation, ListConversation])
async def test_an_auto_save_at_message_10001_appends_one_message(kind: type[ListConversation]) -> None:
    assert isinstance(kind(), AppendOnlyConversation) == (kind is ViewConversation)
    store = SlowStore(delay=0)
    conversation = kind()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new()
    conversation.add(*[user(f"m{index}") for index in range(10_000)])
    await manager.flush()
    conversation.reads = 0
    for text in ("a", "b"):
        conversation.add(assistant(text))
        await manager.flush()
    assert store.appended == [10_000, 1, 1]
    if kind is ViewConversation:
        assert conversation.reads == 0  # its history was never copied
    stored = await store.load(session_id)
    assert stored is not None
    assert (len(stored.messages), texts(stored.messages)[-3:]) == (10_002, ["m9999", "a", "b"])


@pytest.mark.parametrize("kind", [ViewConversation, ListConversation])
async def test_a_history_changed_before_its_end_is_rewritten(kind: type[ListConversation]) -> None:
    store = SlowStore(delay=0)
    conversation = kind()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new()
    conversation.add(user("one"), assistant("two"))
    await manager.flush()
    conversation.load([user("one, edited"), assistant("two")])  # as long as before
    conversation.add(user("three"))
    await manager.flush()
    assert store.appended == [2]  # the edit was written by a rewrite
    stored = await store.load(session_id)
    assert stored is not None
    assert texts(stored.messages) == ["one, edited", "two", "three"]


# -- delta saves ----------------------------------------------------------------------


@pytest.mark.parametrize("base", [InMemorySessionStore, FileSessionStore])
async def test_a_subclass_overriding_append_has_it_called(tmp_path: Path, base: type[Any]) -> None:
    """An auto-save calls the ``append`` of the store's own class."""
    calls: list[int] = []

    class Counting(base):  # type: ignore[misc]  # either store: the parameter
        async def append(
            self,
            id: str,
            messages: Sequence[JsonObject],
            metadata: Mapping[str, Any] | None = None,
            *,
            expected: Revision | None = None,
        ) -> Revision:
            calls.append(len(messages))
            return await super().append(id, messages, metadata, expected=expected)  # type: ignore[no-any-return]

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


# -- forks ----------------------------------------------------------------------------


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
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        self._check_disk()
        return await super().save(id, messages, metadata, expected=expected)

    async def append(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        self._check_disk()
        return await super().append(id, messages, metadata, expected=expected)

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
    talking.append(user("not lost"))
    await auto.flush()
    store.fail_saves = False
    store.loads.clear()
    await auto.fork(session)  # after a failed auto-save, it is saved first: nothing dropped
    assert store.loads == [session]
    assert texts(talking.messages) == ["kept", "not lost"]
    stored = await store.load(session)
    assert stored is not None
    assert texts(stored.messages) == ["kept", "not lost"]


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
