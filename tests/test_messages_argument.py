"""``messages`` given to ``save``, ``append`` or ``restore`` as one value where a sequence of
messages belongs (a ``str``, bytes, a ``Mapping`` such as a single message dict) is a
``TypeError`` naming the session and the type, on every bundled store, before anything is
written. Before, ``save(id, "hello")`` stored five one-character messages and
``save(id, {"a": 1})`` the single message ``"a"`` (the dict's key). The check is of the type
alone: a list of any length costs it the same. ``SimpleConversation`` refuses them too."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from integration_stores import KINDS, reopener
from simulacra_session import SessionStore, SimpleConversation
from simulacra_session.testing import msg, texts

NOT_MESSAGES: dict[str, Any] = {
    "str": "hello",
    "bytes": b"hi",
    "bytearray": bytearray(b"hi"),
    "memoryview": memoryview(b"hi"),
    "dict": msg("one message, not in a list"),
    "mappingproxy": MappingProxyType({"a": 1}),
}


def _refused(session_id: str, value: object) -> str:
    return (
        rf"^session {session_id}: messages must be a sequence of messages \(a list of dicts\),"
        rf" not a {type(value).__name__}$"
    )


async def _writes_nothing(store: SessionStore, value: object) -> None:
    """Each write of ``value`` as messages refused, naming the session and the type."""
    with pytest.raises(TypeError, match=_refused("new", value)):
        await store.save("new", value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=_refused("kept", value)):
        await store.save("kept", value)  # type: ignore[arg-type]
    append = getattr(store, "append", None)
    if append is not None:
        for session_id in ("kept", "new"):
            with pytest.raises(TypeError, match=_refused(session_id, value)):
                await append(session_id, value)
            with pytest.raises(TypeError, match=_refused(session_id, value)):
                await append(session_id, value, {"label": "given"})
    restore = getattr(store, "restore", None)
    if restore is not None:
        stored = await store.load("kept")
        assert stored is not None
        counted = stored.metadata.model_copy(update={"message_count": len(value)})  # what a list would be
        with pytest.raises(TypeError, match=_refused("kept", value)):
            await restore("kept", value, counted)


@pytest.mark.parametrize("kind", KINDS)
async def test_one_value_as_messages_is_refused_by_every_store(kind: str, tmp_path: Path) -> None:
    with reopener(kind, tmp_path) as reopen:
        async with reopen() as store:
            await store.save("kept", [msg("a")], {"label": "kept"})
            for value in NOT_MESSAGES.values():
                await _writes_nothing(store, value)
        async with reopen() as store:
            assert [meta.id for meta in await store.list()] == ["kept"]
            stored = await store.load("kept")
            assert stored is not None
            assert texts(stored.messages) == ["a"]
            assert stored.metadata.label == "kept"
            assert stored.metadata.message_count == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_sequences_of_messages_are_written_as_before(kind: str, tmp_path: Path) -> None:
    with reopener(kind, tmp_path) as reopen:
        async with reopen() as store:
            await store.save("s", (msg("a"), msg("b")))  # a tuple is a sequence too
            if hasattr(store, "append"):
                await store.append("s", [msg("c")])
                await store.append("s", ())
            stored = await store.load("s")
            assert stored is not None
            assert texts(stored.messages) == (["a", "b", "c"] if hasattr(store, "append") else ["a", "b"])


@pytest.mark.parametrize("value", NOT_MESSAGES.values(), ids=NOT_MESSAGES.keys())
def test_one_value_as_messages_is_refused_by_the_conversation(value: Any) -> None:
    """``SimpleConversation("hello")`` held five one-character messages, which its manager then
    saved; made, loaded or extended with one value it raises, the history as it was."""
    refused = r" messages must be a sequence of messages \(a list of dicts\), not a "
    with pytest.raises(TypeError, match=rf"^SimpleConversation\(\):{refused}{type(value).__name__}$"):
        SimpleConversation(value)
    conversation = SimpleConversation([msg("a")])
    heard: list[object] = []
    conversation.on("message_complete", heard.append)
    with pytest.raises(TypeError, match=rf"^SimpleConversation\.load:{refused}{type(value).__name__}$"):
        conversation.load(value)
    with pytest.raises(TypeError, match=rf"^SimpleConversation\.extend:{refused}{type(value).__name__}$"):
        conversation.extend(value)
    assert texts(conversation.messages) == ["a"]
    assert heard == []
    conversation.extend(message for message in [msg("b")])  # any other iterable, as before
    conversation.load((msg("c"),))
    assert texts(conversation.messages) == ["c"]
