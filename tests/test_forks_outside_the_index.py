"""A fork the file store's fork index lacks: one the original library wrote (it keeps no
index), or a session file copied without its index (``cp *.jsonl``). Deleting or truncating
its parent kept no history for it: the fork then loaded without what it inherited."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cli_runs import run_cli
from simulacra_session import FileSessionStore, SessionManager, SimpleConversation
from simulacra_session.history import resolve_history, truncate
from simulacra_session.testing import msg, texts


def _parent_and_unindexed_fork(root: Path) -> FileSessionStore:
    """``p`` (three messages) and ``f``, an attached fork of it at its second message, as the
    original library writes one: a ``.json`` document naming the parent and the message."""
    store = FileSessionStore(root)
    parent = [{**msg(f"p{index}"), "id": f"m{index}"} for index in range(3)]
    asyncio.run(store.save("p", parent))
    stamp = "2026-01-01T00:00:00.000Z"
    fork = {
        "metadata": {
            "id": "f",
            "created_at": stamp,
            "updated_at": stamp,
            "message_count": 1,
            "parent_id": "p",
            "fork_message_id": "m1",
        },
        "messages": [msg("f0")],
    }
    (root / "f.json").write_text(json.dumps(fork))
    assert asyncio.run(store.forks("p")) == []  # the index does not know it
    return store


def _history(store: FileSessionStore, session_id: str) -> list[str]:
    resolved = asyncio.run(resolve_history(store, session_id))
    assert resolved is not None
    return texts(resolved.messages)


@pytest.mark.parametrize("how", ["manager", "command"])
def test_deleting_the_parent_keeps_the_fork_s_history(tmp_path: Path, how: str) -> None:
    store = _parent_and_unindexed_fork(tmp_path)
    assert _history(store, "f") == ["p0", "p1", "f0"]
    if how == "manager":

        async def delete() -> None:
            with SimpleConversation() as conversation:
                async with SessionManager(store, conversation) as manager:
                    assert await manager.delete("p")

        asyncio.run(delete())
    else:
        assert run_cli("--store", str(tmp_path), "delete", "p", "--yes").status == 0
    assert asyncio.run(store.load("p")) is None
    assert _history(store, "f") == ["p0", "p1", "f0"]


def test_truncating_the_parent_keeps_the_fork_s_history(tmp_path: Path) -> None:
    store = _parent_and_unindexed_fork(tmp_path)
    asyncio.run(truncate(store, "p", 2))
    assert _history(store, "p") == ["p0"]
    assert _history(store, "f") == ["p0", "p1", "f0"]
