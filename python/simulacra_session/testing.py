"""A conformance suite that any ``SessionStore`` must pass, shipped for third-party stores.

Usage, in your own test module::

    import pytest
    from simulacra_session.testing import SessionStoreConformance

    class TestMyStore(SessionStoreConformance):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(tmp_path)  # a fresh, empty store for each test

Every test of the class then runs against your store: the merge rules of ``save``, strictly
later ``updated_at``, ordering, isolation from callers' objects, unknown keys kept, invalid ids
rejected before any I/O, ``SerializationError`` leaving the old state intact, ``forks``,
``delete`` and, when the store implements it, ``append``. The tests drive the store with
``asyncio.run``, so they need no plugin. Requires pytest.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from .errors import InvalidSessionIdError, SerializationError
from .messages import Message
from .models import CheckpointState
from .protocols import AppendableSessionStore, ForkIndexedStore, SessionStore
from .timestamps import parse_timestamp

__all__ = ["BAD_IDS", "SessionStoreConformance", "msg", "run", "texts"]

T = TypeVar("T")

BAD_IDS: list[object] = [
    *["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "x" * 129, "a\n", "a b", "\u00e9"],
    *[7, None, b"a"],
]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def msg(text: str, role: str = "user", **extra: Any) -> Message:
    return {"role": role, "content": [{"type": "text", "text": text}], **extra}  # type: ignore[return-value]


def texts(messages: list[Message]) -> list[str]:
    return [m["content"][0]["text"] for m in messages]  # type: ignore[typeddict-item]


class SessionStoreConformance:
    """The contract of a ``SessionStore`` (with ``forks``), as pytest tests.

    Subclass it in a test module and override the ``store`` fixture to return a fresh,
    empty store; every test then runs against it. Stores that implement ``append``
    (``AppendableSessionStore``) are checked for it too.
    """

    @pytest.fixture
    def store(self) -> ForkIndexedStore:
        """Override: a fresh, empty store for each test."""
        raise NotImplementedError("override the store fixture in your subclass")

    def test_implements_the_protocols(self, store: ForkIndexedStore) -> None:
        assert isinstance(store, SessionStore)
        assert isinstance(store, ForkIndexedStore)

    def test_empty_store(self, store: ForkIndexedStore) -> None:
        assert run(store.list()) == []
        assert run(store.load("a")) is None
        assert run(store.forks("a")) == []
        assert run(store.delete("a")) is False

    def test_round_trip(self, store: ForkIndexedStore) -> None:
        messages = [msg("hi"), msg("hello", "assistant")]
        run(store.save("a", messages, {"label": "greeting"}))
        stored = run(store.load("a"))
        assert stored is not None
        assert stored.messages == messages
        meta = stored.metadata
        assert (meta.id, meta.label, meta.message_count) == ("a", "greeting", 2)
        assert meta.created_at == meta.updated_at
        assert meta.created_at.endswith("Z")
        assert [m.id for m in run(store.list())] == ["a"]

    def test_empty_messages(self, store: ForkIndexedStore) -> None:
        run(store.save("a", []))
        stored = run(store.load("a"))
        assert stored is not None
        assert (stored.messages, stored.metadata.message_count) == ([], 0)

    def test_merge_rules(self, store: ForkIndexedStore) -> None:
        run(store.save("a", [msg("1")], {"label": "first", "provider": "p", "custom": {"x": [1]}}))
        first = run(store.load("a"))
        assert first is not None
        run(store.save("a", [msg("1"), msg("2"), msg("3")], {"model": "m", "label": None, "other": 2}))
        second = run(store.load("a"))
        assert second is not None
        meta = second.metadata
        assert meta.created_at == first.metadata.created_at
        assert meta.updated > first.metadata.updated
        assert meta.message_count == 3
        assert (meta.provider, meta.model, meta.label) == ("p", "m", None)
        assert meta.model_extra == {"custom": {"x": [1]}, "other": 2}
        assert "label" not in meta.to_json_dict()

    def test_updated_at_strictly_increases(self, store: ForkIndexedStore) -> None:
        stamps = []
        for n in range(30):
            run(store.save("a", [msg(str(n))]))
            stored = run(store.load("a"))
            assert stored is not None
            stamps.append(parse_timestamp(stored.metadata.updated_at))
        assert all(a < b for a, b in itertools.pairwise(stamps))

    @pytest.mark.parametrize("key", ["id", "created_at", "updated_at", "message_count"])
    def test_reserved_keys_raise_and_write_nothing(self, store: ForkIndexedStore, key: str) -> None:
        with pytest.raises(ValueError, match=key):
            run(store.save("a", [msg("x")], {key: "2026-01-01T00:00:00Z"}))
        assert run(store.load("a")) is None
        run(store.save("a", [msg("x")]))
        before = run(store.load("a"))
        with pytest.raises(ValueError, match=key):
            run(store.save("a", [], {key: 1}))
        assert run(store.load("a")) == before

    def test_checkpoint_state_model(self, store: ForkIndexedStore) -> None:
        state = CheckpointState(message_id="m1", summary="so far")
        run(store.save("a", [], {"checkpoint_state": state, "is_checkpoint": True}))
        stored = run(store.load("a"))
        assert stored is not None
        assert stored.metadata.checkpoint_state == state
        assert stored.metadata.is_checkpoint is True

    def test_list_most_recent_first(self, store: ForkIndexedStore) -> None:
        for session_id in ["b", "a", "c"]:
            run(store.save(session_id, []))
        assert [m.id for m in run(store.list())] == ["c", "a", "b"]
        run(store.save("b", [msg("again")]))
        assert [m.id for m in run(store.list())] == ["b", "c", "a"]

    def test_unknown_keys_kept(self, store: ForkIndexedStore) -> None:
        odd = {
            "role": "assistant",
            "id": "m1",
            "timestamp": 1735787045678,
            "future_key": {"nested": [1, 2.5, None, True]},
            "content": [
                {"type": "text", "text": "x", "extended": {"k": "v"}},
                {"type": "hologram", "payload": {"\u00e9": "\u2028"}},
            ],
        }
        run(store.save("a", [odd], {"team": {"name": "t"}, "tags": ["a", "b"]}))  # type: ignore[list-item]
        stored = run(store.load("a"))
        assert stored is not None
        assert stored.messages == [odd]
        assert stored.metadata.model_extra == {"team": {"name": "t"}, "tags": ["a", "b"]}

    @pytest.mark.parametrize(
        ("metadata", "path"),
        [
            ({"x": float("nan")}, r"\$\.x"),
            ({"tags": {"a"}}, r"\$\.tags"),
            ({"n": [1, float("inf")]}, r"\$\.n\[1\]"),
        ],
    )
    def test_metadata_must_be_strict_json(
        self, store: ForkIndexedStore, metadata: dict[str, Any], path: str
    ) -> None:
        run(store.save("a", [msg("x")], {"label": "kept"}))
        with pytest.raises(SerializationError, match=path):
            run(store.save("a", [msg("y")], metadata))
        stored = run(store.load("a"))
        assert stored is not None
        assert stored.metadata.label == "kept"
        assert texts(stored.messages) == ["x"]

    def test_isolation(self, store: ForkIndexedStore) -> None:
        messages = [msg("one")]
        metadata: dict[str, Any] = {"label": "l", "extra": {"list": [1]}}
        run(store.save("a", messages, metadata))
        pristine = run(store.load("a"))
        assert pristine is not None
        messages.append(msg("two"))
        messages[0]["content"][0]["text"] = "changed"  # type: ignore[typeddict-unknown-key]
        metadata["extra"]["list"].append(2)
        metadata["label"] = "other"
        loaded = run(store.load("a"))
        assert loaded == pristine
        assert loaded is not None
        loaded.messages.append(msg("three"))
        loaded.messages[0]["content"].clear()
        assert loaded.metadata.model_extra is not None
        loaded.metadata.model_extra["extra"]["list"].append(3)
        listed = run(store.list())
        listed[0].model_extra["extra"]["list"].append(4)  # type: ignore[index]
        assert run(store.load("a")) == pristine
        assert run(store.list())[0] == pristine.metadata

    @pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
    def test_invalid_ids_rejected(self, store: ForkIndexedStore, bad: Any) -> None:
        with pytest.raises(InvalidSessionIdError):
            run(store.save(bad, [msg("x")]))
        if bad is not None:  # a None parent_id removes the key
            with pytest.raises(InvalidSessionIdError):
                run(store.save("a", [msg("x")], {"parent_id": bad}))
        for call in (store.load, store.delete, store.forks):
            with pytest.raises(InvalidSessionIdError):
                run(call(bad))
        assert run(store.list()) == []

    def test_serialization_error_keeps_previous_state(self, store: ForkIndexedStore) -> None:
        run(store.save("a", [msg("kept")], {"label": "kept"}))
        before = run(store.load("a"))
        bad = msg("bad")
        bad["content"][0]["extended"] = {"deep": [1, {1, 2}]}
        with pytest.raises(SerializationError, match=r"set at \$\.messages\[1\]\.content\[0\]"):
            run(store.save("a", [msg("kept"), bad], {"label": "new"}))
        with pytest.raises(SerializationError):
            run(store.save("fresh", [bad]))
        assert run(store.load("a")) == before
        assert run(store.load("fresh")) is None
        assert [m.id for m in run(store.list())] == ["a"]

    def test_unserializable_metadata_keeps_previous_state(self, store: ForkIndexedStore) -> None:
        run(store.save("a", [msg("kept")]))
        before = run(store.load("a"))
        with pytest.raises(SerializationError, match=r"cannot serialize object at \$\.handle"):
            run(store.save("a", [], {"handle": object()}))
        assert run(store.load("a")) == before

    def test_forks(self, store: ForkIndexedStore) -> None:
        run(store.save("p", [msg("root")]))
        run(store.save("c1", [msg("x")], {"parent_id": "p", "fork_message_count": 1}))
        run(store.save("c2", [], {"parent_id": "p", "detached": True}))
        run(store.save("d", [], {"parent_id": "other"}))
        assert [m.id for m in run(store.forks("p"))] == ["c2", "c1"]
        run(store.save("c1", [msg("x"), msg("y")]))
        forks = run(store.forks("p"))
        assert [(m.id, m.message_count) for m in forks] == [("c1", 2), ("c2", 0)]
        assert [m.id for m in run(store.forks("other"))] == ["d"]
        assert run(store.forks("c1")) == []
        run(store.save("c1", [], {"parent_id": None}))
        assert [m.id for m in run(store.forks("p"))] == ["c2"]
        run(store.save("c2", [], {"parent_id": "other"}))
        assert run(store.forks("p")) == []
        assert [m.id for m in run(store.forks("other"))] == ["c2", "d"]

    def test_delete(self, store: ForkIndexedStore) -> None:
        run(store.save("a", [msg("x")]))
        run(store.save("b", []))
        assert run(store.delete("a")) is True
        assert run(store.delete("a")) is False
        assert run(store.load("a")) is None
        assert [m.id for m in run(store.list())] == ["b"]
        run(store.save("a", []))
        stored = run(store.load("a"))
        assert stored is not None
        assert stored.metadata.message_count == 0

    def test_delete_fork_and_parent(self, store: ForkIndexedStore) -> None:
        run(store.save("p", []))
        run(store.save("c", [], {"parent_id": "p"}))
        run(store.save("g", [], {"parent_id": "c"}))
        assert run(store.delete("c")) is True
        assert run(store.forks("p")) == []
        assert run(store.delete("p")) is True
        assert [m.id for m in run(store.list())] == ["g"]
        stored = run(store.load("g"))
        assert stored is not None
        assert stored.metadata.parent_id == "c"

    def test_concurrent_saves_of_one_id_keep_every_merge(self, store: ForkIndexedStore) -> None:
        async def burst() -> None:
            await asyncio.gather(*(store.save("a", [msg(str(i))] * (i + 1), {f"k{i}": i}) for i in range(24)))

        run(burst())
        stored = run(store.load("a"))
        assert stored is not None
        meta = stored.metadata
        assert meta.message_count == len(stored.messages)
        assert stored.messages == [msg(str(meta.message_count - 1))] * meta.message_count
        assert meta.model_extra == {f"k{i}": i for i in range(24)}

    def test_append_adds_after_the_stored_messages(self, store: ForkIndexedStore) -> None:
        if not isinstance(store, AppendableSessionStore):
            pytest.skip("the store does not implement append")
        run(store.append("new", [msg("a")], {"label": "first"}))  # creates the session
        run(store.append("new", [msg("b"), msg("c")]))
        run(store.append("new", [], {"label": "second"}))
        stored = run(store.load("new"))
        assert stored is not None
        assert texts(stored.messages) == ["a", "b", "c"]
        assert stored.metadata.message_count == 3
        assert stored.metadata.label == "second"
        unserializable: Any = {"role": "user", "content": {1}}
        with pytest.raises(SerializationError, match=r"\$\.messages\[4\]"):
            run(store.append("new", [msg("d"), unserializable]))
        assert texts(run(store.load("new")).messages) == ["a", "b", "c"]  # type: ignore[union-attr]
        with pytest.raises(InvalidSessionIdError):
            run(store.append("../x", [msg("x")]))

    def test_list_pages(self, store: ForkIndexedStore) -> None:
        for index in range(4):
            run(store.save(f"s{index}", []))
        listing: Any = store.list
        assert [m.id for m in run(listing(limit=2))] == ["s3", "s2"]
        assert [m.id for m in run(listing(limit=2, offset=3))] == ["s0"]
