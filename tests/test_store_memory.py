"""InMemorySessionStore: the conformance suite, and what is particular to it."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from simulacra_session._backend import loads
from simulacra_session.errors import CorruptSessionError
from simulacra_session.models import SessionMetadata
from simulacra_session.stores.memory import InMemorySessionStore, _Entry
from simulacra_session.testing import SessionStoreConformance, msg, run


class TestInMemorySessionStore(SessionStoreConformance):
    @pytest.fixture
    def store(self) -> InMemorySessionStore:
        return InMemorySessionStore()

    def test_keeps_the_session_document_as_bytes(self, store: InMemorySessionStore) -> None:
        run(store.save("a", [msg("x")], {"label": "l"}))
        data = store._sessions["a"].document()
        assert isinstance(data, bytes)
        document = loads(data)
        assert isinstance(document, dict)
        assert list(document) == ["metadata", "messages"]
        assert "id" not in document["metadata"]
        assert b" " not in data

    def test_an_auto_save_append_merges_metadata_as_a_save_does(self, store: InMemorySessionStore) -> None:
        run(store.save("a", [msg("x")], {"label": "l", "extra": {"deep": [1]}}))
        before = run(store.load("a")).metadata
        stamps = [before.updated]
        for text in ("y", "z"):
            run(store.append("a", [msg(text)]))  # no metadata: the model-free path
            stamps.append(run(store.load("a")).metadata.updated)
        after = run(store.load("a")).metadata
        assert stamps == sorted(set(stamps))  # strictly later each time
        assert after.message_count == 3
        kept = {
            key: value
            for key, value in after.to_json_dict().items()
            if key not in ("updated_at", "message_count")
        }
        assert kept == {
            k: v for k, v in before.to_json_dict().items() if k not in ("updated_at", "message_count")
        }
        assert after.model_extra == {"extra": {"deep": [1]}}
        assert loads(store._sessions["a"].metadata) == store._sessions["a"].meta  # bytes and dict agree

    def test_corrupt_bytes_name_the_id(self, store: InMemorySessionStore) -> None:
        store._sessions["a"] = _Entry(b"{}", [], {})
        store._sessions["b"] = _Entry(b"{", [], {})
        for session_id in ("a", "b"):
            with pytest.raises(CorruptSessionError, match=f"'{session_id}'"):
                run(store.load(session_id))

    def test_stores_are_independent(self) -> None:
        one, two = InMemorySessionStore(), InMemorySessionStore()
        run(one.save("a", []))
        assert run(two.list()) == []

    def test_list_returns_fresh_models(self, store: InMemorySessionStore) -> None:
        run(store.save("a", []))
        first = run(store.list())[0]
        with pytest.raises(ValidationError, match="frozen"):
            first.label = "mutated"  # type: ignore[misc]  # metadata are immutable snapshots
        assert run(store.list())[0].label is None
        assert isinstance(first, SessionMetadata)
        assert copy.deepcopy(first) == first
