"""Framework keys: one key in several frameworks, and keys that are not strings.

openai-agents, LangChain and pydantic-ai store a key under ``session_id_for_key(key)``, with
no prefix of their own (sessions already stored keep their ids), so one key (a user id, say)
given to two of them names one session. Each adapter checks the session's ``integration``
before it reads, appends, pops or clears, and refuses another's, or a session of messages
no integration wrote, with ``ForeignSessionError``: nothing read or written. A key that is
not a ``str`` is refused naming its type and value.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from claude_agent_sdk import SessionKey
from langchain_core.messages import HumanMessage
from pydantic_ai.messages import ModelRequest

from claude_agent_samples import Reads
from integration_stores import KINDS, Opener, reopen_each
from simulacra_session import (
    InMemorySessionStore,
    InvalidSessionIdError,
    SessionError,
    SessionStore,
    StoredSession,
)
from simulacra_session.ids import InvalidKeyError, session_id_for_key
from simulacra_session.integrations import ForeignSessionError
from simulacra_session.integrations.claude_agent_sdk import ClaudeAgentSessionStore
from simulacra_session.integrations.langchain import SimulacraChatMessageHistory
from simulacra_session.integrations.openai_agents import OpenAIAgentsSession
from simulacra_session.integrations.pydantic_ai import PydanticAIHistory

KEY = "user-42"  # a valid session id: its own id in every adapter but the Claude one
any_store = pytest.fixture(params=KINDS)(reopen_each)

Operation = Callable[[], Awaitable[object]]


def operations(integration: str, store: SessionStore, key: str) -> dict[str, Operation]:
    """Every read and write the adapter of ``integration`` makes on the session of ``key``."""
    if integration == "openai-agents":
        session = OpenAIAgentsSession(key, store)
        return {
            "get_items": session.get_items,
            "get_items(limit=1)": lambda: session.get_items(limit=1),
            "add_items": lambda: session.add_items([{"role": "user", "content": "openai-agents"}]),
            "pop_item": session.pop_item,
            "clear_session": session.clear_session,
        }
    if integration == "langchain":
        history = SimulacraChatMessageHistory(key, store)
        return {
            "aget_messages": history.aget_messages,
            "aadd_messages": lambda: history.aadd_messages([HumanMessage("langchain")]),
            "aclear": history.aclear,
        }
    assert integration == "pydantic-ai"
    messages = PydanticAIHistory(key, store)
    return {
        "load": messages.load,
        "load(limit=1)": lambda: messages.load(limit=1),
        "extend": lambda: messages.extend([ModelRequest.user_text_prompt("pydantic-ai")]),
        "clear": messages.clear,
    }


def writes(integration: str) -> str:
    """The name of the operation that appends, in ``operations(integration, ...)``."""
    return {"openai-agents": "add_items", "langchain": "aadd_messages", "pydantic-ai": "extend"}[integration]


INTEGRATIONS = ["openai-agents", "langchain", "pydantic-ai"]


async def assert_refused(
    store: SessionStore,
    session_id: str,
    key: object,
    owner: str | None,
    integrations: list[str],
    str_key: str,
) -> None:
    """Every operation of each of ``integrations`` on ``str_key`` raises ``ForeignSessionError``
    naming the session, the key and ``owner``, and leaves the stored session as it was."""
    before = await store.load(session_id)
    assert before is not None
    for integration in integrations:
        for name, operation in operations(integration, store, str_key).items():
            with pytest.raises(ForeignSessionError) as refused:
                await operation()
            error = refused.value
            assert isinstance(error, SessionError), name
            assert (error.session_id, error.key, error.owner, error.integration) == (
                session_id,
                key,
                owner,
                integration,
            ), name
            said = str(error)
            for named in (session_id, repr(key), repr(integration)):
                assert named in said, said
            if owner is not None:
                assert repr(owner) in said, said
    after = await store.load(session_id)
    assert after is not None
    assert (after.messages, after.metadata) == (before.messages, before.metadata)  # nothing written


@pytest.mark.parametrize("owner", INTEGRATIONS)
async def test_a_key_another_framework_wrote_is_refused_by_the_others(any_store: Opener, owner: str) -> None:
    async with any_store() as store:
        await operations(owner, store, KEY)[writes(owner)]()
        others = [integration for integration in INTEGRATIONS if integration != owner]
        await assert_refused(store, session_id_for_key(KEY), KEY, owner, others, KEY)
        # the owner reads, writes and clears its own as before
        for operation in operations(owner, store, KEY).values():
            await operation()
        stored = await store.load(session_id_for_key(KEY))
        assert stored is not None
        assert stored.metadata.model_extra == {"integration": owner, "key": KEY}


async def test_each_framework_keeps_its_histories_under_keys_of_its_own(any_store: Opener) -> None:
    async with any_store() as store:
        for integration in INTEGRATIONS:
            await operations(integration, store, f"{integration}:{KEY}")[writes(integration)]()
        assert await OpenAIAgentsSession(f"openai-agents:{KEY}", store).get_items() == [
            {"role": "user", "content": "openai-agents"}
        ]
        assert [
            m.content for m in await SimulacraChatMessageHistory(f"langchain:{KEY}", store).aget_messages()
        ] == ["langchain"]
        assert len(await PydanticAIHistory(f"pydantic-ai:{KEY}", store).load()) == 1


async def test_a_session_of_messages_no_integration_wrote_is_refused(any_store: Opener) -> None:
    async with any_store() as store:
        # a SessionManager's conversation, or a session saved by hand, under the key's id
        await store.save(KEY, [{"id": "m1", "role": "user", "content": "hi"}], {"label": "mine"})
        await assert_refused(store, KEY, KEY, None, INTEGRATIONS, KEY)
        said = ""
        try:
            await OpenAIAgentsSession(KEY, store).get_items()
        except ForeignSessionError as error:
            said = str(error)
        assert "no 'integration'" in said


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_an_empty_session_no_integration_wrote_becomes_the_adapters(
    any_store: Opener, integration: str
) -> None:
    async with any_store() as store:
        await store.save(KEY, [], {"label": "made empty"})
        ops = operations(integration, store, KEY)
        await ops[writes(integration)]()
        stored = await store.load(KEY)
        assert stored is not None
        assert stored.metadata.model_extra == {"integration": integration, "key": KEY}
        assert (stored.metadata.label, stored.metadata.message_count) == ("made empty", 1)


async def test_claude_transcripts_and_other_frameworks_sessions_stay_apart(any_store: Opener) -> None:
    claude_key: SessionKey = {"project_key": "p", "session_id": "s"}
    as_other_key = json.dumps(["claude-agent-sdk", "p", "s"], ensure_ascii=False, separators=(",", ":"))
    session_id = ClaudeAgentSessionStore.store_id(claude_key)
    assert session_id_for_key(as_other_key) == session_id
    async with any_store() as store:
        claude = ClaudeAgentSessionStore(store)
        await claude.append(claude_key, [{"type": "user", "uuid": "u1", "timestamp": "2024-01-01T00:00:00Z"}])
        await assert_refused(store, session_id, as_other_key, "claude-agent-sdk", INTEGRATIONS, as_other_key)
        assert await claude.load(claude_key) == [
            {"type": "user", "uuid": "u1", "timestamp": "2024-01-01T00:00:00Z"}
        ]

    other_key: SessionKey = {"project_key": "p", "session_id": "o"}
    taken_by = json.dumps(["claude-agent-sdk", "p", "o"], ensure_ascii=False, separators=(",", ":"))
    async with any_store() as store:
        await OpenAIAgentsSession(taken_by, store).add_items([{"role": "user", "content": "first"}])
        taken = ClaudeAgentSessionStore.store_id(other_key)
        before = await store.load(taken)
        claude = ClaudeAgentSessionStore(store)
        refusals: list[tuple[str, Operation]] = [
            ("load", lambda: claude.load(other_key)),
            ("append", lambda: claude.append(other_key, [{"type": "user", "uuid": "u2"}])),
            ("append without uuid", lambda: claude.append(other_key, [{"type": "tag"}])),
            ("delete", lambda: claude.delete(other_key)),
        ]
        for name, operation in refusals:
            with pytest.raises(ForeignSessionError) as refused:
                await operation()
            error = refused.value
            assert (error.session_id, error.key, error.owner, error.integration) == (
                taken,
                {"project_key": "p", "session_id": "o"},
                "openai-agents",
                "claude-agent-sdk",
            ), name
        after = await store.load(taken)
        assert before is not None
        assert after is not None
        assert (after.messages, after.metadata) == (before.messages, before.metadata)


async def test_a_subagent_transcript_append_without_uuids_checks_the_owner_too(any_store: Opener) -> None:
    key: SessionKey = {"project_key": "p", "session_id": "s", "subpath": "subagents/a"}
    as_other_key = json.dumps(
        ["claude-agent-sdk", "p", "s", "subagents/a"], ensure_ascii=False, separators=(",", ":")
    )
    async with any_store() as store:
        await PydanticAIHistory(as_other_key, store).extend([ModelRequest.user_text_prompt("mine")])
        with pytest.raises(ForeignSessionError, match="'pydantic-ai'"):
            await ClaudeAgentSessionStore(store).append(key, [{"type": "tag", "tag": "x"}])
        stored = await store.load(ClaudeAgentSessionStore.store_id(key))
        assert isinstance(stored, StoredSession)
        assert stored.metadata.message_count == 1


@pytest.mark.parametrize("integration", INTEGRATIONS)
async def test_an_adapter_checks_again_once_its_session_changed_hands(
    any_store: Opener, integration: str
) -> None:
    async with any_store() as store:
        mine = operations(integration, store, KEY)
        await mine[writes(integration)]()
        await mine[writes(integration)]()  # made from the revision it wrote
        await store.delete(session_id_for_key(KEY))  # deleted, then written by another framework
        other = next(name for name in INTEGRATIONS if name != integration)
        await operations(other, store, KEY)[writes(other)]()
        before = await store.load(session_id_for_key(KEY))
        with pytest.raises(ForeignSessionError, match=repr(other)):
            await mine[writes(integration)]()
        after = await store.load(session_id_for_key(KEY))
        assert before is not None
        assert after is not None
        assert (after.messages, after.metadata) == (before.messages, before.metadata)


async def test_appends_after_the_first_read_nothing_to_check_the_owner() -> None:
    reads = Reads()
    session = OpenAIAgentsSession(KEY, reads)
    await session.add_items([{"role": "user", "content": "first"}])
    assert reads.tails == [0]  # whose the session is, before the first append
    for n in range(3):
        await session.add_items([{"role": "user", "content": str(n)}])
    assert await session.get_items(limit=2) == [
        {"role": "user", "content": "1"},
        {"role": "user", "content": "2"},
    ]
    await session.add_items([{"role": "user", "content": "after a read"}])
    assert (reads.tails, reads.loaded) == ([0, 2], [])  # appends conditional on the revision seen


def test_foreign_session_errors_pickle_with_their_parts() -> None:
    error = ForeignSessionError("user-42", "user-42", "langchain", "openai-agents")
    again = pickle.loads(pickle.dumps(error))
    assert (again.session_id, again.key, again.integration, again.owner, str(again)) == (
        "user-42",
        "user-42",
        "langchain",
        "openai-agents",
        str(error),
    )


# -- keys that are not strings --------------------------------------------------------------

NOT_STR: list[Any] = [42, None, b"user-42", ("a", "b")]


@pytest.mark.parametrize("key", NOT_STR)
def test_a_key_that_is_not_a_str_is_refused_naming_its_type_and_value(key: Any) -> None:
    store = cast(SessionStore, None)
    makers: list[Callable[[], object]] = [
        lambda: session_id_for_key(key),
        lambda: OpenAIAgentsSession(key, store),
        lambda: SimulacraChatMessageHistory(key, store),
        lambda: PydanticAIHistory(key, store),
    ]
    for make in makers:
        with pytest.raises(InvalidKeyError) as refused:
            make()
        error = refused.value
        assert isinstance(error, InvalidSessionIdError)  # what it was, and a ValueError
        assert str(error) == f"invalid key {key!r}: expected a str (any string), got {type(key).__name__}"
        assert error.key is key


@pytest.mark.parametrize("part", ["project_key", "session_id", "subpath"])
async def test_a_claude_key_part_that_is_not_a_str_is_refused_naming_it(part: str) -> None:
    key: dict[str, object] = {"project_key": "p", "session_id": "s", "subpath": "sub"}
    key[part] = 7
    with pytest.raises(InvalidKeyError) as refused:
        await ClaudeAgentSessionStore(InMemorySessionStore()).load(cast(SessionKey, key))
    said = f"invalid Claude Agent SDK key's {part} 7: expected a str (any string), got int"
    assert str(refused.value) == said
