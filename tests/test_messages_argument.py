"""``messages`` or metadata of the wrong type given to ``save``, ``append`` or ``restore`` is a
``TypeError`` naming the method, the session and the type, on every bundled store, before
anything is written:

- ``messages`` as one value where a sequence of messages belongs (a ``str``, bytes, a
  ``Mapping`` such as a single message dict), or a value that is no sequence at all
  (``None``, an int). Before, ``save(id, "hello")`` stored five one-character messages,
  ``save(id, {"a": 1})`` the single message ``"a"`` (the dict's key), and ``save(id, None)``
  raised Python's bare "'NoneType' object is not iterable". The check is of the type alone:
  a list of any length costs it the same.
- metadata that is neither ``None`` nor a ``Mapping`` (a list, a str, an int): before, an
  ``AttributeError`` ("'int' object has no attribute 'get'"), or, appended to a journal this
  process knows, nothing said at all for an empty one.

Any other iterable of messages (a tuple, a generator, read once) is written as its list by every
method of every store: ``restore`` too, and a value that is not JSON is named at its path in
the session as in a list.

A message that is not a ``Mapping`` (``[1, 2]``, ``[None]``, a framework's item that is a list)
is no wrong type: every store writes it as the JSON value it is, and loads it back.

``SimpleConversation`` refuses one value, or no iterable, as messages too."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from integration_stores import KINDS, reopener
from simulacra_session import SerializationError, SessionStore, SimpleConversation
from simulacra_session.models import SessionMetadata
from simulacra_session.protocols import RestorableSessionStore
from simulacra_session.testing import msg, texts

#: One value where a sequence of messages belongs.
SINGLE_VALUES: dict[str, Any] = {
    "str": "hello",
    "bytes": b"hi",
    "bytearray": bytearray(b"hi"),
    "memoryview": memoryview(b"hi"),
    "dict": msg("one message, not in a list"),
    "mappingproxy": MappingProxyType({"a": 1}),
}

NOT_MESSAGES: dict[str, Any] = {**SINGLE_VALUES, "None": None, "int": 5}

#: Messages with some that are not a ``Mapping``, and what loads back.
NOT_OBJECTS: dict[str, tuple[list[Any], list[Any]]] = {
    "ints": ([1, 2], [1, 2]),
    "None": ([None], [None]),
    "str": (["text"], ["text"]),
    "list": ([msg("a"), ["role", "user"]], [msg("a"), ["role", "user"]]),
    "tuple after a mappingproxy": (
        [MappingProxyType(msg("a")), msg("b"), ("a", 1)],
        [msg("a"), msg("b"), ["a", 1]],
    ),
}

NOT_METADATA: dict[str, Any] = {
    "list": [("label", "x")],
    "str": "label",
    "empty str": "",
    "int": 5,
    "zero": 0,
    "empty list": [],
}

STAMP = "2025-01-02T03:04:05.678Z"


def _refused(method: str, session_id: str, value: object) -> str:
    return (
        rf"^{method} of session {session_id}: messages must be a sequence of messages"
        rf" \(a list of dicts\), not a {type(value).__name__}$"
    )


def _refused_metadata(method: str, session_id: str, value: object) -> str:
    kind = type(value).__name__
    return rf"^{method} of session {session_id}: metadata must be a dict \(a Mapping\) or None, not a {kind}$"


def _restored(session_id: str, count: int) -> SessionMetadata:
    return SessionMetadata(id=session_id, created_at=STAMP, updated_at=STAMP, message_count=count)


async def _writes_nothing(store: SessionStore, value: object) -> None:
    """Each write of ``value`` as messages refused, naming the method, the session and the type."""
    with pytest.raises(TypeError, match=_refused("save", "new", value)):
        await store.save("new", value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=_refused("save", "kept", value)):
        await store.save("kept", value)  # type: ignore[arg-type]
    append = getattr(store, "append", None)
    if append is not None:
        for session_id in ("kept", "new"):
            with pytest.raises(TypeError, match=_refused("append", session_id, value)):
                await append(session_id, value)
            with pytest.raises(TypeError, match=_refused("append", session_id, value)):
                await append(session_id, value, {"label": "given"})
    if isinstance(store, RestorableSessionStore):
        counted = _restored("kept", len(value) if hasattr(value, "__len__") else 0)  # what a list would be
        with pytest.raises(TypeError, match=_refused("restore", "kept", value)):
            await store.restore("kept", value, counted)  # type: ignore[arg-type]


async def _kept_as_it_was(store: SessionStore) -> None:
    """Only ``kept`` is stored, as ``_each_store`` saved it."""
    assert [meta.id for meta in await store.list()] == ["kept"]
    stored = await store.load("kept")
    assert stored is not None
    assert texts(stored.messages) == ["a"]
    assert stored.metadata.label == "kept"
    assert stored.metadata.message_count == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_one_value_as_messages_is_refused_by_every_store(kind: str, tmp_path: Path) -> None:
    with reopener(kind, tmp_path) as reopen:
        async with reopen() as store:
            await store.save("kept", [msg("a")], {"label": "kept"})
            for value in NOT_MESSAGES.values():
                await _writes_nothing(store, value)
        async with reopen() as store:
            await _kept_as_it_was(store)


@pytest.mark.parametrize("kind", KINDS)
async def test_messages_that_are_no_mapping_are_written_as_the_json_values_they_are(
    kind: str, tmp_path: Path
) -> None:
    """A framework's item may be a list: saved, appended (a generator or a tuple too) and
    loaded back as JSON, on every store."""
    with reopener(kind, tmp_path) as reopen:
        async with reopen() as store:
            append = getattr(store, "append", None)
            for number, (messages, _) in enumerate(NOT_OBJECTS.values()):
                await store.save(f"saved-{number}", (message for message in messages))
                if append is not None:
                    await store.save(f"appended-{number}", [msg("first")])
                    await append(f"appended-{number}", tuple(messages))
        async with reopen() as store:
            for number, (_, loaded) in enumerate(NOT_OBJECTS.values()):
                saved = await store.load(f"saved-{number}")
                assert saved is not None, number
                assert saved.messages == loaded, number
                if hasattr(store, "append"):
                    appended = await store.load(f"appended-{number}")
                    assert appended is not None, number
                    assert appended.messages == [msg("first"), *loaded], number


@pytest.mark.parametrize("kind", KINDS)
async def test_metadata_that_is_no_mapping_is_refused_by_every_store(kind: str, tmp_path: Path) -> None:
    with reopener(kind, tmp_path) as reopen:
        async with reopen() as store:
            await store.save("kept", [msg("a")], {"label": "kept"})
            append = getattr(store, "append", None)
            for value in NOT_METADATA.values():
                for session_id in ("new", "kept"):
                    with pytest.raises(TypeError, match=_refused_metadata("save", session_id, value)):
                        await store.save(session_id, [msg("b")], value)
                    if append is not None:
                        with pytest.raises(TypeError, match=_refused_metadata("append", session_id, value)):
                            await append(session_id, [msg("b")], value)
                        with pytest.raises(TypeError, match=_refused_metadata("append", session_id, value)):
                            await append(session_id, [], value)
        async with reopen() as store:
            await _kept_as_it_was(store)
            await store.save("kept", [msg("a")], MappingProxyType({"label": "a Mapping"}))
            stored = await store.load("kept")
            assert stored is not None
            assert stored.metadata.label == "a Mapping"


@pytest.mark.parametrize("kind", KINDS)
async def test_restore_writes_values_that_are_no_mapping_as_loaded(kind: str, tmp_path: Path) -> None:
    """A session older writes left with messages that are JSON values but no objects is copied
    as it is (``restore``: what ``import_sessions`` and ``copy_sessions`` write)."""
    odd: list[Any] = [1, "text", None, ["message", 1], msg("a")]
    with reopener(kind, tmp_path) as reopen:
        async with reopen() as store:
            if not isinstance(store, RestorableSessionStore):
                pytest.skip(f"{kind} has no restore")
            await store.restore("odd", odd, _restored("odd", len(odd)))
        async with reopen() as store:
            stored = await store.load("odd")
            assert stored is not None
            assert stored.messages == odd


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


@pytest.mark.parametrize("kind", KINDS)
async def test_any_iterable_of_messages_is_written_by_every_method_of_every_store(
    kind: str, tmp_path: Path
) -> None:
    """A generator (read once) or another iterable that is no list is written as its list:
    ``restore`` too (before, ``object of type 'generator' has no len()`` on every store but the
    file store)."""
    with reopener(kind, tmp_path) as reopen:
        async with reopen() as store:
            await store.save("saved", (message for message in [msg("a"), msg("b")]))
            if hasattr(store, "append"):
                await store.append("saved", iter([msg("c")]))
                await store.append("new", (message for message in [msg("n")]))
            if isinstance(store, RestorableSessionStore):
                read_once = (message for message in [msg("r"), 1])
                await store.restore("restored", read_once, _restored("restored", 2))
                await store.restore("ranged", map(msg, ["x", "y"]), _restored("ranged", 2))
                with pytest.raises(ValueError, match="message_count 3, restoring 2 messages"):
                    await store.restore("wrong", iter([msg("a"), msg("b")]), _restored("wrong", 3))
                for metadata in (None, {"message_count": 1}, 5):
                    refused = (
                        rf"^restore of session wrong needs SessionMetadata, got {type(metadata).__name__}$"
                    )
                    with pytest.raises(TypeError, match=refused):
                        await store.restore("wrong", iter([msg("a")]), metadata)  # type: ignore[arg-type]
        async with reopen() as store:
            expected = {"saved": [msg("a"), msg("b")]}
            if hasattr(store, "append"):
                expected = {"saved": [msg("a"), msg("b"), msg("c")], "new": [msg("n")]}
            if isinstance(store, RestorableSessionStore):
                expected |= {"restored": [msg("r"), 1], "ranged": [msg("x"), msg("y")]}
            assert sorted(meta.id for meta in await store.list()) == sorted(expected)
            for session_id, messages in expected.items():
                stored = await store.load(session_id)
                assert stored is not None, session_id
                assert stored.messages == messages, session_id
                assert stored.metadata.message_count == len(messages), session_id


@pytest.mark.parametrize("kind", KINDS)
async def test_a_value_no_json_in_a_generator_is_named_at_its_path(kind: str, tmp_path: Path) -> None:
    """The error names the message's path in the session as for a list (before, a generator
    read twice named ``$[0][0]`` on every store but the file store), and nothing is written."""
    bad = [msg("a"), msg("b"), {"x": {1, 2}}]
    with reopener(kind, tmp_path) as reopen:
        async with reopen() as store:
            await store.save("kept", [msg("a")], {"label": "kept"})
            writes = [(store.save, "new", 2), (store.save, "kept", 2)]
            if hasattr(store, "append"):  # after the one message ``kept`` holds
                writes += [(store.append, "new", 2), (store.append, "kept", 3)]
            for write, session_id, index in writes:
                for given in (list(bad), iter(bad), (message for message in bad), tuple(bad)):
                    at = rf"^session {session_id}: .* at \$\.messages\[{index}\]\.x$"
                    with pytest.raises(SerializationError, match=at):
                        await write(session_id, given)
            if isinstance(store, RestorableSessionStore):
                at = r"^session new: .* at \$\.messages\[2\]\.x$"
                for given in (list(bad), (message for message in bad)):
                    with pytest.raises(SerializationError, match=at):
                        await store.restore("new", given, _restored("new", 3))
        async with reopen() as store:
            await _kept_as_it_was(store)


@pytest.mark.parametrize("value", NOT_MESSAGES.values(), ids=NOT_MESSAGES.keys())
def test_one_value_as_messages_is_refused_by_the_conversation(value: Any) -> None:
    """``SimpleConversation("hello")`` held five one-character messages, which its manager then
    saved; made, loaded or extended with one value, or with no iterable (``None``, an int:
    before, Python's bare "'NoneType' object is not iterable"), it raises, the history as it
    was."""
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
