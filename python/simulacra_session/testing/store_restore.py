"""The optional ``RestorableSessionStore`` capability: ``restore`` writes a session exactly as
given, its stamps included, replacing what was stored (``transfer`` moves sessions with it).

A store without ``restore`` has these tests skipped, and the one of ``expected`` where its
``restore`` does not take it. Each failure names the contract.
"""

from __future__ import annotations

from typing import Any

import pytest

from simulacra_session.errors import ConflictError, InvalidMetadataError
from simulacra_session.models import SessionMetadata
from simulacra_session.protocols import ForkIndexedStore, RestorableSessionStore, SessionStore, takes_expected
from simulacra_session.testing.helpers import StoreFixture, msg, raises, run, texts

__all__ = ["StoreRestoreContract"]

RESTORE = (
    "RestorableSessionStore.restore replaces the session with the messages and metadata given, "
    "every key and both stamps as they are"
)
EXPECTED = (
    "RestorableSessionStore.restore(expected=...) writes only over the session at that revision: "
    "ConflictError, nothing written, when it is at another or gone"
)


def _restoring(store: SessionStore) -> RestorableSessionStore:
    if not isinstance(store, RestorableSessionStore):
        pytest.skip("optional capability: the store has no restore() (RestorableSessionStore)")
    return store


def _metadata(id: str, count: int, **keys: Any) -> SessionMetadata:
    stamps = {"created_at": "2021-01-01T00:00:00.000Z", "updated_at": "2021-01-01T00:00:00.000Z"}
    return SessionMetadata.model_validate({"id": id, "message_count": count, **stamps, **keys})


class StoreRestoreContract(StoreFixture):
    """``restore``, tested when the store implements it."""

    def test_restore_writes_the_session_as_given(self, store: SessionStore) -> None:
        restoring = _restoring(store)
        run(restoring.save("now", [msg("x")]))
        run(restoring.save("b", [msg("old"), msg("older")], {"label": "was", "kept": 1}))
        given = _metadata(
            "b",
            1,
            created_at="2020-01-02T03:04:05.678Z",
            updated_at="2020-02-03T04:05:06.789Z",
            label="restored",
            parent_id="p",
            unknown={"nested": [1, 2.0]},
        )
        run(restoring.restore("b", [msg("one")], given))
        stored = run(restoring.load("b"))
        assert stored is not None, f"{RESTORE}: the session is missing"
        assert texts(stored.messages) == ["one"], f"{RESTORE}: the messages, replaced"
        got = stored.metadata
        assert (got.created, got.updated) == (given.created, given.updated), f"{RESTORE}: the stamps"
        assert got.to_json_dict(include_id=True) == given.to_json_dict(include_id=True), (
            f"{RESTORE}: the keys given and no other (no merge with what was stored)"
        )
        assert [meta.id for meta in run(restoring.list())] == ["now", "b"], (
            f"{RESTORE}: list orders by the updated_at restored"
        )
        if isinstance(store, ForkIndexedStore):
            assert [meta.id for meta in run(store.forks("p"))] == ["b"], f"{RESTORE}: a fork is indexed"

    def test_restore_refuses_metadata_not_matching(self, store: SessionStore) -> None:
        restoring = _restoring(store)
        run(restoring.save("a", [msg("x")]))
        before = run(restoring.load("a"))
        for metadata, why in [
            (_metadata("other", 1), "another id"),
            (_metadata("a", 2), "a wrong message_count"),
        ]:
            with raises(InvalidMetadataError, f"{RESTORE}; metadata with {why} raises InvalidMetadataError"):
                run(restoring.restore("a", [msg("y")], metadata))
            assert run(restoring.load("a")) == before, f"{RESTORE}; metadata with {why} writes nothing"

    def test_restore_over_a_revision_refuses_another(self, store: SessionStore) -> None:
        restoring = _restoring(store)
        if not takes_expected(restoring.restore):
            pytest.skip("optional: the store's restore() takes no expected")
        restore: Any = restoring.restore  # ``expected`` is no part of the protocol's signature
        run(restoring.save("a", [msg("x")]))
        read = run(restoring.load("a"))
        assert read is not None, f"{EXPECTED}: a session saved loads"
        run(restoring.save("a", [msg("x"), msg("meanwhile")]))  # another writer, after the read
        now = run(restoring.load("a"))
        assert now is not None, f"{EXPECTED}: a session saved loads"
        with raises(ConflictError, f"{EXPECTED}: over a revision written over since"):
            run(restore("a", [msg("y")], _metadata("a", 1), expected=read.revision))
        assert run(restoring.load("a")) == now, f"{EXPECTED}: refused, nothing written"
        run(restore("a", [msg("y")], _metadata("a", 1), expected=now.revision))
        stored = run(restoring.load("a"))
        assert stored is not None, f"{EXPECTED}: at it, written"
        assert texts(stored.messages) == ["y"], f"{EXPECTED}: at it, written"
        run(restoring.delete("a"))
        with raises(ConflictError, f"{EXPECTED}: over a session deleted since"):
            run(restore("a", [msg("z")], _metadata("a", 1), expected=stored.revision))
        assert run(restoring.load("a")) is None, f"{EXPECTED}: deleted, nothing written"
