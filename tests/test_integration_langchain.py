"""SimulacraChatMessageHistory: LangChain chat histories in every bundled store, exactly.

Real langchain-core runnables on its fake chat models (no network), each turn over a store
object opened afresh, as a restarted process would: the history read back equals the
messages the turns exchanged. The sync API from a plain function, from worker threads at
once and on the application's loop; its error inside a running loop.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
)
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from cli_runs import KINDS as URL_KINDS  # the kinds a store URL names: file (jsonl, json), SQL
from cli_runs import store_of
from integration_stores import KINDS, missing_framework, reopener
from simulacra_session import (
    CorruptSessionError,
    FileSessionStore,
    InMemorySessionStore,
    JsonObject,
    Revision,
    SessionError,
)
from simulacra_session.cli.urls import OpenStore, open_store
from simulacra_session.ids import session_id_for_key
from simulacra_session.integrations.langchain import SimulacraChatMessageHistory, SyncCallError
from simulacra_session.stores.sql import SqlSessionStore

# RunnableWithMessageHistory is deprecated in langchain-core 1.x (for LangGraph's persistence),
# still shipped and still what runs a BaseChatMessageHistory
pytestmark = pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")

KEY = "tenant-7/user 42/chat"  # not a valid session id: stored under session_id_for_key(KEY)
QUESTIONS = ["What is the weather in Paris?", "And tomorrow?", "Thanks!"]


def replies() -> list[AIMessage]:
    """The fake model's answers: a tool call with usage and metadata, then plain text."""
    return [
        AIMessage(
            content="",
            tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "call-1", "type": "tool_call"}],
            usage_metadata={"input_tokens": 12, "output_tokens": 5, "total_tokens": 17},
            response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
            additional_kwargs={"reasoning": {"steps": ["look up", "answer"]}},
        ),
        AIMessage(content="Sunny, 24 °C ☀", response_metadata={"finish_reason": "stop"}, id="answer-2"),
        AIMessage(content=[{"type": "text", "text": "You're welcome."}], name="assistant"),
    ]


class Chat:
    """A RunnableWithMessageHistory over a fake model that answers ``replies()`` in turn, on
    the store ``open_store`` makes of ``url`` anew at each turn; ``seen``: what the model got."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers = iter(replies())
        self.seen: list[list[BaseMessage]] = []

    def chain(self, opened: OpenStore) -> RunnableWithMessageHistory:
        def look(prompt: PromptValue) -> PromptValue:
            self.seen.append(prompt.to_messages())
            return prompt

        prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{question}")])
        model = GenericFakeChatModel(messages=iter([next(self.answers)]))
        return RunnableWithMessageHistory(
            prompt | RunnableLambda(look) | model,
            lambda key: SimulacraChatMessageHistory(key, opened.store),
            input_messages_key="question",
            history_messages_key="history",
        )

    async def aturn(self, question: str) -> BaseMessage:
        opened = open_store(self.url, create=True)
        try:
            answer: BaseMessage = await self.chain(opened).ainvoke(
                {"question": question}, {"configurable": {"session_id": KEY}}
            )
            return answer
        finally:
            await opened.close()

    def turn(self, question: str) -> BaseMessage:
        opened = open_store(self.url, create=True)
        try:
            answer: BaseMessage = self.chain(opened).invoke(
                {"question": question}, {"configurable": {"session_id": KEY}}
            )
            return answer
        finally:
            asyncio.run(opened.close())


@pytest.fixture(params=URL_KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store of every kind: file (jsonl, json), SQLite, PostgreSQL, MariaDB."""
    with store_of(request.param, tmp_path, filled=False) as found:
        yield found


def read(url: str) -> list[BaseMessage]:
    """The history of ``KEY`` as a new process reads it, through the sync API."""
    opened = open_store(url, create=False)
    try:
        return SimulacraChatMessageHistory(KEY, opened.store).messages
    finally:
        asyncio.run(opened.close())


def check_turns(chat: Chat, answers: list[BaseMessage]) -> None:
    """The model saw every earlier message at each turn; the store holds them all, exactly."""
    expected: list[BaseMessage] = []
    for question, answer, seen in zip(QUESTIONS, answers, chat.seen, strict=True):
        expected.append(HumanMessage(content=question))
        assert seen == expected
        expected.append(answer)
    assert isinstance(answers[0], AIMessage)
    assert answers[0].tool_calls == replies()[0].tool_calls
    assert read(chat.url) == expected


async def test_three_turns_through_ainvoke(url: str) -> None:
    chat = Chat(url)
    answers = [await chat.aturn(question) for question in QUESTIONS]
    await asyncio.to_thread(check_turns, chat, answers)


def test_three_turns_through_invoke_in_a_plain_function(url: str) -> None:
    chat = Chat(url)
    check_turns(chat, [chat.turn(question) for question in QUESTIONS])


def every_kind_of_message() -> list[BaseMessage]:
    return [
        SystemMessage(content="Be brief.", id="system-1"),
        HumanMessage(
            content=[
                {"type": "text", "text": "What is this? é ✓ 🎉 \u2028"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
            name="ada",
            id="human-1",
        ),
        AIMessage(
            content="",
            tool_calls=[
                {"name": "lookup", "args": {"q": "png", "n": 2}, "id": "call-7", "type": "tool_call"}
            ],
            invalid_tool_calls=[
                {
                    "name": "broken",
                    "args": "{not json",
                    "id": "call-8",
                    "error": "bad JSON",
                    "type": "invalid_tool_call",
                }
            ],
            usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
            additional_kwargs={"refusal": None, "nested": {"x": [1, 2.5, True, None]}},
            response_metadata={"model_name": "fake", "finish_reason": "tool_calls", "big": 2**70},
            name="bot",
            id="ai-1",
        ),
        ToolMessage(
            content="a 1x1 PNG", tool_call_id="call-7", name="lookup", artifact={"rows": [1, 2]}, id="t-1"
        ),
        ToolMessage(content=[{"type": "text", "text": "failed"}], tool_call_id="call-8", status="error"),
        ChatMessage(role="critic", content="fine"),
        FunctionMessage(name="legacy", content="old style"),
        AIMessageChunk(content="partial", id="chunk-1"),
    ]


@pytest.mark.parametrize("kind", KINDS)
async def test_every_kind_of_message_comes_back_equal(kind: str, tmp_path: Path) -> None:
    messages = every_kind_of_message()
    with reopener(kind, tmp_path) as reopen:
        for batch in (messages[:3], messages[3:]):
            async with reopen() as store:
                await SimulacraChatMessageHistory(KEY, store).aadd_messages(batch)
        async with reopen() as store:
            assert await SimulacraChatMessageHistory(KEY, store).aget_messages() == messages
            stored = await store.load(session_id_for_key(KEY))
    assert stored is not None
    assert stored.messages == [message_to_dict(message) for message in messages]  # verbatim, one each
    assert stored.metadata.model_extra == {"integration": "langchain", "key": KEY}


async def test_keys_map_to_session_ids() -> None:
    store = InMemorySessionStore()
    for key in [KEY, "plain-id", "", "x" * 300]:
        history = SimulacraChatMessageHistory(key, store)
        assert history.id == session_id_for_key(key)
        await history.aadd_messages([HumanMessage(content=key)])
        stored = await store.load(history.id)
        assert stored is not None
        assert stored.metadata.model_extra == {"integration": "langchain", "key": key}
    assert SimulacraChatMessageHistory("plain-id", store).id == "plain-id"  # a valid id is its own
    assert [m.content for m in await SimulacraChatMessageHistory("", store).aget_messages()] == [""]
    assert len(await store.list()) == 4


def test_the_base_class_conveniences_go_through_add_messages(tmp_path: Path) -> None:
    history = SimulacraChatMessageHistory(KEY, FileSessionStore(tmp_path))
    history.add_user_message("hi")
    history.add_ai_message(AIMessage(content="hello", id="ai-1"))
    history.add_message(SystemMessage(content="be brief"))
    again = SimulacraChatMessageHistory(KEY, FileSessionStore(tmp_path))
    assert again.messages == [
        HumanMessage(content="hi"),
        AIMessage(content="hello", id="ai-1"),
        SystemMessage(content="be brief"),
    ]
    assert str(again) == "Human: hi\nAI: hello\nSystem: be brief"


async def test_a_batch_is_one_append(monkeypatch: pytest.MonkeyPatch) -> None:
    store, appends = InMemorySessionStore(), []
    append = store.append

    async def counted(id: str, messages: Sequence[JsonObject], *args: Any, **options: Any) -> Revision:
        appends.append(len(messages))
        return await append(id, messages, *args, **options)

    monkeypatch.setattr(store, "append", counted)
    history = SimulacraChatMessageHistory(KEY, store)
    await history.aadd_messages(every_kind_of_message())
    await history.aadd_messages([])
    await history.aadd_messages([HumanMessage(content="one more")])
    assert appends == [len(every_kind_of_message()), 1]
    assert len(await history.aget_messages()) == len(every_kind_of_message()) + 1


async def test_clear_empties_the_history_and_keeps_forks() -> None:
    store = InMemorySessionStore()
    parent = SimulacraChatMessageHistory("parent", store)
    await parent.aadd_messages([HumanMessage(content="hi"), AIMessage(content="hello")])
    await store.save(
        "fork",
        [message_to_dict(HumanMessage(content="mine"))],
        {"parent_id": "parent", "fork_message_count": 2},
    )
    fork = SimulacraChatMessageHistory("fork", store)
    assert [m.content for m in await fork.aget_messages()] == ["hi", "hello", "mine"]

    await parent.aclear()
    assert await parent.aget_messages() == []
    assert [m.content for m in await fork.aget_messages()] == ["hi", "hello", "mine"]
    await fork.aclear()
    assert await fork.aget_messages() == []
    await fork.aclear()  # already empty
    await SimulacraChatMessageHistory("absent", store).aclear()
    assert await store.load("absent") is None

    await parent.aadd_messages([HumanMessage(content="again")])
    assert [m.content for m in await parent.aget_messages()] == ["again"]
    stored = await store.load("parent")
    assert stored is not None
    assert stored.metadata.model_extra == {"integration": "langchain", "key": "parent"}


async def test_a_foreign_message_is_corrupt() -> None:
    store = InMemorySessionStore()
    await store.save(
        "other",
        [message_to_dict(HumanMessage(content="ok")), {"role": "user", "content": []}],
        {"integration": "langchain", "key": "other"},
    )
    with pytest.raises(CorruptSessionError, match=r"message 1 of session 'other' is not a LangChain message"):
        await SimulacraChatMessageHistory("other", store).aget_messages()


def test_the_sync_api_from_worker_threads_at_once(url: str) -> None:
    opened = open_store(url, create=True)
    threads, rounds = 8, 5
    start = threading.Barrier(threads)

    def chat(n: int) -> None:
        history = SimulacraChatMessageHistory(f"user {n % 2}", opened.store)  # two threads per history
        start.wait()
        for turn in range(rounds):
            history.add_messages([HumanMessage(content=f"{n}:{turn}"), AIMessage(content=f"re {n}:{turn}")])
            assert f"re {n}:{turn}" in [m.content for m in history.messages]

    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(chat, range(threads)))
        for key in ("user 0", "user 1"):
            contents = [str(m.content) for m in SimulacraChatMessageHistory(key, opened.store).messages]
            assert len(contents) == threads // 2 * rounds * 2
            for n in range(int(key[-1]), threads, 2):  # each thread's messages in its order, in pairs
                mine = [c for c in contents if c.removeprefix("re ").startswith(f"{n}:")]
                assert mine == [c for turn in range(rounds) for c in (f"{n}:{turn}", f"re {n}:{turn}")]
        history = SimulacraChatMessageHistory("user 0", opened.store)
        history.clear()
        assert history.messages == []
    finally:
        asyncio.run(opened.close())


async def test_the_sync_api_inside_a_running_loop_raises() -> None:
    history = SimulacraChatMessageHistory(KEY, InMemorySessionStore())
    with pytest.raises(SyncCallError, match=r"running and would block it: await aget_messages\(\) there"):
        _ = history.messages
    with pytest.raises(SyncCallError, match=r"await aadd_messages\(\)"):
        history.add_messages([HumanMessage(content="lost")])
    with pytest.raises(SyncCallError, match=r"await aclear\(\)"):
        history.clear()
    assert await history.aget_messages() == []
    assert issubclass(SyncCallError, SessionError)
    assert issubclass(SyncCallError, RuntimeError)


async def test_the_sync_api_on_the_applications_loop(tmp_path: Path) -> None:
    # an async engine's pooled connections belong to the loop that opened them: the sync API
    # of worker threads runs on the application's loop, the one the store is used on
    async with SqlSessionStore(f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}") as store:
        history = SimulacraChatMessageHistory(KEY, store, loop=asyncio.get_running_loop())
        await history.aadd_messages([HumanMessage(content="from the loop")])
        await asyncio.to_thread(history.add_messages, [AIMessage(content="from a thread")])
        read = await asyncio.to_thread(lambda: history.messages)
        assert [m.content for m in read] == ["from the loop", "from a thread"]
        assert await history.aget_messages() == read


def test_the_sync_api_needs_its_loop_running() -> None:
    loop = asyncio.new_event_loop()
    try:
        history = SimulacraChatMessageHistory(KEY, InMemorySessionStore(), loop=loop)
        with pytest.raises(SyncCallError, match="needs its loop running"):
            _ = history.messages
    finally:
        loop.close()


def test_a_missing_langchain_names_the_extra() -> None:
    said = missing_framework("langchain_core", "simulacra_session.integrations.langchain")
    assert said == "langchain_core is not installed: pip install 'simulacra-session[langchain]'"


def test_the_example_runs_and_its_history_continues(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "examples" / "langchain_example.py"
    for run in (1, 2):  # a second process continues the history the first left
        done = subprocess.run(
            [sys.executable, "-W", "error", str(example), str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        lines = done.stdout.splitlines()
        assert len(lines) == 6 * run
        assert lines[-6:] == [
            "human: Weather in Paris?",
            "   ai: ['calls weather']",
            " tool: sunny, 24 °C",
            "   ai: Sunny in Paris, 24 °C.",
            "human: What should I pack?",
            "   ai: Pack sunglasses.",
        ]
