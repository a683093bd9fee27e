"""SessionManager: what is particular to it beyond the conformance kit (events, listing, delete).

What a manager does on any store (auto-save, slugs, load, forks, children, delete, events)
is ``simulacra_session.testing.SessionManagerConformance``, which every bundled store runs
(tests/test_store_memory.py, tests/test_store_file.py). The save queue is tested in
tests/test_manager_queue.py, what an auto-save writes and forks read in
tests/test_manager_history.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from simulacra_session import (
    InMemorySessionStore,
    JsonObject,
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
    manager = {name for name in dir(SessionManagerConformance) if name.startswith("test")}
    contract = {name for name in dir(SessionStoreContract) if name.startswith("test")}
    assert manager
    assert contract
    assert not manager & contract


def test_unknown_event_and_bad_store() -> None:
    manager = SessionManager(InMemorySessionStore(), SimpleConversation())
    with pytest.raises(ValueError, match="unknown event"):
        manager.on("saved", print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SessionStore"):
        SessionManager(object(), SimpleConversation())  # type: ignore[arg-type]


# -- listing --------------------------------------------------------------------------


class ProtocolOnlyStore:
    """A store written against ``SessionStore`` alone (no bundled base), recording its pages."""

    def __init__(self) -> None:
        self.inner = InMemorySessionStore()
        self.pages: list[tuple[int | None, int]] = []

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
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


# -- delete ---------------------------------------------------------------------------


class RemoteStore(InMemorySessionStore):
    """The memory store behind a network round trip: every call yields to the loop first."""

    async def list(self, *, limit: int | None = None, offset: int = 0) -> list[Any]:
        await asyncio.sleep(0.01)
        return await super().list(limit=limit, offset=offset)

    async def delete(self, id: str) -> bool:
        await asyncio.sleep(0.01)
        return await super().delete(id)


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
