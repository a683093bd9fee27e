"""Values a framework hands over that JSON cannot hold, and odd values already stored.

A datetime, bytes, a NaN, an int dict key or any object in a message (a LangChain tool's
``artifact``, a pydantic-ai tool's return, a Claude transcript entry) is refused with a
``SerializationError`` that names the adapter's key and its session, not only the value's
place in the batch, and the history stays as it was. A Claude transcript line whose
``uuid`` is not a string (stored as given) does not stop later appends to that key.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, cast

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic_ai.messages import ModelRequest, ToolReturnPart, UserPromptPart

from claude_agent_samples import KEY as CLAUDE_KEY
from claude_agent_samples import entry, marker
from integration_stores import Opener, reopen_each
from simulacra_session import SerializationError, SessionStore
from simulacra_session.ids import session_id_for_key
from simulacra_session.integrations.claude_agent_sdk import ClaudeAgentSessionStore
from simulacra_session.integrations.langchain import SimulacraChatMessageHistory
from simulacra_session.integrations.openai_agents import OpenAIAgentsSession
from simulacra_session.integrations.pydantic_ai import PydanticAIHistory

KEY = "tenant-7/user 42/chat"  # not a valid session id: stored under session_id_for_key(KEY)
any_store = pytest.fixture(params=["memory", "jsonl", "sqlite", "adapter"])(reopen_each)


class Opaque:
    """What a tool may return: an object neither JSON nor pydantic knows."""

    def __repr__(self) -> str:
        return "Opaque()"


NOT_JSON: dict[str, Any] = {
    "datetime": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    "bytes": b"\x89PNG",
    "nan": math.nan,
    "int key": {1: "one"},
    "object": Opaque(),
}

#: Per adapter: (the session id its key is stored under, a write of one good value and one
#: bad value in one batch, a read of the texts stored).
Write = Callable[[SessionStore, Any], Awaitable[None]]
Read = Callable[[SessionStore], Awaitable[list[str]]]


async def langchain_write(store: SessionStore, value: Any) -> None:
    await SimulacraChatMessageHistory(KEY, store).aadd_messages(
        [HumanMessage("also"), ToolMessage("done", tool_call_id="c1", artifact={"raw": value})]
    )


async def langchain_read(store: SessionStore) -> list[str]:
    return [str(m.content) for m in await SimulacraChatMessageHistory(KEY, store).aget_messages()]


async def pydantic_ai_write(store: SessionStore, value: Any) -> None:
    parts = [UserPromptPart("also"), ToolReturnPart("tool", {"raw": value}, tool_call_id="c1")]
    await PydanticAIHistory(KEY, store).extend([ModelRequest(parts=parts)])


async def pydantic_ai_read(store: SessionStore) -> list[str]:
    return [
        str(part.content) for message in await PydanticAIHistory(KEY, store).load() for part in message.parts
    ]


async def openai_agents_write(store: SessionStore, value: Any) -> None:
    await OpenAIAgentsSession(KEY, store).add_items(
        [{"role": "user", "content": "also"}, cast(Any, {"role": "user", "content": value})]
    )


async def openai_agents_read(store: SessionStore) -> list[str]:
    return [str(item.get("content")) for item in await OpenAIAgentsSession(KEY, store).get_items()]


async def claude_write(store: SessionStore, value: Any) -> None:
    await ClaudeAgentSessionStore(store).append(CLAUDE_KEY, [entry("also"), entry("bad", value=value)])


async def claude_read(store: SessionStore) -> list[str]:
    return [str(line["text"]) for line in await ClaudeAgentSessionStore(store).load(CLAUDE_KEY) or []]


ADAPTERS: dict[str, tuple[str, str, Write, Read]] = {
    "langchain": (KEY, session_id_for_key(KEY), langchain_write, langchain_read),
    "pydantic-ai": (KEY, session_id_for_key(KEY), pydantic_ai_write, pydantic_ai_read),
    "openai-agents": (KEY, session_id_for_key(KEY), openai_agents_write, openai_agents_read),
    "claude-agent-sdk": (
        CLAUDE_KEY["session_id"],
        ClaudeAgentSessionStore.store_id(CLAUDE_KEY),
        claude_write,
        claude_read,
    ),
}

FIRST: dict[str, Callable[[SessionStore], Awaitable[None]]] = {
    "langchain": lambda store: SimulacraChatMessageHistory(KEY, store).aadd_messages([AIMessage("kept")]),
    "pydantic-ai": lambda store: PydanticAIHistory(KEY, store).extend(
        [ModelRequest(parts=[UserPromptPart("kept")])]
    ),
    "openai-agents": lambda store: OpenAIAgentsSession(KEY, store).add_items(
        [{"role": "user", "content": "kept"}]
    ),
    "claude-agent-sdk": lambda store: ClaudeAgentSessionStore(store).append(CLAUDE_KEY, [entry("kept")]),
}


@pytest.mark.parametrize(
    ("adapter", "value"),
    [
        pytest.param(adapter, value, id=f"{adapter}-{name}")
        for adapter in ADAPTERS
        for name, value in NOT_JSON.items()
        # pydantic-ai writes its own JSON form of a datetime, bytes, a NaN (null), an int key
        if adapter != "pydantic-ai" or name == "object"
    ],
)
@pytest.mark.parametrize("existing", [False, True], ids=["new session", "existing session"])
async def test_a_value_json_lacks_is_refused_naming_the_key_and_session_and_nothing_is_written(
    any_store: Opener, adapter: str, value: Any, existing: bool
) -> None:
    key, session_id, write, read = ADAPTERS[adapter]
    async with any_store() as store:
        if existing:
            await FIRST[adapter](store)
        with pytest.raises(SerializationError) as refused:
            await write(store, value)
        said = str(refused.value)
        assert said.count(session_id) == 1, said  # named once: the store's error names it
        assert repr(key) in said, said
        assert await read(store) == (["kept"] if existing else [])
        # the writer that failed is not left holding a revision it did not write
        await FIRST[adapter](store)
        assert await read(store) == (["kept", "kept"] if existing else ["kept"])


@pytest.mark.parametrize("uuid", [["a", "list"], {"a": "dict"}], ids=["list", "dict"])
async def test_a_claude_line_whose_uuid_is_not_a_string_does_not_stop_later_appends(
    any_store: Opener, uuid: Any
) -> None:
    async with any_store() as store:
        claude = ClaudeAgentSessionStore(store)
        odd = cast(Any, {**marker("odd"), "uuid": uuid})
        first = entry("first")
        await claude.append(CLAUDE_KEY, [first, odd])  # a uuid that is no string: stored as given
        later = entry("later")
        await claude.append(CLAUDE_KEY, [later])
        await claude.append(CLAUDE_KEY, [later, first])  # retried: both already stored
        assert await claude.load(CLAUDE_KEY) == [first, odd, later]
