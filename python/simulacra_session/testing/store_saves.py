"""The documented ``SessionStore`` protocol, part one: what ``save`` stores and refuses.

Each failure names the contract it checks: the method, then the rule of its docstring (or
of ``merge_metadata``, which ``save`` documents as its merge) that the store broke.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from typing import Any

import pytest

from ..errors import InvalidMetadataError, SerializationError
from ..models import CheckpointState
from ..protocols import SessionStore
from ..timestamps import parse_timestamp
from .helpers import StoreFixture, msg, raises, run, texts

__all__ = ["StoreSaveContract"]

ROUND_TRIP = "SessionStore.load returns the messages and metadata save stored"
MERGE = "SessionStore.save merges metadata as merge_metadata does"
LATER = "SessionStore.save gives the session an updated_at strictly later than its previous save"
RESERVED = "SessionStore.save rejects reserved metadata keys with InvalidMetadataError, writing nothing"
TYPED = "SessionStore.save rejects metadata of the wrong type with InvalidMetadataError, writing nothing"
UNKNOWN = "SessionStore.save keeps unknown message and metadata keys as they were"
VERBATIM = "SessionStore stores a message verbatim: the same JSON, keys in order, numbers and strings exact"
SERIALIZE = "SessionStore.save raises SerializationError naming the path and leaves the old state intact"


class StoreSaveContract(StoreFixture):
    """``save``: round trip, merge rules, ``updated_at``, invalid metadata, serialization."""

    def test_implements_the_protocol(self, store: SessionStore) -> None:
        assert isinstance(store, SessionStore), "SessionStore: the store has list, load, save and delete"

    def test_round_trip(self, store: SessionStore) -> None:
        messages = [msg("hi"), msg("hello", "assistant")]
        run(store.save("a", messages, {"label": "greeting"}))
        stored = run(store.load("a"))
        assert stored is not None, f"{ROUND_TRIP}: load('a') returned None after save('a')"
        assert stored.messages == messages, f"{ROUND_TRIP}: the messages differ"
        meta = stored.metadata
        assert (meta.id, meta.label, meta.message_count) == ("a", "greeting", 2), (
            f"{ROUND_TRIP}: id, label and message_count"
        )
        assert meta.created_at == meta.updated_at, f"{MERGE}: a first save's created_at is its updated_at"
        assert meta.created_at.endswith("Z"), f"{MERGE}: timestamps are UTC ISO 8601 ending in Z"
        assert [m.id for m in run(store.list())] == ["a"], "SessionStore.list lists the saved session"

    def test_empty_messages(self, store: SessionStore) -> None:
        run(store.save("a", []))
        stored = run(store.load("a"))
        assert stored is not None, f"{ROUND_TRIP}: a session saved with no messages exists"
        assert (stored.messages, stored.metadata.message_count) == ([], 0), (
            f"{ROUND_TRIP}: no messages, message_count 0"
        )

    def test_merge_rules(self, store: SessionStore) -> None:
        run(store.save("a", [msg("1")], {"label": "first", "provider": "p", "custom": {"x": [1]}}))
        first = run(store.load("a"))
        assert first is not None, f"{ROUND_TRIP}: load('a') returned None after save('a')"
        run(store.save("a", [msg("1"), msg("2"), msg("3")], {"model": "m", "label": None, "other": 2}))
        second = run(store.load("a"))
        assert second is not None, f"{ROUND_TRIP}: load('a') returned None after a second save"
        meta = second.metadata
        assert meta.created_at == first.metadata.created_at, f"{MERGE}: created_at stays the first save's"
        assert meta.updated > first.metadata.updated, f"{LATER}: updated_at moved forward"
        assert meta.message_count == 3, f"{MERGE}: message_count is the count of the messages saved"
        assert (meta.provider, meta.model, meta.label) == ("p", "m", None), (
            f"{MERGE}: keys not given are kept, given ones replace, None removes"
        )
        assert meta.model_extra == {"custom": {"x": [1]}, "other": 2}, f"{MERGE}: unknown keys are merged"
        assert "label" not in meta.to_json_dict(), f"{MERGE}: a key set to None is removed"

    def test_updated_at_strictly_increases(self, store: SessionStore) -> None:
        stamps = []
        for n in range(30):
            run(store.save("a", [msg(str(n))]))
            stored = run(store.load("a"))
            assert stored is not None, f"{ROUND_TRIP}: load('a') returned None after save('a')"
            stamps.append(parse_timestamp(stored.metadata.updated_at))
        assert all(a < b for a, b in itertools.pairwise(stamps)), f"{LATER}: 30 saves in a row"

    @pytest.mark.parametrize("key", ["id", "created_at", "updated_at", "message_count"])
    def test_reserved_keys_raise_and_write_nothing(self, store: SessionStore, key: str) -> None:
        with raises(InvalidMetadataError, RESERVED, match=f"{key}.*session a"):
            run(store.save("a", [msg("x")], {key: "2026-01-01T00:00:00Z"}))
        assert run(store.load("a")) is None, f"{RESERVED}: a refused first save created the session"
        run(store.save("a", [msg("x")]))
        before = run(store.load("a"))
        with raises(InvalidMetadataError, RESERVED, match=key):
            run(store.save("a", [], {key: 1}))
        assert run(store.load("a")) == before, f"{RESERVED}: a refused save changed the session"

    @pytest.mark.parametrize("given", [{"label": 5}, {"provider": ["x"]}, {"detached": "maybe"}])
    def test_metadata_of_the_wrong_type_raises_and_writes_nothing(
        self, store: SessionStore, given: dict[str, Any]
    ) -> None:
        [(key, value)] = given.items()
        with raises(InvalidMetadataError, TYPED, match=re.escape(f"session a: {key}={value!r}")):
            run(store.save("a", [msg("x")], given))
        assert run(store.load("a")) is None, f"{TYPED}: a refused first save created the session"
        run(store.save("a", [msg("x")]))
        before = run(store.load("a"))
        with raises(InvalidMetadataError, TYPED, match=key):
            run(store.save("a", [msg("y")], given))
        assert run(store.load("a")) == before, f"{TYPED}: a refused save changed the session"

    def test_checkpoint_state_model(self, store: SessionStore) -> None:
        state = CheckpointState(message_id="m1", summary="so far")
        run(store.save("a", [], {"checkpoint_state": state, "is_checkpoint": True}))
        stored = run(store.load("a"))
        assert stored is not None, f"{ROUND_TRIP}: load('a') returned None after save('a')"
        assert stored.metadata.checkpoint_state == state, f"{ROUND_TRIP}: a CheckpointState model"
        assert stored.metadata.is_checkpoint is True, f"{ROUND_TRIP}: is_checkpoint"

    def test_unknown_keys_kept(self, store: SessionStore) -> None:
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
        run(store.save("a", [odd], {"team": {"name": "t"}, "tags": ["a", "b"]}))
        stored = run(store.load("a"))
        assert stored is not None, f"{ROUND_TRIP}: load('a') returned None after save('a')"
        assert stored.messages == [odd], f"{UNKNOWN}: the message"
        assert stored.metadata.model_extra == {"team": {"name": "t"}, "tags": ["a", "b"]}, (
            f"{UNKNOWN}: the metadata"
        )

    def test_messages_come_back_verbatim(self, store: SessionStore) -> None:
        numbers = [2**63 - 1, -(2**63), 2**53 + 1, 1, 1.0, -0.0, 0.1, 1e300, 5e-324, True, False, None]
        text = '\U0001f600 \ud83d e\u0301 \u00e9 \u0000 \u2028 "\\ \u4e2d'
        message: dict[str, Any] = {
            "z": 1,
            "role": "user",
            "a": numbers,
            "content": [{"type": "text", "text": text}],
        }
        message |= {"": "empty key", "nested": {"y": {}, "b": [], "x": {"k": [[-1.5]]}}}
        run(store.save("a", [message], {"team": {"z": text, "a": numbers}}))
        stored = run(store.load("a"))
        assert stored is not None, f"{ROUND_TRIP}: load('a') returned None after save('a')"
        # json.dumps tells apart what == does not: 1 and 1.0 or True, -0.0 and 0.0, key order
        assert json.dumps(stored.messages) == json.dumps([message]), f"{VERBATIM}: the message"
        assert json.dumps(stored.metadata.model_extra) == json.dumps({"team": {"z": text, "a": numbers}}), (
            f"{VERBATIM}: unknown metadata keys, as the messages"
        )

    @pytest.mark.parametrize(
        ("metadata", "path"),
        [
            ({"x": float("nan")}, r"\$\.x"),
            ({"tags": {"a"}}, r"\$\.tags"),
            ({"n": [1, float("inf")]}, r"\$\.n\[1\]"),
        ],
    )
    def test_metadata_must_be_strict_json(
        self, store: SessionStore, metadata: dict[str, Any], path: str
    ) -> None:
        run(store.save("a", [msg("x")], {"label": "kept"}))
        with raises(SerializationError, SERIALIZE, match=path):
            run(store.save("a", [msg("y")], metadata))
        stored = run(store.load("a"))
        assert stored is not None, f"{SERIALIZE}: the session is gone"
        assert stored.metadata.label == "kept", f"{SERIALIZE}: the metadata changed"
        assert texts(stored.messages) == ["x"], f"{SERIALIZE}: the messages changed"

    def test_serialization_error_keeps_previous_state(self, store: SessionStore) -> None:
        run(store.save("a", [msg("kept")], {"label": "kept"}))
        before = run(store.load("a"))
        bad = msg("bad")
        bad["content"][0]["extended"] = {"deep": [1, {1, 2}]}
        with raises(SerializationError, SERIALIZE, match=r"set at \$\.messages\[1\]\.content\[0\]"):
            run(store.save("a", [msg("kept"), bad], {"label": "new"}))
        with raises(SerializationError, SERIALIZE):
            run(store.save("fresh", [bad]))
        assert run(store.load("a")) == before, f"{SERIALIZE}: the session changed"
        assert run(store.load("fresh")) is None, f"{SERIALIZE}: a failed first save created the session"
        assert [m.id for m in run(store.list())] == ["a"], f"{SERIALIZE}: list shows a failed save"

    def test_unserializable_metadata_keeps_previous_state(self, store: SessionStore) -> None:
        run(store.save("a", [msg("kept")]))
        before = run(store.load("a"))
        with raises(SerializationError, SERIALIZE, match=r"cannot serialize object at \$\.handle"):
            run(store.save("a", [], {"handle": object()}))
        assert run(store.load("a")) == before, f"{SERIALIZE}: the session changed"

    def test_concurrent_saves_of_one_id_keep_every_merge(self, store: SessionStore) -> None:
        async def burst() -> None:
            await asyncio.gather(*(store.save("a", [msg(str(i))] * (i + 1), {f"k{i}": i}) for i in range(24)))

        contract = "SessionStore.save: concurrent saves of one id each merge into the last state"
        run(burst())
        stored = run(store.load("a"))
        assert stored is not None, f"{contract}: the session is missing"
        meta = stored.metadata
        assert meta.message_count == len(stored.messages), f"{contract}: message_count matches the messages"
        assert stored.messages == [msg(str(meta.message_count - 1))] * meta.message_count, (
            f"{contract}: the messages are one save's, whole"
        )
        assert meta.model_extra == {f"k{i}": i for i in range(24)}, f"{contract}: every save's key is kept"
