"""Four processes load one session and auto-save it: nothing is lost, silently or at all.

Each process loads the session, waits until all four have, then adds its messages one at a
time, auto-saving each. Every process's first save is made from the revision all four
loaded, so at most one of them lands and the others fail with ``ConflictError``, reported
as ``lifecycle_error``; a process that hears of one calls ``SessionManager.recover`` (the
documented remedy) and goes on. In the end every acknowledged save is in the session, and
every message of every process is there exactly once, in its process's order. Without
revisions, the stale full saves silently rewrote over the others' messages.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from integration_stores import Processes
from session_samples import server_url, sql_table
from simulacra_session import FileSessionStore, SessionStore
from simulacra_session.testing import msg

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX: one process writes a root")

WRITER = textwrap.dedent(
    """
    import asyncio, json, sys
    from simulacra_session import ConflictError, FileSessionStore, SessionManager, SimpleConversation

    kind, where, tag, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    async def main():
        if kind == "sql":
            from simulacra_session.stores.sql import SqlSessionStore  # SQLAlchemy: only where used

            url, table = where.rsplit("?table=", 1)
            store = SqlSessionStore(url, table=table)
        else:
            store = FileSessionStore(where, format=kind)
        conversation = SimpleConversation()
        manager = SessionManager(store, conversation)
        acknowledged, conflicts, others = set(), [], []
        def saved(event):
            acknowledged.update(m["content"] for m in event.messages if isinstance(m["content"], str))
        manager.on("save", saved)
        def failed(event):
            (conflicts if isinstance(event.error, ConflictError) else others).append(repr(event.error))
        manager.on("lifecycle_error", failed)

        async def recover():
            while True:
                try:
                    await manager.recover()
                    return
                except ConflictError as error:  # another process saved meanwhile: again
                    conflicts.append(repr(error))

        await manager.load("s")
        print("loaded", flush=True)
        told.readline()  # all four have loaded: go
        heard = 0
        for index in range(count):
            conversation.append({"role": "user", "content": f"{tag}{index}"})
            await asyncio.sleep(0.001 * (index % 3))  # the auto-save runs; others interleave
            if len(conflicts) > heard:
                await recover()
                heard = len(conflicts)
        await manager.flush()
        while len(conflicts) > heard:
            heard = len(conflicts)
            await recover()
            await manager.flush()
        if kind == "sql":
            await store.close()
        print(json.dumps({"acknowledged": sorted(acknowledged), "conflicts": conflicts, "others": others}))

    asyncio.run(main())
    """
)


@contextmanager
def shared(kind: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Where the four processes meet: the kind of store and its place (a root or a URL)."""
    if kind in ("jsonl", "json"):
        yield kind, str(tmp_path)
    elif kind == "sqlite":
        with sql_table(f"sqlite:///{tmp_path / 'sessions.db'}") as url:
            yield "sql", url
    else:
        with sql_table(server_url(kind)) as url:
            yield "sql", url


def open_store(kind: str, where: str) -> SessionStore:
    if kind == "sql":
        from simulacra_session.stores.sql import SqlSessionStore

        url, table = where.rsplit("?table=", 1)
        return SqlSessionStore(url, table=table)
    return FileSessionStore(where, format=kind)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["jsonl", "json", "sqlite", "postgres", "mysql"])
def test_four_processes_auto_saving_one_session_lose_nothing(tmp_path: Path, kind: str) -> None:
    tags, count = "abcd", 12
    with shared(kind, tmp_path) as (store_kind, where):
        store = open_store(store_kind, where)
        asyncio.run(store.save("s", [msg("seed 1"), msg("seed 2")]))
        with Processes(WRITER, [[store_kind, where, tag, str(count)] for tag in tags]) as children:
            assert children.lines() == [b"loaded\n"] * len(tags), children.finish()
            children.say("go")  # all four at once
            outs = children.lines(timeout=300)
            ends = children.finish()
        assert [status for status, _ in ends] == [0] * len(tags), ends
        reports: list[dict[str, Any]] = [json.loads(out) for out in outs]
        stored = asyncio.run(store.load("s"))
        if hasattr(store, "close"):
            asyncio.run(store.close())
    assert stored is not None
    contents = [m["content"] for m in stored.messages]
    assert contents[:2] == [[{"type": "text", "text": "seed 1"}], [{"type": "text", "text": "seed 2"}]]
    for report in reports:
        assert report["acknowledged"], "every process had saves acknowledged"
        missing = [text for text in report["acknowledged"] if text not in contents]
        assert not missing, f"acknowledged saves lost: {missing}"
        assert report["others"] == [], "only conflicts may fail"
    for tag in tags:  # every message of every process, once, in its order (recover re-adds the rest)
        assert [text for text in contents if isinstance(text, str) and text[0] == tag] == [
            f"{tag}{index}" for index in range(count)
        ]
    assert stored.metadata.message_count == len(stored.messages) == 2 + len(tags) * count
    assert sum(len(report["conflicts"]) for report in reports) >= len(tags) - 1, (
        "all four saved first from the revision they loaded: all but one must have been refused"
    )
