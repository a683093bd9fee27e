"""SessionManager.delete that fails or is cancelled: the session is still in the store, so the
manager that was on it (this one or a child manager) is put back on it, its conversation and
state as they were, and its next auto-save writes right after what it had saved (an append
where the store appends). The manager leaves the session at once all the same (a message
completed during the delete never saves to it); what happened to it meanwhile wins: one on
another session (an auto-save of a message completed meanwhile starts one) stays there, the
deleted session's failed auto-save written again. On the memory and the file store (both
formats), each backend; a delete fails for real: a store whose ``delete`` raises ``OSError``
(fault injection), a corrupt parent with an attached fork (``CorruptSessionError``), the
delete's task cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import pytest

from manager_stores import Talk, Watched
from simulacra_session import (
    CheckpointState,
    CorruptSessionError,
    FileSessionStore,
    InMemorySessionStore,
    JsonObject,
    Message,
    SessionManager,
    SessionStore,
    SimpleConversation,
    resolve_history,
)
from simulacra_session.testing import assistant, texts
from simulacra_session.testing import msg as user
from test_manager_history import ListConversation

Hook = Callable[[], Awaitable[None]]
KINDS = ["memory", "jsonl", "json"]


class Faulty:
    """A store mixin: ``hook`` (once) runs when ``delete`` is called, then ``delete`` raises
    ``fail`` (once) before removing anything; ``fail_writes`` makes saves and appends raise
    it (a full disk), while set. Counts the appends that landed."""

    hook: Hook | None = None
    fail: BaseException | None = None
    fail_writes: OSError | None = None
    appends = 0

    async def delete(self, id: str) -> bool:
        hook, self.hook = self.hook, None
        if hook is not None:
            await hook()
        fail, self.fail = self.fail, None
        if fail is not None:
            raise fail
        deleted: bool = await super().delete(id)  # type: ignore[misc]
        return deleted

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None, **kw: Any
    ) -> Any:
        if self.fail_writes is not None:
            raise self.fail_writes
        return await super().save(id, messages, metadata, **kw)  # type: ignore[misc]

    async def append(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None, **kw: Any
    ) -> Any:
        if self.fail_writes is not None:
            raise self.fail_writes
        revision = await super().append(id, messages, metadata, **kw)  # type: ignore[misc]
        self.appends += 1
        return revision


class FaultyMemoryStore(Faulty, InMemorySessionStore):
    """The memory store, with faults on demand."""


class FaultyFileStore(Faulty, FileSessionStore):
    """The file store, with faults on demand."""


FaultyStore = FaultyMemoryStore | FaultyFileStore


class AppendingListConversation(ListConversation):
    """``ListConversation`` (written against ``Conversation`` alone: snapshots are copies),
    which ``Watched`` adds messages to."""

    def append(self, message: Message) -> None:
        self.add(message)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Each store in turn: the memory store, the file store in each format."""
    kind: str = request.param
    return kind


@pytest.fixture
def stores(kind: str, tmp_path: Path) -> tuple[FaultyStore, SessionStore]:
    """The deleting manager's store and a plain one over the same sessions (another process's,
    for the file store: what a reload finds)."""
    if kind == "memory":
        memory = FaultyMemoryStore()
        return memory, memory
    file_format: Literal["jsonl", "json"] = "jsonl" if kind == "jsonl" else "json"
    root = tmp_path / "sessions"
    return FaultyFileStore(root, format=file_format), FileSessionStore(root, format=file_format)


@pytest.fixture
def store(stores: tuple[FaultyStore, SessionStore]) -> FaultyStore:
    """The deleting manager's store, with faults on demand."""
    return stores[0]


@pytest.fixture
def other(stores: tuple[FaultyStore, SessionStore]) -> SessionStore:
    """A plain store over the same sessions: what a reload finds."""
    return stores[1]


@asynccontextmanager
async def started(
    store: FaultyStore, label: str, conversation: Talk | None = None, **options: Any
) -> AsyncIterator[tuple[Watched, str]]:
    """A watched manager of ``conversation`` on ``store`` (made with ``options``), in use, on a
    new session labelled ``label`` (explicitly: no slug replaces it) whose first message,
    ``m1``, is auto-saved (when the manager auto-saves); and that session's id. The manager is
    closed on leaving, its writes flushed."""
    watched = Watched(store, SimpleConversation() if conversation is None else conversation, options)
    async with watched.manager:
        yield watched, await watched.start(label)


async def delete_failing(store: FaultyStore, manager: SessionManager, session_id: str) -> None:
    """Delete ``session_id`` through ``manager``, the store's ``delete`` raising ``OSError``
    (once ``store.hook`` ran, if set): the error goes through."""
    store.fail = OSError(5, "Input/output error")
    with pytest.raises(OSError, match="Input/output error"):
        await manager.delete(session_id)


async def history(store: SessionStore, session_id: str) -> list[str]:
    """The texts of ``session_id``'s whole history, as a reload finds it."""
    resolved = await resolve_history(store, session_id, strict=True)
    assert resolved is not None, session_id
    return texts(resolved.messages)


# -- the owner is put back ----------------------------------------------------------------------


async def test_a_failed_delete_puts_the_manager_back_on_its_session(
    store: FaultyStore, other: SessionStore
) -> None:
    async with started(store, "kept label") as (watched, session_id):
        conversation, manager = watched.conversation, watched.manager
        await watched.say("m2")
        conversation.checkpoint_state = CheckpointState(message_id="m2", summary="so far")
        before = conversation.messages
        store.fail = OSError(28, "No space left on device")
        with pytest.raises(OSError, match="No space left"):
            await manager.delete(session_id)
        assert manager.current_session_id == session_id
        assert conversation.messages == before
        assert conversation.checkpoint_state == CheckpointState(message_id="m2", summary="so far")
        appends = store.appends
        conversation.append(user("m3"))  # auto-saved after what was saved: an append
        await manager.flush()
        assert store.appends == appends + 1
    assert watched.errors == []
    assert await history(other, session_id) == ["m1", "m2", "m3"]
    stored = await other.load(session_id)
    assert stored is not None
    assert stored.metadata.label == "kept label"
    assert stored.metadata.checkpoint_state == CheckpointState(message_id="m2", summary="so far")


class ResettingConversation(SimpleConversation):
    """A conversation whose ``clear()`` drops its checkpoint state with its history, as a
    framework's reset may."""

    def clear(self) -> None:
        super().clear()
        self.checkpoint_state = None


async def test_a_failed_delete_gives_back_the_checkpoint_a_clear_dropped(
    store: FaultyStore, other: SessionStore
) -> None:
    checkpoint = CheckpointState(message_id="m1", summary="so far")
    async with started(store, "reset", ResettingConversation()) as (watched, session_id):
        watched.conversation.checkpoint_state = checkpoint
        await delete_failing(store, watched.manager, session_id)
        assert watched.manager.current_session_id == session_id
        assert watched.conversation.checkpoint_state == checkpoint
        await watched.say("m2")  # saved with the checkpoint given back
    stored = await other.load(session_id)
    assert stored is not None
    assert stored.metadata.checkpoint_state == checkpoint


async def test_unsaved_messages_survive_a_failed_delete(store: FaultyStore, other: SessionStore) -> None:
    # Without auto-save, what the conversation holds past the last save is in memory only.
    async with started(store, "unsaved", auto_save=False) as (watched, session_id):
        conversation, manager = watched.conversation, watched.manager
        await manager.save()
        conversation.append(assistant("not saved yet"))
        await delete_failing(store, manager, session_id)
        assert manager.current_session_id == session_id
        assert texts(conversation.messages) == ["m1", "not saved yet"]
        conversation.append(user("m3"))
        await manager.save()
    assert watched.errors == []
    assert await history(other, session_id) == ["m1", "not saved yet", "m3"]


async def test_an_attached_fork_put_back_stores_only_its_own_messages(
    store: FaultyStore, other: SessionStore
) -> None:
    async with started(store, "parent") as (watched, parent):
        conversation, manager = watched.conversation, watched.manager
        conversation.append(assistant("m2"))
        fork_id = await manager.fork(parent)
        conversation.append(user("own"))
        await manager.flush()
        await delete_failing(store, manager, fork_id)
        assert manager.current_session_id == fork_id
        conversation.append(assistant("more"))
    assert watched.errors == []
    stored = await other.load(fork_id)
    assert stored is not None
    assert texts(stored.messages) == ["own", "more"]  # still inheriting the other two
    assert stored.metadata.parent_id == parent
    assert not stored.metadata.detached
    assert await history(other, fork_id) == ["m1", "m2", "own", "more"]


@pytest.mark.parametrize("kind", ["jsonl", "json"])
async def test_a_delete_refused_for_a_corrupt_parent_puts_the_fork_back(
    kind: str, store: FaultyStore, other: SessionStore, tmp_path: Path
) -> None:
    # The session's history cannot be read (its parent is corrupt) and an attached fork of it
    # inherits from it: deleting it would lose that fork's history, so it is refused.
    async with started(store, "parent") as (watched, parent):
        conversation, manager = watched.conversation, watched.manager
        middle = await manager.fork(parent)
        conversation.append(user("own"))
        await manager.flush()
        async with SessionManager(other, SimpleConversation()) as elsewhere:
            await elsewhere.fork(middle)  # an attached fork of the session to delete
        parent_file = tmp_path / "sessions" / f"{parent}.{kind}"
        intact = parent_file.read_bytes()
        parent_file.write_bytes(b"garbage\n")
        with pytest.raises(CorruptSessionError):
            await manager.delete(middle)
        assert manager.current_session_id == middle
        assert texts(conversation.messages) == ["m1", "own"]
        parent_file.write_bytes(intact)  # mended
        conversation.append(assistant("more"))
    assert watched.errors == []
    assert await history(other, middle) == ["m1", "own", "more"]


async def test_a_cancelled_delete_puts_the_manager_back(store: FaultyStore, other: SessionStore) -> None:
    async with started(store, "cancelled") as (watched, session_id):
        manager = watched.manager
        entered = asyncio.Event()

        async def stall() -> None:  # until cancelled
            entered.set()
            await asyncio.get_running_loop().create_future()

        store.hook = stall
        deleting = asyncio.create_task(manager.delete(session_id))
        await entered.wait()
        assert manager.current_session_id is None  # left at once
        deleting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await deleting
        assert manager.current_session_id == session_id
        watched.conversation.append(assistant("m2"))
    assert watched.errors == []
    assert await history(other, session_id) == ["m1", "m2"]


async def test_a_conversation_without_a_history_view_is_put_back(
    store: FaultyStore, other: SessionStore
) -> None:
    # An engine's conversation written against ``Conversation`` alone: snapshots are copies.
    conversation = AppendingListConversation()
    async with started(store, "parent", conversation) as (watched, parent):
        manager = watched.manager
        fork_id = await manager.fork(parent)
        conversation.add(user("own"))
        await manager.flush()
        await delete_failing(store, manager, fork_id)
        assert manager.current_session_id == fork_id
        assert texts(conversation.messages) == ["m1", "own"]
        appends = store.appends
        conversation.add(assistant("more"))
        await manager.flush()
        assert store.appends == appends + 1
    assert watched.errors == []
    assert await history(other, fork_id) == ["m1", "own", "more"]


async def test_a_child_managers_session_is_put_back(store: FaultyStore, other: SessionStore) -> None:
    conversation = SimpleConversation()
    async with started(store, "parent", conversation) as (watched, _):
        manager = watched.manager
        child = conversation.spawn_child()
        (child_manager,) = manager.children
        child.append(user("child's"))
        await manager.flush()
        child_id = child_manager.current_session_id
        assert child_id is not None
        await delete_failing(store, manager, child_id)
        assert child_manager.current_session_id == child_id
        assert texts(child.messages) == ["child's"]
        child.append(assistant("more"))
    assert watched.errors == []
    assert await history(other, child_id) == ["child's", "more"]


# -- what happened meanwhile wins -----------------------------------------------------------------


async def test_a_message_completed_during_a_failed_delete_keeps_its_new_session(
    store: FaultyStore, other: SessionStore
) -> None:
    # With auto-save it starts a new session at once (never saved to the session being
    # deleted); the delete failing, both sessions stay, each with its own messages.
    async with started(store, "old") as (watched, session_id):
        conversation, manager = watched.conversation, watched.manager

        async def talk() -> None:
            conversation.append(user("meanwhile"))

        store.hook = talk
        await delete_failing(store, manager, session_id)
        new_id = manager.current_session_id
        assert new_id not in (None, session_id)
        assert texts(conversation.messages) == ["meanwhile"]
    assert watched.errors == []
    assert await history(other, session_id) == ["m1"]
    assert new_id is not None
    assert await history(other, new_id) == ["meanwhile"]


async def test_a_message_added_during_a_failed_delete_without_auto_save_follows_the_session(
    store: FaultyStore, other: SessionStore
) -> None:
    # No auto-save: the manager stays on no session, and the message is in memory only. Put
    # back, the conversation holds the session's messages, then that one: none lost.
    async with started(store, "old", auto_save=False) as (watched, session_id):
        conversation, manager = watched.conversation, watched.manager
        await manager.save()
        conversation.append(assistant("unsaved"))

        async def talk() -> None:
            conversation.append(user("meanwhile"))

        store.hook = talk
        await delete_failing(store, manager, session_id)
        assert manager.current_session_id == session_id
        assert texts(conversation.messages) == ["m1", "unsaved", "meanwhile"]
        await manager.save()
    assert watched.errors == []
    assert await history(other, session_id) == ["m1", "unsaved", "meanwhile"]


async def test_a_session_loaded_during_a_failed_delete_stays(store: FaultyStore, other: SessionStore) -> None:
    async with started(store, "elsewhere") as (watched, elsewhere):
        manager = watched.manager
        session_id = manager.start_new("old")
        await watched.say("m2")

        async def load() -> None:
            await manager.load(elsewhere)

        store.hook = load
        await delete_failing(store, manager, session_id)
        assert manager.current_session_id == elsewhere
        assert texts(watched.conversation.messages) == ["m1"]
    assert watched.errors == []
    assert await history(other, session_id) == ["m2"]


async def test_a_session_started_and_deleted_during_a_failed_delete_leaves_no_session(
    store: FaultyStore, other: SessionStore
) -> None:
    # On no session again, the conversation empty, yet not as the delete left it: the user
    # went on (and deleted that too), so the manager stays on no session.
    async with started(store, "old") as (watched, session_id):
        manager = watched.manager

        async def start_and_delete() -> None:
            assert await manager.delete(manager.start_new("brief"))
            store.fail = OSError(5, "Input/output error")  # the first delete's, after this one

        store.hook = start_and_delete
        with pytest.raises(OSError, match="Input/output error"):
            await manager.delete(session_id)
        assert manager.current_session_id is None
        assert watched.conversation.messages == ()
    assert watched.errors == []
    assert await history(other, session_id) == ["m1"]


async def test_the_failed_auto_save_of_a_session_left_during_a_failed_delete_is_written_again(
    store: FaultyStore, other: SessionStore
) -> None:
    # Its auto-save failed before the delete; a message completed meanwhile took the manager to
    # a new session, so it is not put back: what that save held is written to it again, as
    # when a manager leaves a session otherwise (load, start_new).
    async with started(store, "old") as (watched, session_id):
        conversation, manager = watched.conversation, watched.manager
        store.fail_writes = OSError(28, "No space left on device")
        conversation.append(assistant("failed to save"))
        await manager.flush()
        assert len(watched.errors) == 1
        store.fail_writes = None

        async def talk() -> None:
            conversation.append(user("meanwhile"))

        store.hook = talk
        await delete_failing(store, manager, session_id)
        assert manager.current_session_id not in (None, session_id)
    assert len(watched.errors) == 1
    assert await history(other, session_id) == ["m1", "failed to save"]


async def test_a_delete_that_succeeds_still_leaves_the_session(
    store: FaultyStore, other: SessionStore
) -> None:
    async with started(store, "gone") as (watched, session_id):
        manager = watched.manager
        watched.conversation.append(user("m2"))  # its auto-save not flushed: the delete's flush writes it
        assert await manager.delete(session_id)
        assert manager.current_session_id is None
        assert watched.conversation.messages == ()
    assert watched.errors == []
    assert await other.load(session_id) is None
