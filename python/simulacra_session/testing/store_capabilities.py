"""The optional store capabilities: ``forks`` (``ForkIndexedStore``), ``append``
(``AppendableSessionStore``) and ``load_chain`` (``ChainLoadingStore``).

A store implements each or not; a test of one the store lacks is skipped with the reason,
so a store implementing exactly the ``SessionStore`` protocol passes the kit. Each failure
names the contract it checks.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..errors import InvalidSessionIdError, SerializationError
from ..protocols import AppendableSessionStore, ChainLoadingStore, ForkIndexedStore, SessionStore
from .helpers import BAD_IDS, StoreFixture, assistant, msg, raises, run, texts

__all__ = ["StoreCapabilityContract"]

FORKS = "ForkIndexedStore.forks returns the sessions whose parent_id is the id, most recent first"
APPEND = "AppendableSessionStore.append adds messages after the stored ones and merges metadata as save"
CHAIN = "ChainLoadingStore.load_chain returns the session, then the ancestors it inherits from, nearest first"


def _forking(store: SessionStore) -> ForkIndexedStore:
    """The store as a ``ForkIndexedStore``; the test is skipped when it is not one."""
    if not isinstance(store, ForkIndexedStore):
        pytest.skip("optional capability: the store has no forks() (ForkIndexedStore)")
    return store


def _appending(store: SessionStore) -> AppendableSessionStore:
    """The store as an ``AppendableSessionStore``; the test is skipped when it is not one."""
    if not isinstance(store, AppendableSessionStore):
        pytest.skip("optional capability: the store has no append() (AppendableSessionStore)")
    return store


def _chaining(store: SessionStore) -> ChainLoadingStore:
    """The store as a ``ChainLoadingStore``; the test is skipped when it is not one."""
    if not isinstance(store, ChainLoadingStore):
        pytest.skip("optional capability: the store has no load_chain() (ChainLoadingStore)")
    return store


def _check_chains(chaining: ChainLoadingStore, chains: dict[str, str], when: str) -> None:
    """``load_chain`` of each id gives a prefix (never empty) of the ids in ``chains``, each
    session as ``load`` gives it."""
    for session_id, expected in chains.items():
        loaded = run(chaining.load_chain(session_id))
        ids = [stored.metadata.id for stored in loaded]
        assert ids, f"{CHAIN}{when}: load_chain({session_id!r}) returned nothing"
        assert ids == list(expected[: len(ids)]), f"{CHAIN}{when}: load_chain({session_id!r})"
        for stored in loaded:
            assert stored == run(chaining.load(stored.metadata.id)), (
                f"{CHAIN}{when}: each session as load returns it ({stored.metadata.id!r})"
            )


class StoreCapabilityContract(StoreFixture):
    """``forks``, ``append`` and ``load_chain``, each tested when the store implements it."""

    def test_forks(self, store: SessionStore) -> None:
        forking = _forking(store)
        assert run(forking.forks("p")) == [], f"{FORKS}: an empty store has no forks"
        run(forking.save("p", [msg("root")]))
        run(forking.save("c1", [msg("x")], {"parent_id": "p", "fork_message_count": 1}))
        run(forking.save("c2", [], {"parent_id": "p", "detached": True}))
        run(forking.save("d", [], {"parent_id": "other"}))
        assert [m.id for m in run(forking.forks("p"))] == ["c2", "c1"], f"{FORKS}: attached and detached"
        run(forking.save("c1", [msg("x"), msg("y")]))
        forks = run(forking.forks("p"))
        assert [(m.id, m.message_count) for m in forks] == [("c1", 2), ("c2", 0)], (
            f"{FORKS}: after a fork's save, with its new message_count"
        )
        assert [m.id for m in run(forking.forks("other"))] == ["d"], f"{FORKS}: a missing parent's forks"
        assert run(forking.forks("c1")) == [], f"{FORKS}: a session nobody forked"
        run(forking.save("c1", [], {"parent_id": None}))
        assert [m.id for m in run(forking.forks("p"))] == ["c2"], f"{FORKS}: after parent_id=None"
        run(forking.save("c2", [], {"parent_id": "other"}))
        assert run(forking.forks("p")) == [], f"{FORKS}: after a fork changed parent"
        assert [m.id for m in run(forking.forks("other"))] == ["c2", "d"], f"{FORKS}: of the new parent"

    def test_forks_are_the_children_only(self, store: SessionStore) -> None:
        forking = _forking(store)
        run(forking.save("p", [msg("root")]))
        run(forking.save("c", [msg("x")], {"parent_id": "p"}))
        run(forking.save("g", [msg("y")], {"parent_id": "c", "detached": True}))
        run(forking.save("h", [], {"parent_id": "g"}))
        family = {"p": ["c"], "c": ["g"], "g": ["h"], "h": []}
        for parent, children in family.items():
            found = run(forking.forks(parent))
            assert [meta.id for meta in found] == children, (
                f"{FORKS}: forks({parent!r}), not its grandchildren"
            )
            loaded = [run(forking.load(child)) for child in children]
            assert found == [stored.metadata for stored in loaded if stored is not None], (
                f"{FORKS}: forks({parent!r}) gives each fork's metadata as load does"
            )

    def test_forks_after_delete(self, store: SessionStore) -> None:
        forking = _forking(store)
        run(forking.save("p", []))
        run(forking.save("c", [], {"parent_id": "p"}))
        run(forking.delete("c"))
        assert run(forking.forks("p")) == [], f"{FORKS}: a deleted fork is gone from its parent's forks"

    @pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
    def test_forks_rejects_invalid_ids(self, store: SessionStore, bad: Any) -> None:
        forking = _forking(store)
        with raises(InvalidSessionIdError, f"{FORKS}; an invalid id raises InvalidSessionIdError: {bad!r}"):
            run(forking.forks(bad))

    def test_append_adds_after_the_stored_messages(self, store: SessionStore) -> None:
        appending = _appending(store)
        run(appending.append("new", [msg("a")], {"label": "first"}))
        run(appending.append("new", [msg("b"), msg("c")]))
        run(appending.append("new", [], {"label": "second"}))
        stored = run(appending.load("new"))
        assert stored is not None, f"{APPEND}: an append to a missing session creates it"
        assert texts(stored.messages) == ["a", "b", "c"], f"{APPEND}: the messages of three appends"
        assert stored.metadata.message_count == 3, f"{APPEND}: message_count is stored plus appended"
        assert stored.metadata.label == "second", f"{APPEND}: the metadata given is merged"
        unserializable: Any = {"role": "user", "content": {1}}
        failed = f"{APPEND}; all or nothing: SerializationError naming the path, nothing appended"
        with raises(SerializationError, failed, match=r"\$\.messages\[4\]"):
            run(appending.append("new", [msg("d"), unserializable]))
        after = run(appending.load("new"))
        assert after is not None, f"{failed}: the session is gone"
        assert texts(after.messages) == ["a", "b", "c"], f"{failed}: the messages changed"
        with raises(InvalidSessionIdError, f"{APPEND}; an invalid id raises InvalidSessionIdError"):
            run(appending.append("../x", [msg("x")]))

    def test_append_gives_a_later_updated_at(self, store: SessionStore) -> None:
        appending = _appending(store)
        run(appending.save("a", [msg("x")]))
        stamps = []
        for text in "yz":
            before = run(appending.load("a"))
            run(appending.append("a", [msg(text)]))
            after = run(appending.load("a"))
            assert before is not None, f"{APPEND}: the session is gone"
            assert after is not None, f"{APPEND}: the session is gone"
            stamps.append((before.metadata.updated, after.metadata.updated))
            assert after.metadata.created_at == before.metadata.created_at, f"{APPEND}: created_at is kept"
        assert all(first < then for first, then in stamps), (
            f"{APPEND}; like save, it gives the session an updated_at strictly later than before"
        )

    def test_load_chain_follows_what_each_fork_inherits(self, store: SessionStore) -> None:
        chaining = _chaining(store)
        parents: dict[str, dict[str, Any]] = {
            "r": {},
            "a": {"parent_id": "r"},
            "b": {"parent_id": "a", "fork_message_count": 1},
            "d": {"parent_id": "b", "detached": True},
            "e": {"parent_id": "d"},
            "m": {"parent_id": "ghost"},
            "x": {"parent_id": "y"},
            "y": {"parent_id": "x"},
            "n": {"parent_id": "r", "note": {"detached": True}},  # not detached: a nested key
        }
        for session_id, metadata in parents.items():
            run(chaining.save(session_id, [msg(session_id), assistant(session_id)], metadata))
        chains = {"r": "r", "a": "ar", "b": "bar", "d": "d", "e": "ed", "m": "m", "x": "xy", "n": "nr"}
        _check_chains(chaining, chains, "")
        for stored in run(chaining.load_chain("b")):  # the caller's to change: the store keeps none
            stored.messages.clear()
        _check_chains(chaining, {"b": "bar"}, " after the caller changed what it returned")
        run(chaining.save("a", [msg("a2")], {"detached": True}))  # a chain read before is stale now
        run(chaining.save("r", [msg("r2")]))
        _check_chains(chaining, {**chains, "a": "a", "b": "ba"}, " after saves")
        assert run(chaining.load_chain("absent")) == [], f"{CHAIN}: [] when the id is absent"
        with raises(InvalidSessionIdError, f"{CHAIN}; an invalid id raises InvalidSessionIdError"):
            run(chaining.load_chain("../x"))
