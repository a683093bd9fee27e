"""``InMemorySessionStore`` shared by threads, each with its own event loop (LangChain's sync
API runs its writes on a private loop thread while the app awaits on its own): every
acknowledged write is kept and no write from a stale revision lands. Its methods ran their
read-modify-write unguarded, so two threads could both pass the revision check and one
overwrite the other's messages (found by a helper's review of the adapters)."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator

import pytest

from simulacra_session import ConflictError, InMemorySessionStore

ROUNDS = 1500
THREADS = 3


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Threads switch every microsecond, so a race between them shows in a few hundred writes."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


async def _writer(store: InMemorySessionStore, name: str, payload: dict[str, object], checked: bool) -> None:
    """``ROUNDS`` appends; ``checked``: each conditional on the revision this writer last wrote
    or read (read again after a conflict), as an adapter's appends are."""
    revision = None
    for number in range(ROUNDS):
        message = {"text": f"{name}{number}", **payload}
        while True:
            try:
                if revision is None or not checked:
                    revision = await store.append("s", [message])  # the first: creates or adds
                else:
                    revision = await store.append("s", [message], expected=revision)
                break
            except ConflictError:
                stored = await store.load_tail("s", 0)
                assert stored is not None
                revision = stored.revision


@pytest.mark.usefixtures("switch_often")
@pytest.mark.parametrize("checked", [False, True], ids=["appends", "conditional-appends"])
def test_threads_with_their_own_loops_lose_no_acknowledged_append(checked: bool) -> None:
    store = InMemorySessionStore()
    payload = {f"k{i}": [i, {"x": "y" * 10}] for i in range(30)}  # work between read and write
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def run(name: str) -> None:
        try:
            start.wait()
            asyncio.run(_writer(store, name, payload, checked))
        except BaseException as error:  # reported below, with the thread's name
            errors.append(error)

    threads = [threading.Thread(target=run, args=(f"t{n}-",)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = asyncio.run(store.load("s"))
    assert stored is not None
    texts = [message["text"] for message in stored.messages]
    assert sorted(texts) == sorted(f"t{n}-{number}" for n in range(THREADS) for number in range(ROUNDS))
    assert stored.metadata.message_count == len(texts)
    assert stored.metadata == asyncio.run(store.list())[0]


@pytest.mark.usefixtures("switch_often")
def test_listing_and_loading_while_another_thread_writes() -> None:
    """Reads on one thread while another adds sessions and appends: never a ``dict changed
    size`` error, a torn document or a count that disagrees with the messages."""
    store = InMemorySessionStore()
    done = threading.Event()

    async def write() -> None:
        for number in range(ROUNDS):
            await store.save(f"s{number}", [{"text": "a"}])
            await store.append("s0", [{"text": str(number)}])
            await store.truncate("s0", 1) if number % 7 == 6 else None

    def writer() -> None:
        try:
            asyncio.run(write())
        finally:
            done.set()

    async def read() -> None:
        while not done.is_set():
            for meta in await store.list():
                assert meta.message_count >= 1
            stored = await store.load("s0")
            if stored is not None:
                assert stored.metadata.message_count == len(stored.messages)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        asyncio.run(read())
    finally:
        thread.join()
