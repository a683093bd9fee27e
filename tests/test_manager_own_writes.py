"""A SessionManager's own writes to a session never conflict with its next save: deleting the
parent of its (or a child's) attached fork, renaming or deleting a child's session; and the
labels ``rename`` and ``save`` take are checked alike. On the memory and the file store, which
both check revisions (a stale one is a ``ConflictError``); run on each backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulacra_session import (
    FileSessionStore,
    InMemorySessionStore,
    InvalidMetadataError,
    LifecycleErrorEvent,
    SessionManager,
    SessionStore,
    SimpleConversation,
)
from simulacra_session.testing import msg, texts


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SessionStore:
    return InMemorySessionStore() if request.param == "memory" else FileSessionStore(tmp_path)


def watched(store: SessionStore) -> tuple[SessionManager, SimpleConversation, list[LifecycleErrorEvent]]:
    """A manager of a new conversation, its lifecycle errors (its children's too) collected."""
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    errors: list[LifecycleErrorEvent] = []
    manager.on("lifecycle_error", errors.append)
    return manager, conversation, errors


async def stored_as(store: SessionStore, session_id: str) -> tuple[list[str], bool | None, str | None]:
    """The texts of a session's own messages, whether it is detached, and its label."""
    stored = await store.load(session_id)
    assert stored is not None
    return texts(stored.messages), stored.metadata.detached, stored.metadata.label


async def resumed(store: SessionStore, session_id: str) -> list[str]:
    """The texts of a session's history, as a new manager loads it."""
    conversation = SimpleConversation()
    await SessionManager(store, conversation).load(session_id)
    return texts(conversation.messages)


# -- delete ------------------------------------------------------------------------------


@pytest.mark.parametrize("unsaved", [False, True])
async def test_deleting_the_parent_of_the_current_fork_keeps_it_saving(
    store: SessionStore, unsaved: bool
) -> None:
    manager, conversation, errors = watched(store)
    parent = manager.start_new("parent")
    conversation.append(msg("p0"))
    conversation.append(msg("p1"))
    await manager.flush()
    fork = await manager.fork(parent)
    conversation.append(msg("f0"))
    if not unsaved:
        await manager.flush()
    assert await manager.delete(parent)  # the fork holds what it inherited now
    conversation.append(msg("f1"))
    await manager.flush()
    await manager.save(label="after")
    assert errors == []
    assert await stored_as(store, fork) == (["p0", "p1", "f0", "f1"], True, "after")
    assert await resumed(store, fork) == ["p0", "p1", "f0", "f1"]


async def test_deleting_an_empty_parent_of_the_current_fork_keeps_it_saving(store: SessionStore) -> None:
    manager, conversation, errors = watched(store)
    parent = manager.start_new("parent")
    await manager.flush()
    fork = await manager.fork(parent)  # it inherits no message: nothing to write, but detached
    conversation.append(msg("f0"))
    assert await manager.delete(parent)
    conversation.append(msg("f1"))
    await manager.save()
    assert errors == []
    assert (await stored_as(store, fork))[:2] == (["f0", "f1"], True)


async def test_deleting_the_parent_of_a_childs_fork_keeps_the_child_saving(store: SessionStore) -> None:
    manager, conversation, errors = watched(store)
    parent = manager.start_new("parent")
    conversation.append(msg("p0"))
    await manager.flush()
    child = conversation.spawn_child()
    (child_manager,) = manager.children
    fork = await child_manager.fork(parent)  # the child's session: an attached fork of the parent
    child.append(msg("k0"))
    await manager.flush()
    manager.start_new("other")
    assert await manager.delete(parent)
    child.append(msg("k1"))
    await manager.flush()
    assert errors == []
    assert (await stored_as(store, fork))[:2] == (["p0", "k0", "k1"], True)


async def test_deleting_a_childs_session_leaves_the_child_without_one(store: SessionStore) -> None:
    manager, conversation, errors = watched(store)
    manager.start_new("parent")
    child = conversation.spawn_child()
    child.append(msg("k0"))
    await manager.flush()
    (child_manager,) = manager.children
    deleted = child_manager.current_session_id
    assert deleted is not None
    assert await manager.delete(deleted)  # as the current session: cleared, and none left current
    assert (child_manager.current_session_id, child.messages) == (None, ())
    child.append(msg("k1"))  # a new session, never the deleted one again
    await manager.flush()
    assert errors == []
    assert await store.load(deleted) is None
    now = child_manager.current_session_id
    assert now is not None
    assert (await stored_as(store, now))[0] == ["k1"]


# -- rename ------------------------------------------------------------------------------


async def test_renaming_a_childs_session_keeps_the_child_saving(store: SessionStore) -> None:
    manager, conversation, errors = watched(store)
    manager.start_new("parent")
    child = conversation.spawn_child()
    child.append(msg("k0"))
    await manager.flush()
    (child_manager,) = manager.children
    session_id = child_manager.current_session_id
    assert session_id is not None
    await manager.rename(session_id, "renamed by the parent")
    child.append(msg("k1"))
    await manager.flush()
    assert errors == []
    assert await stored_as(store, session_id) == (["k0", "k1"], True, "renamed by the parent")


@pytest.mark.parametrize("label", ["", 5, None, ["a"]])
async def test_rename_refuses_what_is_not_a_label_naming_the_session(store: SessionStore, label: Any) -> None:
    manager, _, _ = watched(store)
    session_id = manager.start_new("kept")
    await manager.flush()
    with pytest.raises(InvalidMetadataError, match=f"session {session_id}: label="):
        await manager.rename(session_id, label)
    with pytest.raises(InvalidMetadataError, match="session other: label="):
        await manager.rename("other", label)
    assert (await stored_as(store, session_id))[2] == "kept"


@pytest.mark.parametrize("label", ["", 5, ["a"]])
async def test_save_refuses_what_rename_refuses(store: SessionStore, label: Any) -> None:
    manager, conversation, errors = watched(store)
    session_id = manager.start_new("kept")
    await manager.flush()
    with pytest.raises(InvalidMetadataError, match=f"session {session_id}: label="):
        await manager.save(label=label)
    conversation.append(msg("a later save"))
    await manager.flush()
    assert errors == []
    assert await stored_as(store, session_id) == (["a later save"], None, "kept")
