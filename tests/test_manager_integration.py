"""SessionManager beside the framework adapters: it takes no session an adapter writes.

A framework adapter keeps its name in the metadata of each session it writes
(``integration``). ``SessionManager.load()`` without an id takes the most recent session
without it, paging past any number of a framework's; ``load(id)``, an attached ``fork`` and
``recover`` refuse a framework's session with ``SessionOwnerError`` naming the session and
the integration, nothing written; a detached fork, which reads nothing of its parent, is made.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from integration_stores import KINDS, Opener, reopen_each
from simulacra_session import (
    ConflictError,
    InMemorySessionStore,
    LifecycleErrorEvent,
    SessionError,
    SessionManager,
    SessionMetadata,
    SessionOwnerError,
    SessionStore,
    SimpleConversation,
)
from simulacra_session.integrations import ForeignSessionError
from simulacra_session.integrations.openai_agents import OpenAIAgentsSession
from simulacra_session.testing import assistant, texts
from simulacra_session.testing import msg as user

any_store = pytest.fixture(params=KINDS)(reopen_each)

KEY = "user-42"  # a valid session id: the openai-agents adapter stores it under this id
ITEMS: list[Any] = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


async def own_session(store: SessionStore) -> str:
    """A session a manager saved: two messages, no ``integration``."""
    conversation = SimpleConversation()
    async with SessionManager(store, conversation) as manager:
        session_id = manager.start_new("mine")
        conversation.append(user("one"))
        conversation.append(assistant("two"))
    return session_id


async def framework_session(store: SessionStore, key: str = KEY) -> OpenAIAgentsSession:
    """The openai-agents session of ``key``, written after every session before it: two
    appends, the second stamped strictly after the first (no tie with a session before)."""
    session = OpenAIAgentsSession(key, store)
    for item in ITEMS:
        await session.add_items([item])
    return session


async def test_load_without_an_id_skips_a_framework_session(any_store: Opener) -> None:
    async with any_store() as store:
        mine = await own_session(store)
        adapter = await framework_session(store)
        assert [meta.id for meta in await store.list(limit=1)] == [KEY]  # the most recent
        conversation = SimpleConversation()
        async with SessionManager(store, conversation) as manager:
            assert await manager.load() == mine
            assert texts(conversation.messages) == ["one", "two"]
            conversation.append(user("three"))  # auto-saved to the manager's own session
        assert await adapter.get_items() == ITEMS  # the framework reads its items alone
        stored = await store.load(mine)
        assert stored is not None
        assert texts(stored.messages) == ["one", "two", "three"]


class PagedStore(InMemorySessionStore):
    """The memory store, recording the pages it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: list[tuple[int | None, int]] = []

    async def list(self, *, limit: int | None = None, offset: int = 0) -> list[SessionMetadata]:
        self.pages.append((limit, offset))
        return await super().list(limit=limit, offset=offset)


async def test_load_without_an_id_pages_past_a_framework_s_sessions() -> None:
    store = PagedStore()
    mine = await own_session(store)
    for index in range(6):
        await framework_session(store, f"{KEY}-{index}")
    store.pages.clear()
    async with SessionManager(store, SimpleConversation()) as manager:
        assert await manager.load() == mine
    assert store.pages == [(1, 0), (2, 1), (4, 3)]  # pages twice as long each time


async def test_load_without_an_id_starts_a_new_session_when_every_one_is_a_framework_s() -> None:
    store = PagedStore()
    adapters = [await framework_session(store, f"{KEY}-{index}") for index in range(3)]
    framework_ids = {meta.id for meta in await store.list()}
    conversation = SimpleConversation()
    async with SessionManager(store, conversation) as manager:
        started = await manager.load()
        assert started not in framework_ids
        conversation.append(user("new"))
    assert store.pages[-3:] == [(1, 0), (2, 1), (4, 3)]  # to the end of the listing
    stored = await store.load(started)
    assert stored is not None
    assert texts(stored.messages) == ["new"]
    for adapter in adapters:
        assert await adapter.get_items() == ITEMS


def assert_names(error: SessionOwnerError, session_id: str) -> None:
    """``error`` is a ``SessionError`` naming ``session_id`` and the openai-agents integration."""
    assert isinstance(error, SessionError)
    assert (error.session_id, error.owner) == (session_id, "openai-agents")
    assert session_id in str(error)
    assert repr("openai-agents") in str(error)


async def unchanged(store: SessionStore) -> dict[str, Any]:
    """What the store holds: each session's metadata and messages, by id."""
    held = {}
    for meta in await store.list():
        stored = await store.load(meta.id)
        assert stored is not None
        held[meta.id] = (stored.metadata, stored.messages)
    return held


async def test_load_of_a_framework_session_is_refused(any_store: Opener) -> None:
    async with any_store() as store:
        mine = await own_session(store)
        adapter = await framework_session(store)
        before = await unchanged(store)
        conversation = SimpleConversation()
        async with SessionManager(store, conversation) as manager:
            assert await manager.load(mine) == mine
            with pytest.raises(SessionOwnerError) as refused:
                await manager.load(KEY)
            assert_names(refused.value, KEY)
            assert manager.current_session_id == mine  # still the manager's own
            assert texts(conversation.messages) == ["one", "two"]
        assert await unchanged(store) == before
        assert await adapter.get_items() == ITEMS


async def test_an_attached_fork_of_a_framework_session_is_refused_a_detached_one_made(
    any_store: Opener,
) -> None:
    async with any_store() as store:
        mine = await own_session(store)
        adapter = await framework_session(store)
        before = await unchanged(store)
        conversation = SimpleConversation()
        async with SessionManager(store, conversation) as manager:
            await manager.load(mine)
            with pytest.raises(SessionOwnerError) as refused:
                await manager.fork(KEY)
            assert_names(refused.value, KEY)
            assert manager.current_session_id == mine
            assert await unchanged(store) == before  # no fork saved
            # a detached fork reads nothing of its parent: the conversation is kept apart
            fork_id = await manager.fork(KEY, detached=True)
            assert texts(conversation.messages) == ["one", "two"]
        stored = await store.load(fork_id)
        assert stored is not None
        assert (stored.metadata.parent_id, stored.metadata.detached) == (KEY, True)
        assert "integration" not in (stored.metadata.model_extra or {})
        assert await adapter.get_items() == ITEMS


async def test_recover_refuses_the_manager_s_session_an_adapter_took(any_store: Opener) -> None:
    async with any_store() as store:
        conversation = SimpleConversation()
        errors: list[LifecycleErrorEvent] = []
        async with SessionManager(store, conversation) as manager:
            manager.on("lifecycle_error", errors.append)
            taken = manager.start_new()  # saved empty: an adapter given its id takes it
            await manager.flush()
            adapter = await framework_session(store, taken)
            conversation.append(user("mine"))
            await manager.flush()
            # every bundled store checks revisions: the manager's write, from before, is refused
            assert [type(event.error) for event in errors] == [ConflictError]
            with pytest.raises(SessionOwnerError) as refused:
                await manager.recover()
            assert_names(refused.value, taken)
            assert await adapter.get_items() == ITEMS
            kept = await manager.fork(taken, detached=True)  # the conversation, kept apart
        stored = await store.load(kept)
        assert stored is not None
        assert texts(stored.messages) == ["mine"]


def test_the_error_pickles_and_adapters_raise_a_subclass() -> None:
    error = SessionOwnerError("s1", "langchain")
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.session_id, again.owner, str(again)) == (
        SessionOwnerError,
        "s1",
        "langchain",
        str(error),
    )
    assert issubclass(ForeignSessionError, SessionOwnerError)
    foreign = ForeignSessionError("s1", "k", "langchain", "openai-agents")
    assert (foreign.session_id, foreign.owner) == ("s1", "openai-agents")
    assert isinstance(pickle.loads(pickle.dumps(foreign)), ForeignSessionError)
