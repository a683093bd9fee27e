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

from simulacra_session import (
    CheckpointState,
    CorruptSessionError,
    FileSessionStore,
    InMemorySessionStore,
    JsonObject,
    LifecycleErrorEvent,
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


@asynccontextmanager
async def stores(kind: str, root: Path) -> AsyncIterator[tuple[Faulty, SessionStore]]:
    """The deleting manager's store and a plain one over the same sessions (another process's,
    for the file store: what a reload finds)."""
    if kind == "memory":
        memory = FaultyMemoryStore()
        yield memory, memory
    else:
        file_format: Literal["jsonl", "json"] = "jsonl" if kind == "jsonl" else "json"
        yield FaultyFileStore(root, format=file_format), FileSessionStore(root, format=file_format)


def watched(store: Any, conversation: Any, **options: Any) -> tuple[SessionManager, list[Any]]:
    """A manager of ``conversation`` on ``store``, and the errors of its lifecycle_error events."""
    manager = SessionManager(store, conversation, **options)
    errors: list[Any] = []

    def heard(event: LifecycleErrorEvent) -> None:
        errors.append(event.error)

    manager.on("lifecycle_error", heard)
    return manager, errors


async def history(store: SessionStore, session_id: str) -> list[str]:
    """The texts of ``session_id``'s whole history, as a reload finds it."""
    resolved = await resolve_history(store, session_id, strict=True)
    assert resolved is not None, session_id
    return texts(resolved.messages)


# -- the owner is put back ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_failed_delete_puts_the_manager_back_on_its_session(kind: str, tmp_path: Path) -> None:
    async with stores(kind, tmp_path / "sessions") as (store, other):
        conversation = SimpleConversation()
        manager, errors = watched(store, conversation)
        async with manager:
            session_id = manager.start_new("kept label")  # an explicit label: no slug replaces it
            conversation.append(user("one"))
            conversation.append(assistant("two"))
            await manager.flush()
            conversation.checkpoint_state = CheckpointState(message_id="m2", summary="so far")
            before = conversation.messages
            store.fail = OSError(28, "No space left on device")
            with pytest.raises(OSError, match="No space left"):
                await manager.delete(session_id)
            assert manager.current_session_id == session_id
            assert conversation.messages == before
            assert conversation.checkpoint_state == CheckpointState(message_id="m2", summary="so far")
            appends = store.appends
            conversation.append(user("three"))  # auto-saved after what was saved: an append
            await manager.flush()
            assert store.appends == appends + 1
        assert errors == []
        assert await history(other, session_id) == ["one", "two", "three"]
        stored = await other.load(session_id)
        assert stored is not None
        assert stored.metadata.label == "kept label"
        assert stored.metadata.checkpoint_state == CheckpointState(message_id="m2", summary="so far")


@pytest.mark.parametrize("kind", KINDS)
async def test_unsaved_messages_survive_a_failed_delete(kind: str, tmp_path: Path) -> None:
    # Without auto-save, what the conversation holds past the last save is in memory only.
    async with stores(kind, tmp_path / "sessions") as (store, other):
        conversation = SimpleConversation()
        manager, errors = watched(store, conversation, auto_save=False)
        async with manager:
            session_id = manager.start_new("unsaved")
            conversation.append(user("one"))
            await manager.save()
            conversation.append(assistant("not saved yet"))
            store.fail = OSError(5, "Input/output error")
            with pytest.raises(OSError, match="Input/output error"):
                await manager.delete(session_id)
            assert manager.current_session_id == session_id
            assert texts(conversation.messages) == ["one", "not saved yet"]
            conversation.append(user("three"))
            await manager.save()
        assert errors == []
        assert await history(other, session_id) == ["one", "not saved yet", "three"]


@pytest.mark.parametrize("kind", KINDS)
async def test_an_attached_fork_put_back_stores_only_its_own_messages(kind: str, tmp_path: Path) -> None:
    async with stores(kind, tmp_path / "sessions") as (store, other):
        conversation = SimpleConversation()
        manager, errors = watched(store, conversation)
        async with manager:
            parent = manager.start_new("parent")
            conversation.append(user("one"))
            conversation.append(assistant("two"))
            fork_id = await manager.fork(parent)
            conversation.append(user("own"))
            await manager.flush()
            store.fail = OSError(5, "Input/output error")
            with pytest.raises(OSError, match="Input/output error"):
                await manager.delete(fork_id)
            assert manager.current_session_id == fork_id
            conversation.append(assistant("more"))
        assert errors == []
        stored = await other.load(fork_id)
        assert stored is not None
        assert texts(stored.messages) == ["own", "more"]  # still inheriting the other two
        assert stored.metadata.parent_id == parent
        assert not stored.metadata.detached
        assert await history(other, fork_id) == ["one", "two", "own", "more"]


@pytest.mark.parametrize("kind", ["jsonl", "json"])
async def test_a_delete_refused_for_a_corrupt_parent_puts_the_fork_back(kind: str, tmp_path: Path) -> None:
    # The session's history cannot be read (its parent is corrupt) and an attached fork of it
    # inherits from it: deleting it would lose that fork's history, so it is refused.
    root = tmp_path / "sessions"
    async with stores(kind, root) as (store, other):
        conversation = SimpleConversation()
        manager, errors = watched(store, conversation)
        async with manager:
            parent = manager.start_new("parent")
            conversation.append(user("one"))
            middle = await manager.fork(parent)
            conversation.append(user("own"))
            await manager.flush()
            async with SessionManager(other, SimpleConversation()) as elsewhere:
                await elsewhere.fork(middle)  # an attached fork of the session to delete
            parent_file = root / f"{parent}.{kind}"
            intact = parent_file.read_bytes()
            parent_file.write_bytes(b"garbage\n")
            with pytest.raises(CorruptSessionError):
                await manager.delete(middle)
            assert manager.current_session_id == middle
            assert texts(conversation.messages) == ["one", "own"]
            parent_file.write_bytes(intact)  # mended
            conversation.append(assistant("more"))
        assert errors == []
        assert await history(other, middle) == ["one", "own", "more"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_cancelled_delete_puts_the_manager_back(kind: str, tmp_path: Path) -> None:
    async with stores(kind, tmp_path / "sessions") as (store, other):
        conversation = SimpleConversation()
        manager, errors = watched(store, conversation)
        async with manager:
            session_id = manager.start_new("cancelled")
            conversation.append(user("one"))
            await manager.flush()
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
            conversation.append(assistant("two"))
        assert errors == []
        assert await history(other, session_id) == ["one", "two"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_conversation_without_a_history_view_is_put_back(kind: str, tmp_path: Path) -> None:
    # An engine's conversation written against ``Conversation`` alone: snapshots are copies.
    async with stores(kind, tmp_path / "sessions") as (store, other):
        conversation = ListConversation()
        manager, errors = watched(store, conversation)
        async with manager:
            parent = manager.start_new("parent")
            conversation.add(user("one"))
            fork_id = await manager.fork(parent)
            conversation.add(user("own"))
            await manager.flush()
            store.fail = OSError(5, "Input/output error")
            with pytest.raises(OSError, match="Input/output error"):
                await manager.delete(fork_id)
            assert manager.current_session_id == fork_id
            assert texts(conversation.messages) == ["one", "own"]
            appends = store.appends
            conversation.add(assistant("more"))
            await manager.flush()
            assert store.appends == appends + 1
        assert errors == []
        assert await history(other, fork_id) == ["one", "own", "more"]


async def test_a_child_managers_session_is_put_back(tmp_path: Path) -> None:
    store = FaultyFileStore(tmp_path / "sessions")
    conversation = SimpleConversation()
    manager, errors = watched(store, conversation)
    async with manager:
        manager.start_new("parent")
        conversation.append(user("one"))
        child = conversation.spawn_child()
        (child_manager,) = manager.children
        child.append(user("child's"))
        await manager.flush()
        child_id = child_manager.current_session_id
        assert child_id is not None
        store.fail = OSError(5, "Input/output error")
        with pytest.raises(OSError, match="Input/output error"):
            await manager.delete(child_id)
        assert child_manager.current_session_id == child_id
        assert texts(child.messages) == ["child's"]
        child.append(assistant("more"))
    assert errors == []
    assert await history(FileSessionStore(tmp_path / "sessions"), child_id) == ["child's", "more"]


# -- what happened meanwhile wins -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_message_completed_during_a_failed_delete_keeps_its_new_session(
    kind: str, tmp_path: Path
) -> None:
    # With auto-save it starts a new session at once (never saved to the session being
    # deleted); the delete failing, both sessions stay, each with its own messages.
    async with stores(kind, tmp_path / "sessions") as (store, other):
        conversation = SimpleConversation()
        manager, errors = watched(store, conversation)
        async with manager:
            session_id = manager.start_new("old")
            conversation.append(user("one"))
            await manager.flush()

            async def talk() -> None:
                conversation.append(user("meanwhile"))

            store.hook, store.fail = talk, OSError(5, "Input/output error")
            with pytest.raises(OSError, match="Input/output error"):
                await manager.delete(session_id)
            new_id = manager.current_session_id
            assert new_id not in (None, session_id)
            assert texts(conversation.messages) == ["meanwhile"]
        assert errors == []
        assert await history(other, session_id) == ["one"]
        assert new_id is not None
        assert await history(other, new_id) == ["meanwhile"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_message_added_during_a_failed_delete_without_auto_save_follows_the_session(
    kind: str, tmp_path: Path
) -> None:
    # No auto-save: the manager stays on no session, and the message is in memory only. Put
    # back, the conversation holds the session's messages, then that one: none lost.
    async with stores(kind, tmp_path / "sessions") as (store, other):
        conversation = SimpleConversation()
        manager, errors = watched(store, conversation, auto_save=False)
        async with manager:
            session_id = manager.start_new("old")
            conversation.append(user("one"))
            await manager.save()
            conversation.append(assistant("unsaved"))

            async def talk() -> None:
                conversation.append(user("meanwhile"))

            store.hook, store.fail = talk, OSError(5, "Input/output error")
            with pytest.raises(OSError, match="Input/output error"):
                await manager.delete(session_id)
            assert manager.current_session_id == session_id
            assert texts(conversation.messages) == ["one", "unsaved", "meanwhile"]
            await manager.save()
        assert errors == []
        assert await history(other, session_id) == ["one", "unsaved", "meanwhile"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_session_loaded_during_a_failed_delete_stays(kind: str, tmp_path: Path) -> None:
    async with stores(kind, tmp_path / "sessions") as (store, other):
        conversation = SimpleConversation()
        manager, errors = watched(store, conversation)
        async with manager:
            elsewhere = manager.start_new("elsewhere")
            conversation.append(user("there"))
            session_id = manager.start_new("old")
            conversation.append(user("one"))
            await manager.flush()

            async def load() -> None:
                await manager.load(elsewhere)

            store.hook, store.fail = load, OSError(5, "Input/output error")
            with pytest.raises(OSError, match="Input/output error"):
                await manager.delete(session_id)
            assert manager.current_session_id == elsewhere
            assert texts(conversation.messages) == ["there"]
        assert errors == []
        assert await history(other, session_id) == ["one"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_session_started_and_deleted_during_a_failed_delete_leaves_no_session(
    kind: str, tmp_path: Path
) -> None:
    # On no session again, the conversation empty, yet not as the delete left it: the user
    # went on (and deleted that too), so the manager stays on no session.
    async with stores(kind, tmp_path / "sessions") as (store, other):
        conversation = SimpleConversation()
        manager, errors = watched(store, conversation)
        async with manager:
            session_id = manager.start_new("old")
            conversation.append(user("one"))
            await manager.flush()

            async def start_and_delete() -> None:
                assert await manager.delete(manager.start_new("brief"))
                store.fail = OSError(5, "Input/output error")  # the first delete's, after this one

            store.hook = start_and_delete
            with pytest.raises(OSError, match="Input/output error"):
                await manager.delete(session_id)
            assert manager.current_session_id is None
            assert conversation.messages == ()
        assert errors == []
        assert await history(other, session_id) == ["one"]


@pytest.mark.parametrize("kind", KINDS)
async def test_the_failed_auto_save_of_a_session_left_during_a_failed_delete_is_written_again(
    kind: str, tmp_path: Path
) -> None:
    # Its auto-save failed before the delete; a message completed meanwhile took the manager to
    # a new session, so it is not put back: what that save held is written to it again, as
    # when a manager leaves a session otherwise (load, start_new).
    async with stores(kind, tmp_path / "sessions") as (store, other):
        conversation = SimpleConversation()
        manager, errors = watched(store, conversation)
        async with manager:
            session_id = manager.start_new("old")
            conversation.append(user("one"))
            await manager.flush()
            store.fail_writes = OSError(28, "No space left on device")
            conversation.append(assistant("failed to save"))
            await manager.flush()
            assert len(errors) == 1
            store.fail_writes = None

            async def talk() -> None:
                conversation.append(user("meanwhile"))

            store.hook, store.fail = talk, OSError(5, "Input/output error")
            with pytest.raises(OSError, match="Input/output error"):
                await manager.delete(session_id)
            assert manager.current_session_id not in (None, session_id)
        assert len(errors) == 1
        assert await history(other, session_id) == ["one", "failed to save"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_delete_that_succeeds_still_leaves_the_session(kind: str, tmp_path: Path) -> None:
    async with stores(kind, tmp_path / "sessions") as (store, other):
        conversation = SimpleConversation()
        manager, errors = watched(store, conversation)
        async with manager:
            session_id = manager.start_new("gone")
            conversation.append(user("one"))
            assert await manager.delete(session_id)
            assert manager.current_session_id is None
            assert conversation.messages == ()
        assert errors == []
        assert await other.load(session_id) is None
