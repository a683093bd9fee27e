"""Messages that are read-only or other ``Mapping``s, as ``JsonObject = Mapping[str, Any]``
allows: every store saves them and loads them back as dicts, ``SimpleConversation`` copies
them as dicts, and a SessionManager saves a conversation whose engine freezes its messages.
The values in a message are JSON: a ``Mapping`` inside one is refused with
``SerializationError`` naming its path, never a bare ``TypeError``. Run on each backend."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from simulacra_session import (
    InMemorySessionStore,
    LifecycleErrorEvent,
    Message,
    SerializationError,
    SessionError,
    SessionManager,
    SimpleConversation,
)
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, texts
from test_deep_values import stores


class Frozen(Mapping[str, Any]):
    """A read-only message of an engine's own: a ``Mapping``, not a dict."""

    def __init__(self, items: Mapping[str, Any]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def frozen(*names: str) -> list[Mapping[str, Any]]:
    """Messages alternately in a ``MappingProxyType`` and a ``Frozen``."""
    return [
        MappingProxyType(msg(name)) if index % 2 else Frozen(msg(name)) for index, name in enumerate(names)
    ]


def test_every_store_saves_mappings_and_loads_dicts(tmp_path: Path) -> None:
    async def main() -> None:
        for name, store in stores(tmp_path).items():
            await store.save("s", frozen("a", "b"))
            await store.append("s", frozen("c", "d"))
            stored = await store.load("s")
            assert stored is not None, name
            assert stored.messages == [msg(text) for text in "abcd"], name
            assert {type(message) for message in stored.messages} == {dict}, name
            if isinstance(store, SqlSessionStore):
                await store.close()

    asyncio.run(main())


def test_simple_conversation_copies_a_mapping_as_a_dict() -> None:
    conversation = SimpleConversation(frozen("a"))
    stored = conversation.append(MappingProxyType(msg("b")))  # type: ignore[arg-type]
    conversation.extend(frozen("c"))  # type: ignore[arg-type]
    assert texts(conversation.messages) == ["a", "b", "c"]
    assert {type(message) for message in conversation.messages} == {dict}
    assert "id" in stored  # filled in, as in any message


def test_a_mapping_inside_a_message_is_refused_naming_its_path() -> None:
    """Not JSON, and not to be copied either (``deepcopy`` cannot): ``SerializationError``, as
    saving it would raise, never ``deepcopy``'s ``TypeError``."""
    conversation = SimpleConversation()
    inner = MappingProxyType({"type": "text", "text": "frozen"})
    with pytest.raises(
        SerializationError, match=r"cannot serialize mappingproxy at \$\.content\[0\]"
    ) as raised:
        conversation.append({"role": "user", "content": [inner]})  # type: ignore[list-item]
    assert isinstance(raised.value, SessionError)
    assert conversation.messages == ()


async def test_a_mapping_inside_a_message_fails_its_save_naming_its_path() -> None:
    """One ``deepcopy`` can copy is held, as any value that is not JSON, and its save fails."""
    store = InMemorySessionStore()
    conversation = SimpleConversation()
    manager = SessionManager(store, conversation)
    errors: list[LifecycleErrorEvent] = []
    manager.on("lifecycle_error", errors.append)
    manager.start_new("inner")
    conversation.append({"role": "user", "content": [Frozen({"type": "text"})]})  # type: ignore[list-item]
    await manager.flush()
    assert [type(event.error) for event in errors] == [SerializationError]
    assert "cannot serialize Frozen at $.messages[0].content[0]" in str(errors[0].error)


class FrozenConversation(SimpleConversation):
    """An engine that freezes each message it holds (a read-only ``MappingProxyType``)."""

    def append(self, message: Message) -> Message:
        held: Any = MappingProxyType(dict(message))
        self._messages.append(held)
        self.emit("message_complete", held)
        return held  # type: ignore[no-any-return]

    def load(self, messages: Sequence[Message]) -> None:
        self._messages = [MappingProxyType(dict(message)) for message in messages]  # type: ignore[misc]


async def test_a_manager_saves_a_conversation_of_frozen_messages(tmp_path: Path) -> None:
    store = InMemorySessionStore()
    conversation = FrozenConversation()
    manager = SessionManager(store, conversation)
    errors: list[LifecycleErrorEvent] = []
    manager.on("lifecycle_error", errors.append)
    session_id = manager.start_new("frozen")
    conversation.append(msg("a"))
    await manager.flush()
    conversation.append(msg("b"))
    await manager.save(full=True)
    assert errors == []
    resumed = FrozenConversation()
    await SessionManager(store, resumed).load(session_id)
    assert texts(resumed.messages) == ["a", "b"]
