"""Writers of one session through many ``AdapterSessionStore`` objects of one process, on one
event loop or on loops in two threads: none loses an item another was told it wrote, and of
two saves from one revision one is refused.

The rows are one sqlite3 database; each store has an adapter (and a connection) of its own,
as a store made per request would. Its methods yield to the loop before each call, so that
writers on one loop interleave between their reads and their writes; across threads, the
first write of one thread waits for the other thread's read, or for ``WAIT`` seconds when a
lock keeps that read out (as it must).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from pydantic_ai.messages import ModelRequest, UserPromptPart

from claude_agent_samples import KEY as CLAUDE_KEY
from claude_agent_samples import entry
from simulacra_session import AdapterSessionStore, ConflictError, Revision, SessionRow, SessionStore
from simulacra_session._shared_locks import SharedLocks
from simulacra_session.integrations.claude_agent_sdk import ClaudeAgentSessionStore
from simulacra_session.integrations.langchain import SimulacraChatMessageHistory
from simulacra_session.integrations.openai_agents import OpenAIAgentsSession
from simulacra_session.integrations.pydantic_ai import PydanticAIHistory
from simulacra_session.testing import msg, texts

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))

from adapter_sqlite3 import Sqlite3Adapter  # the README's example adapter

KEY = "user-42/chat"
WAIT = 2.0  # seconds a thread's first write waits for the other thread's read


class Rows:
    """The example sqlite3 adapter, each call async and yielding to the loop first.

    ``loaded`` is set after each load; the first upsert waits for ``hold_until`` (at most
    ``WAIT`` seconds) before it writes."""

    def __init__(
        self,
        path: Path,
        *,
        loaded: threading.Event | None = None,
        hold_until: threading.Event | None = None,
    ) -> None:
        self.rows = Sqlite3Adapter(str(path))  # makes the table
        self.rows.db.close()
        self.rows.db = sqlite3.connect(path, check_same_thread=False)  # closed by the test's thread
        self.loaded = loaded
        self.hold_until = hold_until

    async def list(self) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        return self.rows.list()

    async def load(self, id: str) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        row = self.rows.load(id)
        if self.loaded is not None:
            self.loaded.set()
        return row

    async def upsert(self, row: SessionRow) -> None:
        if self.hold_until is not None:
            hold, self.hold_until = self.hold_until, None
            await asyncio.to_thread(hold.wait, WAIT)
        await asyncio.sleep(0)
        self.rows.upsert(row)

    async def delete(self, id: str) -> bool:
        await asyncio.sleep(0)
        return self.rows.delete(id)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Callable[..., AdapterSessionStore]]:
    """Opens a new store, with a new adapter and connection, over one database at each call."""
    opened: list[Rows] = []

    def open_store(**gates: threading.Event) -> AdapterSessionStore:
        adapter = Rows(tmp_path / "rows.db", **gates)
        opened.append(adapter)
        return AdapterSessionStore(adapter)

    yield open_store
    for adapter in opened:
        adapter.rows.db.close()


async def _openai_write(store: SessionStore, text: str) -> None:
    await OpenAIAgentsSession(KEY, store).add_items([{"role": "user", "content": text}])


async def _openai_read(store: SessionStore) -> list[str]:
    return [str(item.get("content")) for item in await OpenAIAgentsSession(KEY, store).get_items()]


async def _langchain_write(store: SessionStore, text: str) -> None:
    await SimulacraChatMessageHistory(KEY, store).aadd_messages([HumanMessage(text)])


async def _langchain_read(store: SessionStore) -> list[str]:
    return [str(message.content) for message in await SimulacraChatMessageHistory(KEY, store).aget_messages()]


async def _pydantic_write(store: SessionStore, text: str) -> None:
    await PydanticAIHistory(KEY, store).extend([ModelRequest(parts=[UserPromptPart(text)])])


async def _pydantic_read(store: SessionStore) -> list[str]:
    return [str(message.parts[0].content) for message in await PydanticAIHistory(KEY, store).load()]


async def _claude_write(store: SessionStore, text: str) -> None:
    await ClaudeAgentSessionStore(store).append(CLAUDE_KEY, [entry(text)])


async def _claude_read(store: SessionStore) -> list[str]:
    return [str(found["text"]) for found in await ClaudeAgentSessionStore(store).load(CLAUDE_KEY) or []]  # type: ignore[typeddict-item]


Write = Callable[[SessionStore, str], Awaitable[None]]
Read = Callable[[SessionStore], Awaitable[list[str]]]
INTEGRATIONS = {
    "openai-agents": (_openai_write, _openai_read),
    "langchain": (_langchain_write, _langchain_read),
    "pydantic-ai": (_pydantic_write, _pydantic_read),
    "claude-agent-sdk": (_claude_write, _claude_read),
}


@pytest.fixture(params=list(INTEGRATIONS))
def integration(request: pytest.FixtureRequest) -> tuple[Write, Read]:
    return INTEGRATIONS[request.param]


@pytest.mark.parametrize("existing", [False, True], ids=["new session", "existing session"])
async def test_writers_through_many_stores_on_one_loop_keep_every_item(
    database: Callable[..., AdapterSessionStore], integration: tuple[Write, Read], existing: bool
) -> None:
    write, read = integration
    if existing:
        await write(database(), "first")
    await asyncio.gather(*(write(database(), f"w{n}") for n in range(8)))
    stored = await read(database())
    assert sorted(stored) == sorted([*(["first"] if existing else []), *(f"w{n}" for n in range(8))])


def _in_two_threads(first: Callable[[], Awaitable[Any]], second: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Runs ``first`` and ``second`` each on an event loop of its own thread; their results
    (or exceptions), in that order."""
    results: list[Any] = [None, None]

    def run(index: int, work: Callable[[], Awaitable[Any]]) -> None:
        async def main() -> Any:
            return await work()

        try:
            results[index] = asyncio.run(main())
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


async def test_writers_on_loops_in_two_threads_keep_every_item(
    database: Callable[..., AdapterSessionStore], integration: tuple[Write, Read]
) -> None:
    write, read = integration
    first_read, second_read = threading.Event(), threading.Event()

    async def first() -> None:  # reads, then writes once the second has read (or could not)
        await write(database(loaded=first_read, hold_until=second_read), "a")

    async def second() -> None:
        await asyncio.to_thread(first_read.wait, WAIT)
        await write(database(loaded=second_read), "b")

    assert await asyncio.to_thread(_in_two_threads, first, second) == [None, None]
    assert sorted(await read(database())) == ["a", "b"]


@pytest.mark.parametrize("where", ["one loop", "two threads"])
async def test_of_two_saves_from_one_revision_through_two_stores_one_is_refused(
    database: Callable[..., AdapterSessionStore], where: str
) -> None:
    revision = await database().save("s", [msg("m0")])
    first_read, second_read = threading.Event(), threading.Event()

    async def save(text: str, **gates: threading.Event) -> Revision:
        return await database(**gates).save("s", [msg("m0"), msg(text)], expected=revision)

    if where == "one loop":
        results = await asyncio.gather(save("a"), save("b"), return_exceptions=True)
    else:

        async def second() -> Revision:
            await asyncio.to_thread(first_read.wait, WAIT)
            return await save("b", loaded=second_read)

        results = await asyncio.to_thread(
            _in_two_threads, lambda: save("a", loaded=first_read, hold_until=second_read), second
        )
    refused = [result for result in results if isinstance(result, ConflictError)]
    assert len(refused) == 1, results
    stored = await database().load("s")
    assert stored is not None
    assert texts(stored.messages) in (["m0", "a"], ["m0", "b"])


# -- the lock every loop shares ------------------------------------------------------------


async def test_a_waiter_cancelled_before_its_turn_leaves_the_lock_to_the_next() -> None:
    locks = SharedLocks()
    entered: list[str] = []

    async def take(name: str) -> None:
        async with locks.held("s"):
            entered.append(name)

    async with locks.held("s"):
        cancelled, after = asyncio.create_task(take("cancelled")), asyncio.create_task(take("after"))
        await asyncio.sleep(0)  # both wait for their turn
        cancelled.cancel()
    await after
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert entered == ["after"]
    assert not locks._queues  # nobody holds or awaits it: forgotten


@pytest.mark.parametrize("granted", [False, True], ids=["turn on its way", "turn given"])
async def test_a_waiter_cancelled_as_its_turn_comes_passes_the_lock_on(granted: bool) -> None:
    locks = SharedLocks()
    entered: list[str] = []

    async def take(name: str) -> None:
        async with locks.held("s"):
            entered.append(name)

    async with locks.held("s"):
        cancelled, after = asyncio.create_task(take("cancelled")), asyncio.create_task(take("after"))
        await asyncio.sleep(0)
    if granted:
        await asyncio.sleep(0)  # the turn is handed to the waiter, which has not run yet
    cancelled.cancel()
    await after
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert entered == ["after"]
    assert not locks._queues


def test_holders_on_loops_in_threads_take_turns() -> None:
    locks = SharedLocks()
    inside = 0
    most = 0
    guard = threading.Lock()

    async def work() -> None:
        nonlocal inside, most
        for _ in range(50):
            async with locks.held("s"):
                with guard:
                    inside += 1
                    most = max(most, inside)
                await asyncio.sleep(0)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=asyncio.run, args=(work(),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (most, inside) == (1, 0)
    assert not locks._queues
