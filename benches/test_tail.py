"""Tail reads and truncation on every bundled store: ``read_tail(5)`` and ``truncate(1)`` of a
5,000-message session against the same on a 10-message session, in interleaved rounds.

The issue's targets (an adapter's ``get_items(limit=5)`` and ``pop_item``): the long session
within 2x of the short one, its ``paired ratio`` (see ``harness.paired``). A store with
``load_tail`` and ``truncate`` reads and removes only what it is asked to; the adapter store
has neither (its adapter moves whole rows), and ``simulacra_session.history`` falls back to a
whole load and save there: its ratio shows what that costs. No target is asserted: the ratios
are read from one run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import SessionStore, read_tail, truncate
from simulacra_session.protocols import AppendableSessionStore

from corpus import conversation
from harness import paired, rounds_run, run_in_loop
from store_kinds import STORES, open_store

LONG, SHORT, TAIL = 5000, 10, 5
ROUNDS, BLOCK = 20, 3


@pytest.fixture(params=STORES)
def sessions(
    request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> Iterator[tuple[SessionStore, list[dict[str, Any]]]]:
    """A store of each kind holding ``long`` (5,000 messages) and ``short`` (10), and the messages."""
    messages = conversation(LONG)
    with open_store(request.param, tmp_path) as store:
        loop.run_until_complete(store.save("long", messages))
        loop.run_until_complete(store.save("short", messages[:SHORT]))
        yield store, messages


def _tail_reader(loop: asyncio.AbstractEventLoop, store: SessionStore, session_id: str) -> Any:
    """One timed ``read_tail(store, session_id, 5)``, returning the seconds it took."""

    async def read() -> None:
        tail = await read_tail(store, session_id, TAIL)
        assert tail is not None
        assert len(tail.messages) == TAIL

    return lambda: run_in_loop(loop, read)


def test_read_tail(
    benchmark: Any, loop: asyncio.AbstractEventLoop, sessions: tuple[SessionStore, list[dict[str, Any]]]
) -> None:
    store, messages = sessions
    benchmark.group = f"read_tail({TAIL}): {LONG} messages against {SHORT}"
    benchmark.extra_info.update(long=LONG, short=SHORT)
    paired(benchmark, ROUNDS, _tail_reader(loop, store, "short"), _tail_reader(loop, store, "long"), BLOCK)
    tail = loop.run_until_complete(read_tail(store, "long", TAIL))
    assert tail is not None
    assert tail.messages == messages[LONG - TAIL :]


def _popper(
    loop: asyncio.AbstractEventLoop, store: SessionStore, session_id: str, last: dict[str, Any]
) -> Any:
    """One timed ``truncate(store, session_id, 1)``, returning the seconds it took; the message
    it removed is put back afterwards, untimed."""

    async def pop() -> None:
        await truncate(store, session_id, 1)

    async def put_back() -> None:
        if isinstance(store, AppendableSessionStore):
            await store.append(session_id, [last])
        else:
            stored = await store.load(session_id)
            assert stored is not None
            await store.save(session_id, [*stored.messages, last])

    def timed() -> float:
        taken = run_in_loop(loop, pop)
        loop.run_until_complete(put_back())
        return taken

    return timed


def test_truncate(
    benchmark: Any, loop: asyncio.AbstractEventLoop, sessions: tuple[SessionStore, list[dict[str, Any]]]
) -> None:
    store, messages = sessions
    benchmark.group = f"truncate(1): {LONG} messages against {SHORT}"
    benchmark.extra_info.update(long=LONG, short=SHORT)
    short = _popper(loop, store, "short", messages[SHORT - 1])
    long = _popper(loop, store, "long", messages[LONG - 1])
    paired(benchmark, ROUNDS, short, long, BLOCK)
    runs = rounds_run(benchmark, ROUNDS, 1)
    assert runs >= 1
    for session_id, length in (("long", LONG), ("short", SHORT)):
        stored = loop.run_until_complete(store.load(session_id))
        assert stored is not None
        assert stored.messages == messages[:length]  # every message removed was put back
