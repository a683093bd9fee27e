"""Every bundled store side by side: one auto-save at 10/100/1000 messages, and a list of 10,000.

The auto-save is the one an agent pays: ``message_complete`` to stored (durable where the
store is), the conversation growing by one message per round; stores that append (memory,
file, SQL) write only the new message, the adapter store rewrites its row. The list reads
the metadata of 10,000 sessions of 10 messages each, warm. The fork chain resolves an
attached fork 300 deep (each level one message) into its history, as ``SessionManager.load``
does; the SQL stores fetch every ancestor in one statement (``load_chain``), and beside them
the same stores seen without it, one ``load`` per ancestor. Stores are opened by
``store_kinds.open_store`` (PostgreSQL and MySQL only when their servers are named).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import JsonObject, SessionMetadata, SessionStore, StoredSession
from simulacra_session.history import resolve_history

from corpus import LENGTHS, conversation, session_ids
from harness import IN_LOOP, autosave_round, rounds_run, sized
from store_kinds import STORES, open_store

ROUNDS = 30
LISTED = 10_000
LISTED_IN_A_SMOKE_RUN = 200  # filling 10,000 takes minutes on a server


@pytest.mark.benchmark(timer=IN_LOOP)
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("kind", STORES)
def test_autosave_by_store(
    benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path, kind: str, length: int
) -> None:
    messages = conversation(length + ROUNDS + 1)
    with open_store(kind, tmp_path) as store:
        session_id, one_message = autosave_round(loop, store, messages, length)
        benchmark.group = f"auto-save by store, {length} messages"
        benchmark.extra_info.update(store=kind, messages=length)
        benchmark.pedantic(IN_LOOP.run, (loop, one_message), rounds=ROUNDS, warmup_rounds=1)
        stored = loop.run_until_complete(store.load(session_id))
        assert stored is not None
        assert stored.messages == messages[: length + rounds_run(benchmark, ROUNDS, 1)]


def listed(config: pytest.Config) -> int:
    """How many sessions ``filled`` holds: ``LISTED``, fewer in a smoke run."""
    return sized(config, LISTED, LISTED_IN_A_SMOKE_RUN)


@pytest.fixture(scope="module", params=STORES)
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SessionStore]:
    """A store holding ``listed()`` sessions of 10 messages each."""
    messages = conversation(10)
    with open_store(request.param, tmp_path_factory.mktemp(request.param)) as store:

        async def fill() -> None:
            for session_id in session_ids(listed(request.config)):
                await store.save(session_id, messages)

        asyncio.run(fill())
        yield store


def test_list_by_store(
    benchmark: Any, loop: asyncio.AbstractEventLoop, filled: SessionStore, pytestconfig: pytest.Config
) -> None:
    count = listed(pytestconfig)
    loop.run_until_complete(filled.list())  # warm: caches filled, connections open
    benchmark.group = f"list {count} sessions by store (warm)"
    benchmark.extra_info.update(store=type(filled).__name__, sessions=count)
    listing = benchmark.pedantic(lambda: loop.run_until_complete(filled.list()), rounds=10, warmup_rounds=1)
    assert sorted(meta.id for meta in listing) == session_ids(count)
    updated = [meta.updated for meta in listing]
    assert updated == sorted(updated, reverse=True)


CHAIN = 300
SQL_KINDS = ("sqlite", "postgresql", "mysql")


class _OneAncestorAtATime:
    """A store seen without ``load_chain``: a fork resolves one ``load`` per ancestor."""

    def __init__(self, store: SessionStore) -> None:
        self._store = store

    async def list(self, *, limit: int | None = None, offset: int = 0) -> list[SessionMetadata]:
        return await self._store.list(limit=limit, offset=offset)

    async def load(self, id: str) -> StoredSession | None:
        return await self._store.load(id)

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await self._store.save(id, messages, metadata)

    async def delete(self, id: str) -> bool:
        return await self._store.delete(id)


@pytest.mark.parametrize(
    ("kind", "chained"),
    [(kind, True) for kind in STORES] + [(kind, False) for kind in SQL_KINDS],
    ids=[*STORES, *(f"{kind}-one-at-a-time" for kind in SQL_KINDS)],
)
def test_fork_chain_by_store(
    benchmark: Any, loop: asyncio.AbstractEventLoop, tmp_path: Path, kind: str, chained: bool
) -> None:
    messages = conversation(CHAIN + 1)
    with open_store(kind, tmp_path) as store:

        async def build() -> None:
            await store.save("c0", messages[:1])
            for level in range(1, CHAIN + 1):
                metadata = {"parent_id": f"c{level - 1}", "fork_message_count": level}
                await store.save(f"c{level}", messages[level : level + 1], metadata)

        loop.run_until_complete(build())
        resolving = store if chained else _OneAncestorAtATime(store)
        benchmark.group = f"load a {CHAIN}-deep fork chain by store"
        benchmark.extra_info.update(store=kind, depth=CHAIN)
        resolved = benchmark.pedantic(
            lambda: loop.run_until_complete(resolve_history(resolving, f"c{CHAIN}")),
            rounds=10,
            warmup_rounds=1,
        )
        assert resolved is not None
        assert resolved.messages == messages
