"""Conformance suites that any ``SessionStore`` must pass, shipped for third-party stores.

Usage, in your own test module::

    import pytest
    from simulacra_session.testing import SessionStoreConformance

    class TestMyStore(SessionStoreConformance):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(tmp_path)  # a fresh, empty store for each test

The fixture may also be a generator, to clean up after each test::

        @pytest.fixture
        def store(self):
            store = MyDatabaseStore(URL)
            yield store
            store.drop_everything_and_close()

Every test of the class then runs against your store. ``SessionStoreConformance`` runs two
halves, which can also be subclassed alone the same way:

- ``SessionStoreContract``: the store's own contract. The merge rules of ``save``, strictly
  later ``updated_at``, ordering, isolation from callers' objects, unknown keys kept, invalid
  ids rejected before any I/O, ``SerializationError`` leaving the old state intact,
  ``forks``, ``delete``, paging and, when the store implements them, ``append`` and
  ``load_chain``.
- ``SessionManagerConformance``: a ``SessionManager`` working on the store. Auto-save, slugs,
  load, attached and detached forks (deep chains, cycles), checkpoint state, delete keeping
  the forks' history, rename, child sessions, dispose and ``async with``.

The tests drive the store with ``asyncio.run``, so they need no plugin; the store contract
runs several event loops one after the other in a test, so a store must not bind itself to
the loop it was first used on. The helpers ``msg``, ``assistant``, ``texts`` and ``run`` and
the ``BAD_IDS`` list are public, for your own tests. Requires pytest.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import pytest

from .conversation import SimpleConversation
from .errors import (
    CorruptSessionError,
    InvalidMetadataError,
    InvalidSessionIdError,
    ManagerDisposedError,
    NoActiveSessionError,
    SerializationError,
    SessionNotFoundError,
)
from .events import LoadEvent, SaveEvent
from .manager import SessionManager
from .messages import Message
from .models import CheckpointState
from .protocols import AppendableSessionStore, ChainLoadingStore, ForkIndexedStore, SessionStore
from .timestamps import parse_timestamp

__all__ = [
    "BAD_IDS",
    "SessionManagerConformance",
    "SessionStoreConformance",
    "SessionStoreContract",
    "assistant",
    "msg",
    "run",
    "texts",
]

T = TypeVar("T")

BAD_IDS: list[object] = [
    *["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "x" * 129, "a\n", "a b", "\u00e9"],
    *[7, None, b"a"],
]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion in a new event loop (``asyncio.run``)."""
    return asyncio.run(coro)


def msg(text: str, role: str = "user", **extra: Any) -> Message:
    """A message with one text block, from the user unless ``role`` says otherwise."""
    return {"role": role, "content": [{"type": "text", "text": text}], **extra}  # type: ignore[return-value]


def assistant(text: str, **extra: Any) -> Message:
    """An assistant message with one text block."""
    return msg(text, "assistant", **extra)


def texts(messages: Sequence[Message]) -> list[str]:
    """The text of each message's first content block."""
    return [m["content"][0]["text"] for m in messages]  # type: ignore[typeddict-item]


class _StoreTests:
    @pytest.fixture
    def store(self) -> ForkIndexedStore:
        """Override: a fresh, empty store for each test (a generator fixture may clean up)."""
        raise NotImplementedError("override the store fixture in your subclass")


class SessionStoreContract(_StoreTests):
    """The contract of a ``SessionStore`` (with ``forks``), as pytest tests.

    Subclass it (or ``SessionStoreConformance``, which includes it) in a test module and
    override the ``store`` fixture to return a fresh, empty store; every test then runs
    against it. Stores that implement ``append`` (``AppendableSessionStore``) or
    ``load_chain`` (``ChainLoadingStore``) are checked for them too.
    """

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
        with pytest.raises(InvalidMetadataError, match=f"{key}.*session a"):
            run(store.save("a", [msg("x")], {key: "2026-01-01T00:00:00Z"}))
        assert run(store.load("a")) is None
        run(store.save("a", [msg("x")]))
        before = run(store.load("a"))
        with pytest.raises(InvalidMetadataError, match=key):
            run(store.save("a", [], {key: 1}))
        assert run(store.load("a")) == before

    @pytest.mark.parametrize("given", [{"label": 5}, {"provider": ["x"]}, {"detached": "maybe"}])
    def test_metadata_of_the_wrong_type_raises_and_writes_nothing(
        self, store: ForkIndexedStore, given: dict[str, Any]
    ) -> None:
        [(key, value)] = given.items()
        with pytest.raises(InvalidMetadataError, match=re.escape(f"session a: {key}={value!r}")):
            run(store.save("a", [msg("x")], given))
        assert run(store.load("a")) is None
        run(store.save("a", [msg("x")]))
        before = run(store.load("a"))
        with pytest.raises(InvalidMetadataError, match=key):
            run(store.save("a", [msg("y")], given))
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

    def test_load_chain_follows_what_each_fork_inherits(self, store: ForkIndexedStore) -> None:
        if not isinstance(store, ChainLoadingStore):
            pytest.skip("the store does not implement load_chain")
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
            run(store.save(session_id, [msg(session_id), assistant(session_id)], metadata))
        chains = {"r": "r", "a": "ar", "b": "bar", "d": "d", "e": "ed", "m": "m", "x": "xy", "n": "nr"}
        for session_id, expected in chains.items():
            loaded = run(store.load_chain(session_id))
            ids = [stored.metadata.id for stored in loaded]
            assert ids, session_id
            assert ids == list(expected[: len(ids)]), session_id  # as far as one fetch reached
            for stored in loaded:
                assert stored == run(store.load(stored.metadata.id))
        assert run(store.load_chain("absent")) == []
        with pytest.raises(InvalidSessionIdError):
            run(store.load_chain("../x"))

    def test_list_pages(self, store: ForkIndexedStore) -> None:
        for index in range(4):
            run(store.save(f"s{index}", []))
        listing: Any = store.list
        assert [m.id for m in run(listing(limit=2))] == ["s3", "s2"]
        assert [m.id for m in run(listing(limit=2, offset=3))] == ["s0"]


class SessionManagerConformance(_StoreTests):
    """A ``SessionManager`` working on the store, as pytest tests.

    Subclass it (or ``SessionStoreConformance``, which includes it) in a test module and
    override the ``store`` fixture to return a fresh, empty store. Each test runs its
    scenario in one event loop (``run``), except those that check what the manager does
    when no loop is running.
    """

    # -- start_new / auto-save ------------------------------------------------------------

    def test_start_new_without_loop_persists_at_once(self, store: SessionStore) -> None:
        conversation = SimpleConversation([msg("old")])
        manager = SessionManager(store, conversation)
        session_id = manager.start_new("first")
        assert conversation.messages == ()
        assert manager.current_session_id == session_id
        assert manager.is_loaded
        stored = run(store.load(session_id))
        assert stored is not None
        assert stored.metadata.label == "first"
        assert stored.messages == []

    def test_start_new_without_auto_save_or_label_writes_nothing(self, store: SessionStore) -> None:
        manager = SessionManager(store, SimpleConversation(), auto_save=False)
        manager.start_new()
        assert run(store.list()) == []

    def test_sync_appends_save_at_once_without_a_loop(self, store: SessionStore) -> None:
        conversation = SimpleConversation()
        manager = SessionManager(store, conversation)
        session_id = manager.start_new()
        conversation.append(msg("hello there"))
        conversation.append(assistant("hi"))
        stored = run(store.load(session_id))
        assert stored is not None
        assert texts(stored.messages) == ["hello there", "hi"]
        assert stored.metadata.label == "hello there"

    def test_auto_save_after_each_message(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            saved: list[SaveEvent] = []
            manager.on("save", saved.append)
            session_id = manager.start_new()
            conversation.append(msg("hello"))
            await manager.flush()
            conversation.append(assistant("hi"))
            await manager.flush()
            stored = await store.load(session_id)
            assert stored is not None
            assert texts(stored.messages) == ["hello", "hi"]
            assert stored.metadata.message_count == 2
            assert saved[-1].id == session_id
            assert texts(saved[-1].messages) == ["hello", "hi"]
            assert all(
                isinstance(m.get("id"), str) and isinstance(m.get("timestamp"), int) for m in stored.messages
            )

        run(scenario())

    def test_raising_listener_never_breaks_a_save(
        self, store: SessionStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)

            def broken(event: SaveEvent) -> None:
                raise RuntimeError("listener bug")

            manager.on("save", broken)
            session_id = manager.start_new()
            with caplog.at_level(logging.ERROR, logger="simulacra_session"):
                conversation.append(msg("still saved"))
                await manager.flush()
            stored = await store.load(session_id)
            assert stored is not None
            assert texts(stored.messages) == ["still saved"]
            assert "listener bug" in caplog.text

        run(scenario())

    def test_save_metadata_extra_and_reserved(self, store: SessionStore) -> None:
        async def scenario() -> None:
            manager = SessionManager(store, SimpleConversation([msg("x")]), auto_save=False)
            with pytest.raises(NoActiveSessionError, match="no active session"):
                await manager.save()
            session_id = manager.start_new()
            await manager.save(provider="anthropic", model="claude", team={"name": "ops"})
            stored = await store.load(session_id)
            assert stored is not None
            assert stored.metadata.provider == "anthropic"
            assert stored.metadata.model == "claude"
            assert stored.metadata.model_extra == {"team": {"name": "ops"}}
            for key in ("updated_at", "parent_id", "message_count", "detached"):
                reserved: dict[str, Any] = {key: "x"}
                with pytest.raises(InvalidMetadataError, match=f"{key}.*session {session_id}"):
                    await manager.save(**reserved)
            with pytest.raises(InvalidMetadataError, match="label=5"):
                await manager.save(label=5)  # type: ignore[arg-type]

        run(scenario())

    # -- slugs ----------------------------------------------------------------------------

    def test_auto_slug_derived_once_from_first_user_text(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            session_id = manager.start_new()
            conversation.append(assistant("greeting first"))
            conversation.append(
                msg("  Please   summarize the quarterly report for the board meeting tomorrow  ")
            )
            await manager.flush()
            conversation.append(msg("something else entirely"))
            await manager.flush()
            stored = await store.load(session_id)
            assert stored is not None
            assert stored.metadata.label == "Please summarize the quarterly report for the"

        run(scenario())

    def test_explicit_label_wins_over_slug(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            session_id = manager.start_new("My label")
            conversation.append(msg("derived text"))
            await manager.flush()
            stored = await store.load(session_id)
            assert stored is not None
            assert stored.metadata.label == "My label"
            await manager.rename(session_id, "Renamed")
            conversation.append(msg("more"))
            await manager.flush()
            stored = await store.load(session_id)
            assert stored is not None
            assert stored.metadata.label == "Renamed"

        run(scenario())

    def test_auto_slug_off(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation, auto_slug=False)
            session_id = manager.start_new()
            conversation.append(msg("no label please"))
            await manager.flush()
            stored = await store.load(session_id)
            assert stored is not None
            assert stored.metadata.label is None

        run(scenario())

    # -- load -----------------------------------------------------------------------------

    def test_load_most_recent_and_new_on_empty(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            loaded = await manager.load()  # empty store: a new session
            assert loaded == manager.current_session_id
            conversation.append(msg("first"))
            await manager.flush()
            second = manager.start_new()
            conversation.append(msg("second"))
            await manager.flush()
            other = SimpleConversation()
            reader = SessionManager(store, other)
            events: list[LoadEvent] = []
            reader.on("load", events.append)
            assert await reader.load() == second
            assert texts(other.messages) == ["second"]
            assert events[0].id == second
            assert texts(events[0].messages) == ["second"]
            assert await reader.load(loaded) == loaded
            assert texts(other.messages) == ["first"]

        run(scenario())

    def test_load_missing_and_invalid(self, store: SessionStore) -> None:
        async def scenario() -> None:
            manager = SessionManager(store, SimpleConversation())
            with pytest.raises(SessionNotFoundError, match="session not found: nope"):
                await manager.load("nope")
            for bad in ("../etc/passwd", "a/b", ".hidden", "", "x" * 129):
                with pytest.raises(InvalidSessionIdError):
                    await manager.load(bad)
                with pytest.raises(InvalidSessionIdError):
                    await manager.fork(bad)
                with pytest.raises(InvalidSessionIdError):
                    await manager.delete(bad)
                with pytest.raises(InvalidSessionIdError):
                    await manager.rename(bad, "x")
                with pytest.raises(InvalidSessionIdError):
                    await manager.forks(bad)

        run(scenario())

    def test_load_restores_checkpoint_state(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            session_id = manager.start_new()
            conversation.checkpoint_state = CheckpointState(message_id="m1", summary="so far")
            conversation.append(msg("a"))
            await manager.flush()
            other = SimpleConversation()
            await SessionManager(store, other).load(session_id)
            assert other.checkpoint_state == CheckpointState(message_id="m1", summary="so far")

        run(scenario())

    # -- forks ----------------------------------------------------------------------------

    def test_attached_fork_stores_only_its_own_messages(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            parent = manager.start_new()
            conversation.extend([msg("p1"), assistant("p2")])
            await manager.flush()
            fork = await manager.fork(parent)
            assert manager.current_session_id == fork
            assert texts(conversation.messages) == ["p1", "p2"]
            conversation.append(msg("f1"))
            await manager.flush()
            stored = await store.load(fork)
            assert stored is not None
            assert texts(stored.messages) == ["f1"]
            assert stored.metadata.parent_id == parent
            assert stored.metadata.fork_message_count == 2
            assert stored.metadata.fork_message_id == conversation.messages[1]["id"]
            assert not stored.metadata.detached
            assert [m.id for m in await manager.forks(parent)] == [fork]

        run(scenario())

    def test_fork_resolves_to_parent_history_at_fork_time_without_ids(self, store: SessionStore) -> None:
        # messages without ids: the original library would inherit whatever the parent grows to
        async def scenario() -> None:
            await store.save("parent", [msg("p1"), msg("p2")])
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation, auto_save=False)
            fork = await manager.fork("parent")
            await store.save("parent", [msg("p1"), msg("p2"), msg("p3 later")])
            other = SimpleConversation()
            await SessionManager(store, other).load(fork)
            assert texts(other.messages) == ["p1", "p2"]

        run(scenario())

    def test_fork_of_missing_parent(self, store: SessionStore) -> None:
        async def scenario() -> None:
            manager = SessionManager(store, SimpleConversation())
            with pytest.raises(SessionNotFoundError, match="ghost"):
                await manager.fork("ghost")

        run(scenario())

    def test_deep_fork_chain_resolves_without_recursion(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            current = manager.start_new()
            depth = 300
            for level in range(depth):
                conversation.append(msg(f"level {level}"))
                await manager.flush()
                current = await manager.fork(current)
            other = SimpleConversation()
            await SessionManager(store, other).load(current)
            assert texts(other.messages) == [f"level {level}" for level in range(depth)]

        run(scenario())

    def test_fork_cycle_is_corrupt(self, store: SessionStore) -> None:
        async def scenario() -> None:
            await store.save("a", [msg("a")], {"parent_id": "b"})
            await store.save("b", [msg("b")], {"parent_id": "a"})
            with pytest.raises(CorruptSessionError, match="cycle"):
                await SessionManager(store, SimpleConversation()).load("a")

        run(scenario())

    def test_detached_fork(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            parent = manager.start_new()
            conversation.checkpoint_state = CheckpointState(message_id="x", summary="sum")
            conversation.append(msg("parent msg"))
            await manager.flush()
            side = SimpleConversation([msg("own start")])
            side_manager = SessionManager(store, side)
            fork = await side_manager.fork(parent, detached=True)
            assert texts(side.messages) == ["own start"]
            assert side.checkpoint_state == CheckpointState(message_id="x", summary="sum")
            stored = await store.load(fork)
            assert stored is not None
            assert stored.metadata.detached is True
            assert stored.metadata.parent_id == parent
            assert texts(stored.messages) == ["own start"]
            other = SimpleConversation()
            await SessionManager(store, other).load(fork)
            assert texts(other.messages) == ["own start"]

        run(scenario())

    def test_attached_fork_copies_checkpoint_state(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            parent = manager.start_new()
            conversation.checkpoint_state = CheckpointState(message_id="c", summary="s")
            conversation.append(msg("x"))
            await manager.flush()
            fresh = SimpleConversation()
            fork = await SessionManager(store, fresh).fork(parent)
            stored = await store.load(fork)
            assert stored is not None
            assert stored.metadata.checkpoint_state == CheckpointState(message_id="c", summary="s")
            assert fresh.checkpoint_state == CheckpointState(message_id="c", summary="s")

        run(scenario())

    # -- delete and rename ----------------------------------------------------------------

    def test_delete_keeps_fork_history(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            root = manager.start_new()
            conversation.extend([msg("r1"), assistant("r2")])
            await manager.flush()
            child = await manager.fork(root)
            conversation.append(msg("c1"))
            await manager.flush()
            grandchild = await manager.fork(child)
            conversation.append(msg("g1"))
            await manager.flush()
            before = {}
            for session_id in (child, grandchild):
                probe = SimpleConversation()
                await SessionManager(store, probe).load(session_id)
                before[session_id] = texts(probe.messages)

            deleter = SessionManager(store, SimpleConversation())
            assert await deleter.delete(root) is True
            assert await store.load(root) is None
            for session_id, expected in before.items():
                probe = SimpleConversation()
                await SessionManager(store, probe).load(session_id)
                assert texts(probe.messages) == expected
            assert await deleter.delete(root) is False

        run(scenario())

    def test_delete_current_session(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            session_id = manager.start_new()
            conversation.append(msg("bye"))
            assert await manager.delete(session_id) is True
            assert manager.current_session_id is None
            assert not manager.is_loaded
            assert conversation.messages == ()
            assert await store.load(session_id) is None

        run(scenario())

    def test_rename_other_session_and_missing(self, store: SessionStore) -> None:
        async def scenario() -> None:
            await store.save("other", [msg("keep me")], {"label": "old"})
            manager = SessionManager(store, SimpleConversation())
            await manager.rename("other", "new")
            stored = await store.load("other")
            assert stored is not None
            assert stored.metadata.label == "new"
            assert texts(stored.messages) == ["keep me"]
            with pytest.raises(SessionNotFoundError):
                await manager.rename("missing", "x")
            with pytest.raises(ValueError, match="label"):
                await manager.rename("other", "")

        run(scenario())

    # -- children -------------------------------------------------------------------------

    def test_child_conversations_get_detached_fork_sessions(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            parent = manager.start_new()
            conversation.append(msg("parent talk"))
            child = conversation.spawn_child()
            child.append(msg("child task: look things up"))
            checkpoint = conversation.spawn_child(is_checkpoint=True)
            checkpoint.append(msg("summarize everything"))
            await manager.flush()
            forks = await manager.forks(parent)
            assert len(forks) == 2
            by_checkpoint = {bool(meta.is_checkpoint): meta for meta in forks}
            child_meta, checkpoint_meta = by_checkpoint[False], by_checkpoint[True]
            assert child_meta.detached is True
            assert child_meta.label == "child task: look things up"
            assert checkpoint_meta.label is None
            stored = await store.load(child_meta.id)
            assert stored is not None
            assert texts(stored.messages) == ["child task: look things up"]
            assert len(manager.children) == 2
            child.dispose()
            assert len(manager.children) == 1
            child.append(msg("after dispose"))  # no longer saved
            await manager.flush()
            stored = await store.load(child_meta.id)
            assert stored is not None
            assert len(stored.messages) == 1

        run(scenario())

    # -- lifecycle ------------------------------------------------------------------------

    def test_dispose_is_idempotent_and_follows_conversation(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            disposed: list[bool] = []
            manager.on("dispose", lambda: disposed.append(True))
            session_id = manager.start_new()
            conversation.dispose()
            manager.dispose()
            assert disposed == [True]
            conversation.append(msg("not saved"))
            await manager.flush()  # the save start_new queued still lands after dispose
            stored = await store.load(session_id)
            assert stored is not None
            assert stored.messages == []
            with pytest.raises(ManagerDisposedError, match=f"disposed .*{session_id}"):
                manager.start_new()

        run(scenario())

    def test_async_with_flushes(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            async with SessionManager(store, conversation) as manager:
                session_id = manager.start_new()
                conversation.append(msg("flushed on exit"))
            stored = await store.load(session_id)
            assert stored is not None
            assert texts(stored.messages) == ["flushed on exit"]

        run(scenario())

    def test_sync_with_disposes(self, store: SessionStore) -> None:
        conversation = SimpleConversation()
        with SessionManager(store, conversation) as manager:
            manager.start_new()
        conversation.append(msg("ignored"))

    def test_messages_before_start_are_not_lost(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            conversation.append(msg("early"))
            await manager.flush()
            assert manager.current_session_id is not None
            stored = await store.load(manager.current_session_id)
            assert stored is not None
            assert texts(stored.messages) == ["early"]

        run(scenario())


class SessionStoreConformance(SessionStoreContract, SessionManagerConformance):
    """Everything a ``SessionStore`` must pass: its own contract and a manager working on it.

    Subclass it in a test module and override the ``store`` fixture to return (or yield) a
    fresh, empty store; every test of both halves then runs against it.
    """
