"""Sessions to move and check: forks (attached, detached, a fork of a fork), labels, extra
metadata, checkpoint state, tool calls and text the original library writes; and what a
store holds of them, to compare two stores (the CLI's and transfer's tests)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulacra_session import SessionStore
from simulacra_session._backend import dumps
from simulacra_session.history import resolve_history
from simulacra_session.stores.file import journal
from simulacra_session.stores.file.records import checksum
from simulacra_session.timestamps import in_millis

__all__ = [
    "IDS",
    "Snapshot",
    "message",
    "populate",
    "server_url",
    "snapshot",
    "sql_table",
    "superseded_records",
]

IDS = ["root", "fork", "grandchild", "detached", "plain"]
#: One session as a store shows it: id, created_at, updated_at, metadata (no stamps), history.
Snapshot = tuple[str, str, str, dict[str, Any], list[Any]]


def message(role: str, text: str, message_id: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"role": role, "content": [{"type": "text", "text": text}]}
    if message_id is not None:
        found["id"] = message_id
    return found


def superseded_records(path: Path, count: int) -> None:
    """Append ``count`` commit records to the journal ``path`` that commit no message and
    repeat its metadata: records that verify (each chains on the one before), all but the
    last superseded, as a store that never compacts would leave them."""
    last = path.read_bytes().splitlines()[-1]
    metadata, seed = dumps(journal._commit_record(last, journal.FORMAT_VERSION)), checksum(last)
    with path.open("ab") as out:
        for _ in range(count):
            assert seed is not None
            record = journal._commit(metadata, b"", seed)
            out.write(record)
            seed = checksum(record[:-1])


async def _later() -> None:
    """Stamps a millisecond apart, so json documents (whole milliseconds) keep the order."""
    await asyncio.sleep(0.002)


async def populate(store: SessionStore) -> None:
    """Five sessions saved in the order of ``IDS``: ``root`` (three messages, a checkpoint, a
    provider, an extra key), ``fork`` (attached, at root's second message), ``grandchild``
    (attached to fork), ``detached`` (a detached fork of root) and ``plain`` (tool calls,
    thinking, non-ASCII text)."""
    root = [
        message("user", "hello", "r1"),
        message("assistant", "hi there", "r2"),
        message("user", "bye", "r3"),
    ]
    checkpoint = {"message_id": "r2", "summary": "greetings"}
    meta = {"label": "Root", "provider": "anthropic", "team": {"name": "a", "n": [1, 2]}}
    await store.save("root", root, {**meta, "checkpoint_state": checkpoint})
    await _later()
    fork = {"parent_id": "root", "fork_message_id": "r2", "fork_message_count": 2, "label": "Fork"}
    await store.save("fork", [message("user", "forked", "f1")], fork)
    await _later()
    grandchild = {"parent_id": "fork", "fork_message_id": "f1", "fork_message_count": 3}
    await store.save("grandchild", [message("assistant", "deeper", "g1")], grandchild)
    await _later()
    detached = {"parent_id": "root", "detached": True, "label": "Detached"}
    await store.save("detached", [*root[:1], message("user", "own copy", "d1")], detached)
    await _later()
    plain = [
        message("user", "naïve café ☕ — 日本語", "p1"),
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thought": "let me look"},
                {"type": "tool", "tool_request_id": "t1", "tool": "search", "params": {"q": "x"}},
            ],
            "id": "p2",
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool": "search", "tool_request_id": "t1", "result": [1]}],
            "id": "p3",
        },
    ]
    await store.save("plain", plain, {"label": "Plain", "is_checkpoint": False})


async def snapshot(store: SessionStore, *, millis: bool = False) -> list[Snapshot]:
    """Every session, most recent first, with its resolved history. ``millis``: stamps as a
    ``.json`` document keeps them (whole milliseconds, rounded up)."""
    found = []
    for meta in await store.list():
        resolved = await resolve_history(store, meta.id)
        assert resolved is not None, meta.id
        rest = meta.to_json_dict()
        created, updated = rest.pop("created_at"), rest.pop("updated_at")
        if millis:
            created, updated = in_millis(created), in_millis(updated)
        found.append((meta.id, created, updated, rest, resolved.messages))
    return found


def server_url(name: str) -> str:
    """The URL of the test server ``name`` (``postgres``, ``mysql``), password included; the
    test skips without one (fails under CI), as the SQL store's tests do."""
    from test_store_sql import server_url as found

    return found(name).render_as_string(hide_password=False)


@contextmanager
def sql_table(url: str) -> Iterator[str]:
    """``url`` with a table of this test's own (``?table=``), dropped afterwards."""
    import sqlalchemy as sa

    from simulacra_session.stores._sql_schema import Schema

    table = f"cli_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{url}{'&' if '?' in url else '?'}table={table}"
    finally:
        engine = sa.create_engine(url)
        try:
            Schema.named(table).meta.drop_all(engine, checkfirst=True)
        finally:
            engine.dispose()
