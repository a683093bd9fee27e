"""The manager leaving its session (a fork, a load, a new session, its close) while a save of
it failed, is under way or is cancelled: no message the conversation held is dropped, and
what a ``save`` event says is what the store holds."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import (
    FileSessionStore,
    InMemorySessionStore,
    LifecycleErrorEvent,
    SaveEvent,
    SessionManager,
    SessionStore,
    SimpleConversation,
)
from simulacra_session.testing import assistant, texts
from simulacra_session.testing import msg as user


class FullOnce:
    """A store whose next writes fail as a full disk (``failing`` of them), then have room;
    mixed in before a store class, whose ``save`` and ``append`` it wraps."""

    failing = 0

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.refused: list[str] = []  # the sessions whose writes failed

    def _fail(self, session_id: str) -> None:
        if self.failing:
            self.failing -= 1
            self.refused.append(session_id)
            raise OSError(errno.ENOSPC, "No space left on device")

    async def append(self, session_id: str, *args: Any, **kwargs: Any) -> Any:
        self._fail(session_id)
        return await super().append(session_id, *args, **kwargs)  # type: ignore[misc]

    async def save(self, session_id: str, *args: Any, **kwargs: Any) -> Any:
        self._fail(session_id)
        return await super().save(session_id, *args, **kwargs)  # type: ignore[misc]


class FullMemory(FullOnce, InMemorySessionStore):
    pass


class FullFiles(FullOnce, FileSessionStore):
    pass


@pytest.fixture(params=["memory", "file"])
def full_once(request: pytest.FixtureRequest, tmp_path: Path) -> FullOnce:
    return FullMemory() if request.param == "memory" else FullFiles(tmp_path / "store")


async def _stored(store: SessionStore, session_id: str) -> list[str]:
    found = await store.load(session_id)
    assert found is not None, session_id
    return texts(found.messages)


async def _one_failed_save(store: FullOnce, manager: SessionManager, conversation: SimpleConversation) -> str:
    """The session holds ``q1``, ``r1``; ``q2``'s auto-save failed (a lifecycle_error)."""
    errors: list[LifecycleErrorEvent] = []
    manager.on("lifecycle_error", errors.append)
    session_id = manager.start_new("a")
    conversation.append(user("q1"))
    conversation.append(assistant("r1"))
    await manager.flush()
    store.failing = 1
    conversation.append(user("q2"))
    await manager.flush()
    assert [type(event.error) for event in errors] == [OSError]
    return session_id


async def test_a_fork_of_the_session_after_its_auto_save_failed_keeps_it(
    full_once: FullOnce,
) -> None:
    """It was dropped from the conversation and from the fork: the fork read the parent as
    stored, without it, and replaced the conversation with that."""
    conversation = SimpleConversation()
    manager = SessionManager(full_once, conversation)  # type: ignore[arg-type]
    parent = await _one_failed_save(full_once, manager, conversation)
    fork = await manager.fork(parent)
    assert texts(conversation.messages) == ["q1", "r1", "q2"]
    assert await _stored(full_once, parent) == ["q1", "r1", "q2"]  # type: ignore[arg-type]
    conversation.append(assistant("r2"))
    await manager.flush()
    stored = await full_once.load(fork)  # type: ignore[attr-defined]
    assert (stored.metadata.fork_message_count, texts(stored.messages)) == (3, ["r2"])


async def test_a_fork_whose_saving_again_fails_raises_and_changes_nothing(full_once: FullOnce) -> None:
    conversation = SimpleConversation()
    manager = SessionManager(full_once, conversation)  # type: ignore[arg-type]
    parent = await _one_failed_save(full_once, manager, conversation)
    full_once.failing = 1
    with pytest.raises(OSError, match="No space"):
        await manager.fork(parent)
    assert full_once.refused == [parent, parent]  # the auto-save, then saving it again: no fork
    assert (manager.current_session_id, texts(conversation.messages)) == (parent, ["q1", "r1", "q2"])
    assert len(await manager.forks(parent)) == 0


Leave = Callable[[SessionManager], Awaitable[object]]


async def _start_new(manager: SessionManager) -> None:
    manager.start_new()
    await manager.flush()


async def _close(manager: SessionManager) -> None:
    async with manager:
        pass


async def _load_another(manager: SessionManager) -> None:
    other = await manager.store.list()
    await manager.load(next(item.id for item in other if item.id != manager.current_session_id))


@pytest.mark.parametrize("leave", [_start_new, _close, _load_another], ids=["start_new", "close", "load"])
async def test_leaving_the_session_after_its_auto_save_failed_saves_it_again(
    full_once: FullOnce, leave: Leave
) -> None:
    """Its messages were otherwise stored only by a later save of it, which never came."""
    await full_once.save("other", [user("elsewhere")])  # type: ignore[attr-defined]
    conversation = SimpleConversation()
    manager = SessionManager(full_once, conversation)  # type: ignore[arg-type]
    session_id = await _one_failed_save(full_once, manager, conversation)
    await leave(manager)
    assert await _stored(full_once, session_id) == ["q1", "r1", "q2"]  # type: ignore[arg-type]


async def test_a_load_during_which_a_message_completes_holds_it(tmp_path: Path) -> None:
    """``load`` of the current session (a reload) read it while a message completed, whose
    auto-save then landed: the conversation took the older read, and the next save wrote the
    session without that message, a ``save`` event having said it was stored."""
    store = FileSessionStore(tmp_path)
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    session_id = manager.start_new("a")
    conversation.append(user("q1"))
    await manager.flush()
    real = store.load

    async def load(*args: Any, **kwargs: Any) -> Any:
        found = await real(*args, **kwargs)
        if len(conversation.messages) == 1:
            conversation.append(assistant("r1"))  # completes while the session is read
        return found

    store.load = load  # type: ignore[method-assign]
    await manager.load(session_id)
    assert texts(conversation.messages) == ["q1", "r1"]
    conversation.append(user("q2"))
    await manager.flush()
    assert await _stored(store, session_id) == ["q1", "r1", "q2"]


async def test_a_fork_cancelled_once_saved_is_the_session(tmp_path: Path) -> None:
    """A cancellation landing while the fork was saved left it in the store, the manager on
    the parent: each retry made one more fork nobody holds."""
    store = FileSessionStore(tmp_path)
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    parent = manager.start_new("a")
    conversation.append(user("q1"))
    await manager.flush()
    entered = asyncio.Event()
    real = store.save

    async def save(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        return await real(*args, **kwargs)

    store.save = save  # type: ignore[method-assign]
    forking = asyncio.ensure_future(manager.fork(parent))
    await entered.wait()
    forking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await forking
    forks = await manager.forks(parent)
    assert [item.id for item in forks] == [manager.current_session_id]
    assert texts(conversation.messages) == ["q1"]


async def test_a_detached_fork_says_what_it_stored_and_saves_what_completed_meanwhile() -> None:
    """Its ``save`` event listed a message that completed while it was made (saved to the
    parent, still current then), which the fork did not hold until a later message."""
    store = InMemorySessionStore()
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    saved: list[SaveEvent] = []
    manager.on("save", saved.append)
    parent = manager.start_new("a")
    conversation.append(user("q1"))
    await manager.flush()
    real = store.load

    async def load(*args: Any, **kwargs: Any) -> Any:
        found = await real(*args, **kwargs)
        if len(conversation.messages) == 1:
            conversation.append(assistant("r1"))
        return found

    store.load = load  # type: ignore[method-assign]
    saved.clear()
    fork = await manager.fork(parent, detached=True)
    assert next(texts(event.messages) for event in saved if event.id == fork) == ["q1"]
    await manager.flush()
    assert await _stored(store, fork) == ["q1", "r1"]
    assert texts(conversation.messages) == ["q1", "r1"]
