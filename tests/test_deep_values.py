"""A value nested 100,000 deep: every entry point raises ``SerializationError`` naming the path
at which it nests too deep, never ``RecursionError`` or a crash, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from simulacra_session import InMemorySessionStore, SerializationError, SimpleConversation
from simulacra_session.stores.file import FileSessionStore
from simulacra_session.stores.sql import SqlSessionStore

DEPTH = 100_000


def nested(depth: int, *, in_dicts: bool = False, leaf: Any = None) -> Any:
    """A value nested ``depth`` deep: lists, or dicts keyed ``"a"``, around ``leaf``."""
    value = leaf
    for _ in range(depth):
        value = {"a": value} if in_dicts else [value]
    return value


def deep_message(**kwargs: Any) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": "hi", "extended": nested(DEPTH, **kwargs)}]}


SHAPES = {
    "lists": ({}, "$.content[0].extended[0][0]"),
    "dicts": ({"in_dicts": True}, "$.content[0].extended.a.a"),
    "lists around a set": ({"leaf": {1}}, "$.content[0].extended[0][0]"),  # not JSON either
}


def check(raised: pytest.ExceptionInfo[SerializationError], prefix: str) -> None:
    assert "nesting deeper than 128" in str(raised.value)
    assert f" at {prefix}" in str(raised.value), str(raised.value)[:200]


@pytest.mark.parametrize("shape", SHAPES)
def test_hot_path(hotpath: ModuleType, shape: str) -> None:
    kwargs, path = SHAPES[shape]
    message = deep_message(**kwargs)
    for call in (hotpath.dumps, hotpath.copy_json):
        with pytest.raises(SerializationError) as raised:
            call(message)
        check(raised, path)


@pytest.mark.parametrize("shape", SHAPES)
def test_conversation(shape: str) -> None:
    """append, extend, the constructor and load copy each message: all raise, and the
    history is left as it was."""
    kwargs, path = SHAPES[shape]
    message = deep_message(**kwargs)
    conversation = SimpleConversation([{"role": "user", "content": []}])
    calls: list[Callable[[], object]] = [
        lambda: conversation.append(message),
        lambda: conversation.extend([{"role": "user", "content": []}, message]),
        lambda: conversation.load([message]),
        lambda: SimpleConversation([message]),
    ]
    for call in calls:
        with pytest.raises(SerializationError) as raised:
            call()
        check(raised, path)
    assert len(conversation.messages) == 1


def stores(tmp_path: Path) -> dict[str, Any]:
    return {
        "memory": InMemorySessionStore(),
        "file": FileSessionStore(tmp_path / "jsonl"),
        "file json": FileSessionStore(tmp_path / "json", format="json"),
        "sql": SqlSessionStore(f"sqlite:///{tmp_path / 'sessions.db'}"),
    }


@pytest.mark.parametrize("shape", SHAPES)
def test_stores(tmp_path: Path, shape: str) -> None:
    """save and append name the message's path (its place in the session); nothing is written."""
    kwargs, path = SHAPES[shape]
    message = deep_message(**kwargs)

    async def main() -> None:
        for name, store in stores(tmp_path).items():
            await store.save("s", [{"role": "user", "content": []}])
            for write, index in ((store.save, 1), (store.append, 2)):
                with pytest.raises(SerializationError) as raised:
                    await write("s", [{"role": "user", "content": []}, message])
                check(raised, f"$.messages[{index}]" + path[1:])
                stored = await store.load("s")
                assert stored is not None, name
                assert len(stored.messages) == 1, name
            if isinstance(store, SqlSessionStore):
                await store.close()

    asyncio.run(main())
