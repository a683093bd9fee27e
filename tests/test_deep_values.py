"""A value nested 100,000 deep: every entry point raises ``SerializationError`` naming the path
at which it nests too deep, never ``RecursionError`` or a crash, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import BaseModel

from simulacra_session import (
    CheckpointState,
    InMemorySessionStore,
    LifecycleErrorEvent,
    SerializationError,
    SessionManager,
    SimpleConversation,
)
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


# -- what a save accepts, a load reads back ------------------------------------------------

#: How deep a message, or a metadata value, may nest: the session document (``{"metadata": {..},
#: "messages": [..]}``) holds both at its third level, and a load reads no JSON nesting deeper
#: than 128 (a journal line, an SQL row or a memory entry is read as part of such a document).
LIMIT = 126


CHECKPOINT = {"message_id": "m1", "summary": "so far"}
CHECKPOINT_PATH = "$.checkpoint_state.v"


def values_nesting(levels: int) -> dict[str, tuple[list[Any], dict[str, Any], str]]:
    """What nests ``levels`` deep: the messages and metadata to write, and where the first
    level too deep is: in the session for a message, in the metadata for metadata."""
    return {
        "an object": ([{"role": "tool", "v": nested(levels - 1)}], {}, "$.messages[{index}].v"),
        "a list": ([nested(levels)], {}, "$.messages[{index}][0]"),  # a journal wraps it
        "metadata": ([], {"extra": nested(levels)}, "$.extra[0]"),
        "a checkpoint": ([], {"checkpoint_state": {**CHECKPOINT, "v": nested(levels - 1)}}, CHECKPOINT_PATH),
        "a checkpoint model": (
            [],
            {"checkpoint_state": CheckpointState(**CHECKPOINT, v=nested(levels - 1))},
            CHECKPOINT_PATH,
        ),
    }


def to_json(value: Any) -> Any:
    """A metadata value as stored: a model as its JSON dict."""
    return value.model_dump(mode="json", exclude_none=True) if isinstance(value, BaseModel) else value


@pytest.mark.parametrize("levels", [LIMIT - 1, LIMIT, LIMIT + 1, LIMIT + 2])
def test_a_store_saves_only_what_it_loads_back(tmp_path: Path, levels: int) -> None:
    """Every store saves and loads back what nests up to ``LIMIT`` deep, and refuses anything
    deeper with ``SerializationError`` naming its path: a session it saved always loads (never
    ``CorruptSessionError``)."""

    async def main() -> None:
        for name, store in stores(tmp_path).items():
            for what, (messages, metadata, path) in values_nesting(levels).items():
                for write, index in ((store.save, 0), (store.append, 1)):
                    session_id = f"{write.__name__}-{what.replace(' ', '-')}"
                    await store.save(session_id, [{"role": "user", "content": []}])
                    before = await store.load(session_id)
                    if levels > LIMIT:
                        with pytest.raises(SerializationError) as raised:
                            await write(session_id, messages, metadata)
                        check(raised, path.format(index=index))
                    else:
                        await write(session_id, messages, metadata)
                    stored = await store.load(session_id)
                    assert stored is not None, name
                    assert before is not None, name
                    if levels > LIMIT:
                        assert stored.messages == before.messages, (name, what)
                    else:
                        assert stored.messages == before.messages[:index] + messages, (name, what)
                        held = stored.metadata.to_json_dict()
                        given = {key: to_json(value) for key, value in metadata.items()}
                        assert {key: held.get(key) for key in metadata} == given, (name, what)
            if isinstance(store, SqlSessionStore):
                await store.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_a_message_too_deep_fails_its_auto_save_and_the_session_still_loads(
    tmp_path: Path, kind: str
) -> None:
    async def main() -> None:
        store = stores(tmp_path)[kind]
        conversation = SimpleConversation()
        manager = SessionManager(store, conversation)
        errors: list[LifecycleErrorEvent] = []
        manager.on("lifecycle_error", errors.append)
        session_id = manager.start_new("deep")
        for index in range(3):
            conversation.append({"role": "user", "content": [{"type": "text", "text": f"m{index}"}]})
        await manager.flush()
        conversation.append({"role": "tool", "v": nested(LIMIT)})  # the conversation holds it, ...
        await manager.flush()
        assert [type(event.error) for event in errors] == [SerializationError]  # ... no store does
        assert " at $.messages[3].v" in str(errors[0].error)
        resumed = SimpleConversation()
        await SessionManager(store, resumed).load(session_id)
        assert [message["content"][0]["text"] for message in resumed.messages] == ["m0", "m1", "m2"]

    asyncio.run(main())
