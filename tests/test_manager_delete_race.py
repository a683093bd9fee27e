"""SessionManager.delete beside another process forking the session it deletes.

``delete`` writes into each attached fork what it inherits before the session goes. A fork
another process makes after that and before the store removes the session would lose what
it inherits (its history is resolved through the deleted parent): ``delete`` lists the forks
again once the session is gone and writes those the same way. The store here runs a hook
at the start of ``delete``, exactly between the two: another manager (over its own store
object on the same sessions, as another process) forks the session there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import pytest

from simulacra_session import (
    CorruptSessionError,
    FileSessionStore,
    InMemorySessionStore,
    SessionManager,
    SessionStore,
    SimpleConversation,
    resolve_history,
)
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import assistant, texts
from simulacra_session.testing import msg as user

Hook = Callable[[], Awaitable[None]]


class HookedDelete:
    """A store mixin: ``hook`` (once) runs when ``delete`` is called, before the session goes."""

    hook: Hook | None = None

    async def delete(self, id: str) -> bool:
        hook, self.hook = self.hook, None
        if hook is not None:
            await hook()
        deleted: bool = await super().delete(id)  # type: ignore[misc]
        return deleted


class HookedMemoryStore(HookedDelete, InMemorySessionStore):
    """The memory store, with a hook in ``delete``."""


class HookedFileStore(HookedDelete, FileSessionStore):
    """The file store, with a hook in ``delete``."""


class HookedSqlStore(HookedDelete, SqlSessionStore):
    """The SQL store, with a hook in ``delete``."""


@asynccontextmanager
async def stores(
    kind: str, root: Path
) -> AsyncIterator[tuple[HookedMemoryStore | HookedFileStore | HookedSqlStore, SessionStore]]:
    """The deleting manager's store and the other process's, over the same sessions."""
    if kind == "memory":
        memory = HookedMemoryStore()
        yield memory, memory
    elif kind == "sqlite":
        url = f"sqlite:///{root.with_suffix('.db')}"
        deleting, other = HookedSqlStore(url), SqlSessionStore(url)
        try:
            yield deleting, other
        finally:
            await deleting.close()
            await other.close()
    else:
        file_format: Literal["jsonl", "json"] = "jsonl" if kind == "jsonl" else "json"
        yield HookedFileStore(root, format=file_format), FileSessionStore(root, format=file_format)


async def fork_and_talk(store: SessionStore, parent_id: str, said: list[Any]) -> str:
    """Another process forks ``parent_id`` (attached: it stores only what follows) and saves
    ``said`` in the fork; the fork's id."""
    conversation = SimpleConversation()
    async with SessionManager(store, conversation) as other:
        fork_id = await other.fork(parent_id)
        for message in said:
            conversation.append(message)
    return fork_id


@pytest.mark.parametrize("kind", ["memory", "jsonl", "json", "sqlite"])
async def test_a_fork_made_while_the_parent_is_deleted_keeps_its_history(kind: str, tmp_path: Path) -> None:
    async with stores(kind, tmp_path / "sessions") as (deleting, other_store):
        conversation = SimpleConversation()
        forks: list[str] = []
        async with SessionManager(deleting, conversation) as manager:
            parent = manager.start_new("parent")
            conversation.append(user("one"))
            conversation.append(assistant("two"))
            early = await manager.fork(parent)  # there before delete: written before the parent goes
            conversation.append(user("early"))
            await manager.load(parent)

            async def fork_meanwhile() -> None:
                forks.append(await fork_and_talk(other_store, parent, [user("late")]))

            deleting.hook = fork_meanwhile
            assert await manager.delete(parent)
        assert deleting.hook is None  # the hook ran
        assert await other_store.load(parent) is None
        for fork_id, own in ((early, "early"), (forks[0], "late")):
            resolved = await resolve_history(other_store, fork_id, strict=True)
            assert resolved is not None
            assert texts(resolved.messages) == ["one", "two", own], fork_id
            assert resolved.stored.metadata.detached is True


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
async def test_a_session_that_cannot_be_read_and_has_no_forks_is_deleted(suffix: str, tmp_path: Path) -> None:
    # Reading the session for forks made meanwhile must not stop its delete when it cannot be
    # read: no fork holds what it inherits then, and deleting it is how it goes away.
    root = tmp_path / "sessions"
    root.mkdir()
    (root / f"s1{suffix}").write_text("garbage\n")
    store = FileSessionStore(root, format="jsonl" if suffix == ".jsonl" else "json")
    async with SessionManager(store, SimpleConversation()) as manager:
        assert await manager.delete("s1")
    assert not (root / f"s1{suffix}").exists()


async def test_an_unreadable_session_with_an_attached_fork_is_not_deleted(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path / "sessions")
    conversation = SimpleConversation()
    async with SessionManager(store, conversation) as manager:
        parent = manager.start_new("parent")
        conversation.append(user("one"))
        fork_id = await manager.fork(parent)
        conversation.append(user("own"))
    (tmp_path / "sessions" / f"{parent}.jsonl").write_text("garbage\n")
    async with SessionManager(store, SimpleConversation()) as manager:
        with pytest.raises(CorruptSessionError, match=parent):
            await manager.delete(parent)
    assert (tmp_path / "sessions" / f"{parent}.jsonl").exists()  # nothing lost
    loaded = await store.load(fork_id)
    assert loaded is not None
    assert loaded.metadata.parent_id == parent
