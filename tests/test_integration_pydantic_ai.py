"""PydanticAIHistory: pydantic-ai runs keep their history in every bundled store, exactly.

Real pydantic-ai agents on its ``TestModel`` (no network), each turn over a store object
opened afresh, as a restarted process would: the history loaded equals ``all_messages()``.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import (
    BinaryContent,
    ImageUrl,
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from integration_stores import DURABLE, Opener, missing_framework, reopen_each, run_example
from simulacra_session import (
    CorruptSessionError,
    FileSessionStore,
    InMemorySessionStore,
    Revision,
    StoredSession,
)
from simulacra_session.ids import session_id_for_key
from simulacra_session.integrations.pydantic_ai import PydanticAIHistory

KEY = "tenant-7/user 42/chat"  # not a valid session id: stored under session_id_for_key(KEY)
PROMPTS = ["What is the weather in Paris?", "And tomorrow?", "Thanks!"]


def weather_agent() -> Agent[None, str]:
    """An agent on pydantic-ai's TestModel, which calls the tool on the first turn."""
    agent = Agent(TestModel(), instructions="Answer briefly.")

    @agent.tool_plain
    def weather(city: str) -> str:
        """The weather in ``city``."""
        return f"sunny in {city}"

    return agent


reopen = pytest.fixture(params=DURABLE)(reopen_each)  # a new store object over the same sessions


async def test_three_turns_through_restarts_load_all_messages(reopen: Opener) -> None:
    agent = weather_agent()
    for prompt in PROMPTS:
        async with reopen() as store:
            history = PydanticAIHistory(KEY, store)
            result = await agent.run(prompt, message_history=await history.load())
            await history.extend(result.new_messages())
        async with reopen() as store:
            loaded = await PydanticAIHistory(KEY, store).load()
            expected = result.all_messages()
            assert loaded == expected
            # the same JSON, byte for byte: timestamps keep their UTC offset
            assert ModelMessagesTypeAdapter.dump_json(loaded) == ModelMessagesTypeAdapter.dump_json(expected)
            stored = await store.load(session_id_for_key(KEY))
            assert await PydanticAIHistory(KEY, store).load(limit=3) == expected[-3:]
    assert stored is not None
    # one stored message per ModelMessage, the JSON object pydantic-ai dumps for it
    assert stored.messages == ModelMessagesTypeAdapter.dump_python(expected, mode="json")
    meta = stored.metadata.to_json_dict()
    assert (meta["integration"], meta["key"]) == ("pydantic-ai", KEY)
    parts = [part for message in loaded for part in message.parts]
    calls = [part for part in parts if isinstance(part, ToolCallPart)]
    returns = [part for part in parts if isinstance(part, ToolReturnPart)]
    assert [call.tool_name for call in calls] == ["weather"]
    assert [ret.content for ret in returns] == [f"sunny in {calls[0].args_as_dict()['city']}"]
    assert [ret.tool_call_id for ret in returns] == [calls[0].tool_call_id]
    assert len(loaded) == 8  # turn one: prompt, call, return, answer; then two messages a turn


class CountingStore(InMemorySessionStore):
    """A real in-memory store that records the size of each append."""

    def __init__(self) -> None:
        super().__init__()
        self.appended: list[int] = []

    async def append(self, *args: Any, **kwargs: Any) -> Revision:
        revision = await super().append(*args, **kwargs)
        self.appended.append(len(args[1]))
        return revision


async def test_extend_is_one_append_per_call() -> None:
    store = CountingStore()
    history = PydanticAIHistory("chat", store)
    first = await weather_agent().run(PROMPTS[0])
    await history.extend(first.new_messages())
    await history.extend([])
    assert store.appended == [len(first.new_messages())] == [4]
    assert history.id == "chat"  # a valid id is its own id
    assert await history.load() == first.all_messages()


async def test_binary_content_and_urls_round_trip() -> None:
    document = BinaryContent(data=b"%PDF-1.7\n\x00\xff", media_type="application/pdf")
    image = BinaryContent(data=b"\x89PNG\r\n\x1a\n\x00\xff", media_type="image/png")
    url = ImageUrl(url="https://example.com/a.png")
    sent: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart(content=["What are these?", document, image, url])])
    ]
    history = PydanticAIHistory("pictures", InMemorySessionStore())
    await history.extend(sent)
    loaded = await history.load()
    # what pydantic-ai's own adapter reads back from its JSON (which, by version, may fill in
    # an ImageUrl's media type or read an image's BinaryContent as its subclass BinaryImage)
    assert loaded == ModelMessagesTypeAdapter.validate_json(ModelMessagesTypeAdapter.dump_json(sent))
    assert ModelMessagesTypeAdapter.dump_json(loaded) == ModelMessagesTypeAdapter.dump_json(sent)
    part = loaded[0].parts[0]
    assert isinstance(part, UserPromptPart)
    assert [getattr(item, "data", None) for item in part.content] == [None, document.data, image.data, None]


async def test_fork_loads_what_it_inherits() -> None:
    store = InMemorySessionStore()
    history = PydanticAIHistory(KEY, store)
    agent = weather_agent()
    first = await agent.run(PROMPTS[0])
    await history.extend(first.new_messages())
    fork_of = {"parent_id": history.id, "fork_message_count": 4}
    await store.save("branch", [], fork_of)
    branch = PydanticAIHistory("branch", store)
    assert await branch.load() == first.all_messages()
    second = await agent.run(PROMPTS[1], message_history=await branch.load())
    await branch.extend(second.new_messages())
    assert await branch.load() == second.all_messages()
    assert await history.load() == first.all_messages()  # the parent is untouched
    assert await branch.load(limit=3) == second.all_messages()[-3:]  # two own, one inherited
    assert await branch.load(limit=0) == []
    assert await branch.load(limit=100) == second.all_messages()


async def test_clear_empties_the_history_and_forks_keep_theirs(reopen: Opener) -> None:
    agent = weather_agent()
    async with reopen() as store:
        history = PydanticAIHistory(KEY, store)
        await history.clear()  # nothing to clear
        first = await agent.run(PROMPTS[0])
        await history.extend(first.new_messages())
        await store.save("branch", [], {"parent_id": history.id, "fork_message_count": 4})
    async with reopen() as store:
        history = PydanticAIHistory(KEY, store)
        await history.clear()
        assert await history.load() == []
        assert await PydanticAIHistory("branch", store).load() == first.all_messages()
        stored = await store.load(history.id)
        assert stored is not None
        assert stored.metadata.to_json_dict()["key"] == KEY
        again = await agent.run(PROMPTS[1])
        await history.extend(again.new_messages())
    async with reopen() as store:
        assert await PydanticAIHistory(KEY, store).load() == again.all_messages()


async def test_absent_session_is_empty_and_foreign_messages_are_corrupt() -> None:
    store = InMemorySessionStore()
    assert await PydanticAIHistory("nobody", store).load() == []
    text = {"role": "user", "content": [{"type": "text", "text": "a Simulacra message"}]}
    await store.save(
        "mixed",
        [*ModelMessagesTypeAdapter.dump_python([ModelRequest.user_text_prompt("hi")], mode="json"), text],
        {"integration": "pydantic-ai", "key": "mixed"},
    )
    with pytest.raises(CorruptSessionError, match=r"session mixed .*message 1 of the 2 read is not"):
        await PydanticAIHistory("mixed", store).load()
    with pytest.raises(CorruptSessionError, match=r"message 0 of the 1 read"):
        await PydanticAIHistory("mixed", store).load(limit=1)


class ReadCounting(InMemorySessionStore):
    """A real in-memory store that counts the reads of a session or its tail."""

    reads = 0

    async def load(self, id: str) -> StoredSession | None:
        self.reads += 1
        return await super().load(id)

    async def load_tail(self, id: str, count: int, *, end: int | None = None) -> StoredSession | None:
        self.reads += 1
        return await super().load_tail(id, count, end=end)


async def test_a_negative_limit_is_refused_naming_it_and_the_session_before_any_read() -> None:
    store = ReadCounting()
    history = PydanticAIHistory(KEY, store)
    await history.extend([ModelRequest.user_text_prompt("hi")])
    store.reads = 0
    with pytest.raises(
        ValueError, match=rf"limit must not be negative, got limit=-1 \(session {history.id}, key"
    ):
        await history.load(limit=-1)  # as pydantic-ai's own ConversationStore.load refuses one
    assert store.reads == 0
    assert await history.load(limit=0) == []
    assert len(await history.load(limit=1)) == len(await history.load()) == 1


def test_missing_pydantic_ai_names_the_extra() -> None:
    said = missing_framework("pydantic_ai", "simulacra_session.integrations.pydantic_ai")
    assert said == "pydantic_ai is not installed: pip install 'simulacra-session[pydantic-ai]'"


def test_example_runs_and_continues_after_a_restart(tmp_path: Path) -> None:
    first, second = run_example("pydantic_ai_example.py", tmp_path)
    assert first[-1] == "Sunny in Paris (7 messages so far)"
    assert second[-1] == "Sunny in Paris (13 messages so far)"  # the history kept


def docs_example() -> str:
    """The pydantic-ai example of docs/integrations.md: the first python block after its heading."""
    docs = (Path(__file__).parent.parent / "docs" / "integrations.md").read_text()
    section = docs.split("\n## pydantic-ai\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


async def test_the_docs_example_holds_for_binary_and_non_json_tool_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returned = {
            part.tool_name
            for message in messages
            for part in message.parts
            if isinstance(part, ToolReturnPart)
        }
        due = [tool.name for tool in info.function_tools if tool.name not in returned]
        return ModelResponse(
            parts=[ToolCallPart(due[0], {}, tool_call_id=due[0])] if due else [TextPart("Sunny.")]
        )

    agent = Agent(FunctionModel(model))

    @agent.tool_plain
    def chart() -> BinaryContent:  # pydantic-ai reads it back as a BinaryImage
        return BinaryContent(data=b"\x89PNG\r\n\x1a\n", media_type="image/png")

    @agent.tool_plain
    def raw() -> bytes:  # reads back as its base64 string
        return b"\x00\x01"

    @agent.tool_plain
    def measured_at() -> datetime:  # reads back as its ISO 8601 string
        return datetime(2024, 1, 2, tzinfo=timezone.utc)

    monkeypatch.chdir(tmp_path)  # the example keeps its sessions in ./sessions
    namespace: dict[str, Any] = {"agent": agent}
    exec("async def example():\n" + textwrap.indent(docs_example(), "    "), namespace)
    await namespace["example"]()  # its assertions hold
    loaded = await PydanticAIHistory("user-42/chat", FileSessionStore(tmp_path / "sessions")).load()
    assert loaded == []  # the example ends with clear()
