"""OpenAIAgentsSession: openai-agents runs keep their items in every bundled store, verbatim.

Real openai-agents agents on its ``ScriptedModel`` (a ``Model`` subclass answering from a
script: no network), each turn over a store object opened afresh, as a restarted process
would. openai-agents' own tests of its sessions run against the adapter too: ``tests/ported``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner, TResponseInputItem, function_tool, set_tracing_disabled
from agents.memory import Session, SessionSettings
from agents.testing import ScriptedModel, assistant_message, function_call

from integration_stores import DURABLE, KINDS, Opener, missing_framework, reopen_each, run_example
from simulacra_session import (
    FileSessionStore,
    InMemorySessionStore,
    Revision,
    SerializationError,
    SessionStore,
    StoredSession,
)
from simulacra_session.ids import session_id_for_key
from simulacra_session.integrations.openai_agents import OpenAIAgentsSession

KEY = "tenant-7/user 42/chat"  # not a valid session id: stored under session_id_for_key(KEY)
set_tracing_disabled(True)  # no trace exporter reaching for the network


@function_tool
def weather(city: str) -> str:
    """The weather in ``city``."""
    return f"sunny in {city}"


def turns() -> tuple[Agent[Any], ScriptedModel, list[str]]:
    """An agent whose model calls the weather tool on the first turn and answers three turns."""
    model = ScriptedModel(
        [
            [function_call("weather", {"city": "Paris"}, call_id="call_1")],
            [assistant_message("Sunny in Paris.", item_id="m1")],
            [assistant_message("Sunny again.", item_id="m2")],
            [assistant_message("You are welcome.", item_id="m3")],
        ]
    )
    return (
        Agent(name="weather", model=model, tools=[weather]),
        model,
        ["Weather in Paris?", "Tomorrow?", "Thanks!"],
    )


def user(text: str) -> TResponseInputItem:
    return {"role": "user", "content": text}


reopen = pytest.fixture(params=DURABLE)(reopen_each)  # a new store object over the same sessions
any_store = pytest.fixture(params=KINDS)(reopen_each)  # the memory store too


async def test_three_turns_through_restarts_keep_every_item(reopen: Opener) -> None:
    agent, model, prompts = turns()
    for turn, prompt in enumerate(prompts):
        async with reopen() as store:
            result = await Runner.run(agent, prompt, session=OpenAIAgentsSession(KEY, store))
        async with reopen() as store:
            items = await OpenAIAgentsSession(KEY, store).get_items()
            stored = await store.load(session_id_for_key(KEY))
        # the model saw every earlier item, and the session holds what the run says it had
        assert model.calls[-1].input == items[:-1]
        assert items == result.to_input_list()
        assert stored is not None
        assert stored.messages == items  # one JSON object per item, verbatim
        assert stored.metadata.model_extra == {"integration": "openai-agents", "key": KEY}
        if turn == 0:
            assert [item.get("type") for item in items[1:3]] == ["function_call", "function_call_output"]
    assert len(items) == 8
    assert result.final_output == "You are welcome."


async def test_is_an_agents_session() -> None:
    session = OpenAIAgentsSession(KEY, InMemorySessionStore())
    assert isinstance(session, Session)
    assert session.session_id == KEY
    assert session.store_id == session_id_for_key(KEY) != KEY
    assert session.session_settings == SessionSettings()
    assert OpenAIAgentsSession("plain-id", InMemorySessionStore()).store_id == "plain-id"


async def test_items_come_back_equal(any_store: Opener) -> None:
    items: list[Any] = [
        user("naïve café 東京 🙂"),
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": '{"a": [1, 2.5, null]}'},
        {"type": "function_call_output", "call_id": "c", "output": "ok"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "..."}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "x", "annotations": []}]},
        {"custom": {"deep": [{"list": [True, False, None]}], "int": 2**53, "float": 0.1}},
    ]
    async with any_store() as store:
        await OpenAIAgentsSession(KEY, store).add_items(items)
    async with any_store() as store:
        session = OpenAIAgentsSession(KEY, store)
        assert await session.get_items() == items
        assert await session.get_items(limit=2) == items[-2:]
        assert await session.pop_item() == items[-1]


async def test_get_items_limits_as_sqlite_session_does(any_store: Opener) -> None:
    items = [user(f"m{i}") for i in range(6)]
    async with any_store() as store:
        session = OpenAIAgentsSession(KEY, store)
        assert await session.get_items() == []
        assert await session.get_items(limit=3) == []
        await session.add_items(items)
        assert await session.get_items() == items
        assert await session.get_items(limit=2) == items[-2:]
        assert await session.get_items(limit=6) == items
        assert await session.get_items(limit=60) == items
        assert await session.get_items(limit=0) == []
        assert await session.get_items(limit=-1) == items  # SQLite's LIMIT -1: no limit
        limited = OpenAIAgentsSession(KEY, store, session_settings={"limit": 4})
        assert await limited.get_items() == items[-4:]
        assert await limited.get_items(limit=1) == items[-1:]


async def test_pop_item_and_clear_session(any_store: Opener) -> None:
    items = [user(f"m{i}") for i in range(3)]
    async with any_store() as store:
        session = OpenAIAgentsSession(KEY, store)
        assert await session.pop_item() is None
        await session.add_items(items)
    async with any_store() as store:
        session = OpenAIAgentsSession(KEY, store)
        assert await session.pop_item() == items[2]
        assert await session.get_items() == items[:2]
    async with any_store() as store:
        session = OpenAIAgentsSession(KEY, store)
        await session.clear_session()
        assert await session.get_items() == []
        assert await session.pop_item() is None
        await session.clear_session()  # an empty session stays empty
        await session.add_items(items[:1])
        assert await session.get_items() == items[:1]
        stored = await store.load(session.store_id)
    assert stored is not None
    assert stored.metadata.model_extra == {"integration": "openai-agents", "key": KEY}


async def test_concurrent_pops_each_return_another_item(any_store: Opener) -> None:
    items = [user(f"m{i}") for i in range(6)]
    async with any_store() as store:
        await OpenAIAgentsSession(KEY, store).add_items(items)
        popped = await asyncio.gather(*(OpenAIAgentsSession(KEY, store).pop_item() for _ in range(8)))
        assert sorted(str(item.get("content")) for item in popped if item is not None) == [
            f"m{i}" for i in range(6)
        ]
        assert popped.count(None) == 2
        assert await OpenAIAgentsSession(KEY, store).get_items() == []


async def test_keys_never_share_a_session(any_store: Opener) -> None:
    keys = ["a/b", "a_b", "a b", "a/b/", "", "ß", "plain"]
    async with any_store() as store:
        for key in keys:
            await OpenAIAgentsSession(key, store).add_items([user(key)])
        for key in keys:
            assert await OpenAIAgentsSession(key, store).get_items() == [user(key)]


async def test_a_fork_pops_into_what_it_inherits_and_its_parent_keeps_it(any_store: Opener) -> None:
    parent = [user(f"p{i}") for i in range(3)]
    async with any_store() as store:
        await OpenAIAgentsSession("parent", store).add_items(parent)
        fork_meta = {"parent_id": "parent", "fork_message_count": 2}
        await store.save("fork", [user("f0")], fork_meta)
        fork = OpenAIAgentsSession("fork", store)
        assert await fork.get_items() == [*parent[:2], user("f0")]
        assert await fork.get_items(limit=2) == [parent[1], user("f0")]
        assert await fork.pop_item() == user("f0")
        assert await fork.pop_item() == parent[1]
        assert await fork.get_items() == parent[:1]
        await OpenAIAgentsSession("parent", store).clear_session()
        assert await fork.get_items() == parent[:1]
        assert await OpenAIAgentsSession("parent", store).get_items() == []


class CountingStore(InMemorySessionStore):
    """An in-memory store that counts the writes it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    async def append(self, id: str, *args: Any, **kwargs: Any) -> Revision:
        self.writes.append("append")
        return await super().append(id, *args, **kwargs)

    async def save(self, id: str, *args: Any, **kwargs: Any) -> Revision:
        self.writes.append("save")
        return await super().save(id, *args, **kwargs)


async def test_add_items_is_one_append_per_batch() -> None:
    store = CountingStore()
    session = OpenAIAgentsSession(KEY, store)
    await session.add_items([user("a"), user("b"), user("c")])
    await session.add_items([])
    await session.add_items([user("d")])
    assert store.writes == ["append", "append"]
    assert len(await session.get_items()) == 4


class NoAppendStore:
    """The least a store implements (``SessionStore``, no append, no revisions): the memory
    store's own methods."""

    def __init__(self) -> None:
        self.inner = InMemorySessionStore()

    async def list(self, *, limit: int | None = None, offset: int = 0) -> list[Any]:
        return await self.inner.list(limit=limit, offset=offset)

    async def load(self, id: str) -> StoredSession | None:
        return await self.inner.load(id)

    async def save(self, id: str, messages: Any, metadata: Any = None) -> Revision | None:
        return await self.inner.save(id, messages, metadata)

    async def delete(self, id: str) -> bool:
        return await self.inner.delete(id)


async def test_a_store_without_append_or_revisions_works() -> None:
    store: SessionStore = NoAppendStore()
    session = OpenAIAgentsSession(KEY, store)
    items = [user(f"m{i}") for i in range(4)]
    await session.add_items(items[:2])
    await session.add_items(items[2:])
    assert await session.get_items(limit=3) == items[1:]
    assert await session.pop_item() == items[3]
    await session.clear_session()
    assert await session.get_items() == []
    # creating the session cannot be conditional there: this process's appends take turns
    await asyncio.gather(*(OpenAIAgentsSession("new", store).add_items([item]) for item in items))
    added = await OpenAIAgentsSession("new", store).get_items()
    assert sorted(str(item.get("content")) for item in added) == ["m0", "m1", "m2", "m3"]


async def test_an_item_that_is_not_json_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    session = OpenAIAgentsSession(KEY, FileSessionStore(tmp_path))
    await session.add_items([user("kept")])
    not_json: Any = {"role": "user", "content": object()}
    with pytest.raises(SerializationError):
        await session.add_items([user("also"), not_json])
    assert await session.get_items() == [user("kept")]


def test_importing_without_openai_agents_names_the_extra() -> None:
    said = missing_framework("agents", "simulacra_session.integrations.openai_agents")
    assert said == "agents is not installed: pip install 'simulacra-session[openai-agents]'"


def test_example_runs_and_continues_after_a_restart(tmp_path: Path) -> None:
    first, second = run_example("openai_agents_example.py", tmp_path)
    assert first[1] == "Items so far: 1, the first: 'Plan a day in Lisbon.'."
    assert first[5:7] == [
        "Items so far: 5, the first: 'Plan a day in Lisbon.'.",
        "last two: ['user', 'assistant']",
    ]
    assert first[-1] == "undone: assistant - items left: 5"
    assert second[1] == "Items so far: 6, the first: 'Plan a day in Lisbon.'."  # 5 kept, then the prompt
