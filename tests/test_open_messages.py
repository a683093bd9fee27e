"""The open message type: a framework's own items (``TypedDict``s of its own, plain dicts) go
into every store and the history functions as they are, with no cast (``mypy --strict``
checks this file), and come back equal, as plain dicts read without casts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypedDict

import pytest

from simulacra_session import (
    FileSessionStore,
    InMemorySessionStore,
    JsonObject,
    read_tail,
    resolve_history,
    truncate,
)
from simulacra_session.protocols import RestorableSessionStore
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import run


class InputItem(TypedDict):
    """An item shaped as a framework types it (openai-agents' ``TResponseInputItem`` is such
    a union of ``TypedDict``s), none of our ``Message``'s keys required."""

    type: Literal["message"]
    role: str
    content: str


class ToolCall(TypedDict, total=False):
    type: Literal["function_call"]
    call_id: str
    arguments: str


ITEMS: list[InputItem] = [
    {"type": "message", "role": "user", "content": f"item {index}"} for index in range(4)
]
CALLS: list[ToolCall] = [{"type": "function_call", "call_id": "c1", "arguments": '{"x": 1}'}]
PLAIN: list[dict[str, Any]] = [{"uuid": "u1", "nested": {"deep": [1, 2.5, None]}}]


def _ids(stored: list[dict[str, Any]]) -> list[str]:
    """Read stored items back without a cast: they are plain dicts."""
    return [str(item.get("content", item.get("call_id", item.get("uuid")))) for item in stored]


@pytest.mark.parametrize("kind", ["memory", "file", "sqlite"])
def test_framework_items_round_trip_without_casts(kind: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        if kind == "memory":
            store: InMemorySessionStore | FileSessionStore | SqlSessionStore = InMemorySessionStore()
        elif kind == "file":
            store = FileSessionStore(tmp_path / "sessions")
        else:
            store = SqlSessionStore(f"sqlite:///{tmp_path / 'sessions.db'}")
        try:
            await store.save("s", ITEMS)
            await store.append("s", CALLS)
            await store.append("s", PLAIN)
            stored = await store.load("s")
            assert stored is not None
            everything: list[JsonObject] = [*ITEMS, *CALLS, *PLAIN]
            assert stored.messages == everything
            assert _ids(stored.messages) == ["item 0", "item 1", "item 2", "item 3", "c1", "u1"]
            tail = await read_tail(store, "s", 2)
            assert tail is not None
            assert tail.messages == [*CALLS, *PLAIN]
            await truncate(store, "s", 2, expected=tail.revision)
            resolved = await resolve_history(store, "s")
            assert resolved is not None
            assert resolved.messages == ITEMS
            if isinstance(store, RestorableSessionStore):
                copied = resolved.stored.metadata.model_copy(update={"id": "r", "message_count": 1})
                await store.restore("r", CALLS, copied)
                restored = await store.load("r")
                assert restored is not None
                assert restored.messages == CALLS
        finally:
            if isinstance(store, SqlSessionStore):
                await store.close()

    run(scenario())
