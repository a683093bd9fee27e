"""A ``SessionManager`` saving and loading on the store: ``start_new``, auto-save, labels
(slugs), ``load``, ``dispose`` and ``with``. Each failure names the manager's contract."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ..conversation import SimpleConversation
from ..errors import (
    InvalidMetadataError,
    InvalidSessionIdError,
    ManagerDisposedError,
    NoActiveSessionError,
    SessionNotFoundError,
)
from ..events import LoadEvent, SaveEvent
from ..manager import SessionManager
from ..models import CheckpointState
from ..protocols import SessionStore
from .helpers import StoreFixture, assistant, msg, raises, run, texts

__all__ = ["ManagerSaveConformance"]

START = "SessionManager.start_new starts an empty session, saved at once when auto-saving or labelled"
AUTO = "SessionManager auto-saves the conversation's history after each message"
SAVE = "SessionManager.save merges provider, model and extra keys, refusing the keys it manages"
SLUG = "SessionManager labels a session once, from its first user text, unless given a label"
LOAD = "SessionManager.load loads the session (the most recent by default) into the conversation"
INVALID = "SessionManager rejects an invalid id with InvalidSessionIdError"
DISPOSE = "SessionManager.dispose stops auto-saving; the saves already queued land"


class ManagerSaveConformance(StoreFixture):
    """``start_new``, auto-save, ``save``, slugs, ``load`` and the manager's lifecycle."""

    # -- start_new / auto-save ------------------------------------------------------------

    def test_start_new_without_loop_persists_at_once(self, store: SessionStore) -> None:
        conversation = SimpleConversation([msg("old")])
        manager = SessionManager(store, conversation)
        session_id = manager.start_new("first")
        assert conversation.messages == (), f"{START}: the conversation is cleared"
        assert manager.current_session_id == session_id, f"{START}: it becomes the current session"
        assert manager.is_loaded, f"{START}: the manager is loaded"
        stored = run(store.load(session_id))
        assert stored is not None, f"{START}: not saved at once without an event loop"
        assert stored.metadata.label == "first", f"{START}: the label given"
        assert stored.messages == [], f"{START}: no messages"

    def test_start_new_without_auto_save_or_label_writes_nothing(self, store: SessionStore) -> None:
        manager = SessionManager(store, SimpleConversation(), auto_save=False)
        manager.start_new()
        assert run(store.list()) == [], f"{START}: without auto-save or label nothing is written"

    def test_sync_appends_save_at_once_without_a_loop(self, store: SessionStore) -> None:
        conversation = SimpleConversation()
        manager = SessionManager(store, conversation)
        session_id = manager.start_new()
        conversation.append(msg("hello there"))
        conversation.append(assistant("hi"))
        stored = run(store.load(session_id))
        assert stored is not None, f"{AUTO}: not saved at once without an event loop"
        assert texts(stored.messages) == ["hello there", "hi"], f"{AUTO}: without an event loop"
        assert stored.metadata.label == "hello there", f"{SLUG}: without an event loop"

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
            assert stored is not None, f"{AUTO}: the session is missing after flush"
            assert texts(stored.messages) == ["hello", "hi"], f"{AUTO}: the messages after flush"
            assert stored.metadata.message_count == 2, f"{AUTO}: message_count"
            assert saved[-1].id == session_id, f"{AUTO}: a save event names the session"
            assert texts(saved[-1].messages) == ["hello", "hi"], f"{AUTO}: a save event has the messages"
            assert all(
                isinstance(m.get("id"), str) and isinstance(m.get("timestamp"), int) for m in stored.messages
            ), f"{AUTO}: each message saved has a string id and an integer timestamp"

        run(scenario())

    def test_raising_listener_never_breaks_a_save(
        self, store: SessionStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        contract = "SessionManager: a listener that raises is logged and never breaks a save"

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
            assert stored is not None, f"{contract}: the session is missing"
            assert texts(stored.messages) == ["still saved"], f"{contract}: the message is missing"
            assert "listener bug" in caplog.text, f"{contract}: the error was not logged"

        run(scenario())

    def test_save_metadata_extra_and_reserved(self, store: SessionStore) -> None:
        async def scenario() -> None:
            manager = SessionManager(store, SimpleConversation([msg("x")]), auto_save=False)
            with raises(NoActiveSessionError, f"{SAVE}; without a session", match="no active session"):
                await manager.save()
            session_id = manager.start_new()
            await manager.save(provider="anthropic", model="claude", team={"name": "ops"})
            stored = await store.load(session_id)
            assert stored is not None, f"{SAVE}: the session is missing"
            assert stored.metadata.provider == "anthropic", f"{SAVE}: provider"
            assert stored.metadata.model == "claude", f"{SAVE}: model"
            assert stored.metadata.model_extra == {"team": {"name": "ops"}}, f"{SAVE}: extra keys"
            for key in ("updated_at", "parent_id", "message_count", "detached"):
                reserved: dict[str, Any] = {key: "x"}
                with raises(InvalidMetadataError, f"{SAVE}: {key}", match=f"{key}.*session {session_id}"):
                    await manager.save(**reserved)
            with raises(InvalidMetadataError, f"{SAVE}: a label of the wrong type", match="label=5"):
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
            assert stored is not None, f"{SLUG}: the session is missing"
            assert stored.metadata.label == "Please summarize the quarterly report for the", f"{SLUG}"

        run(scenario())

    def test_explicit_label_wins_over_slug(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            session_id = manager.start_new("My label")
            conversation.append(msg("derived text"))
            await manager.flush()
            stored = await store.load(session_id)
            assert stored is not None, f"{SLUG}: the session is missing"
            assert stored.metadata.label == "My label", f"{SLUG}: the label given to start_new"
            await manager.rename(session_id, "Renamed")
            conversation.append(msg("more"))
            await manager.flush()
            stored = await store.load(session_id)
            assert stored is not None, f"{SLUG}: the session is missing"
            assert stored.metadata.label == "Renamed", f"{SLUG}: the label given to rename"

        run(scenario())

    def test_auto_slug_off(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation, auto_slug=False)
            session_id = manager.start_new()
            conversation.append(msg("no label please"))
            await manager.flush()
            stored = await store.load(session_id)
            assert stored is not None, f"{AUTO}: the session is missing"
            assert stored.metadata.label is None, f"{SLUG}: auto_slug=False leaves no label"

        run(scenario())

    # -- load -----------------------------------------------------------------------------

    def test_load_most_recent_and_new_on_empty(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            loaded = await manager.load()  # empty store: a new session
            assert loaded == manager.current_session_id, f"{LOAD}: on an empty store, a new session"
            conversation.append(msg("first"))
            await manager.flush()
            second = manager.start_new()
            conversation.append(msg("second"))
            await manager.flush()
            other = SimpleConversation()
            reader = SessionManager(store, other)
            events: list[LoadEvent] = []
            reader.on("load", events.append)
            assert await reader.load() == second, f"{LOAD}: the most recent session"
            assert texts(other.messages) == ["second"], f"{LOAD}: its messages"
            assert events[0].id == second, f"{LOAD}: a load event names the session"
            assert texts(events[0].messages) == ["second"], f"{LOAD}: a load event has the messages"
            assert await reader.load(loaded) == loaded, f"{LOAD}: the session named"
            assert texts(other.messages) == ["first"], f"{LOAD}: the named session's messages"

        run(scenario())

    def test_load_missing_and_invalid(self, store: SessionStore) -> None:
        async def scenario() -> None:
            manager = SessionManager(store, SimpleConversation())
            missing = f"{LOAD}; a missing session raises SessionNotFoundError"
            with raises(SessionNotFoundError, missing, match="session not found: nope"):
                await manager.load("nope")
            for bad in ("../etc/passwd", "a/b", ".hidden", "", "x" * 129):
                with raises(InvalidSessionIdError, f"{INVALID}: load({bad!r})"):
                    await manager.load(bad)
                with raises(InvalidSessionIdError, f"{INVALID}: fork({bad!r})"):
                    await manager.fork(bad)
                with raises(InvalidSessionIdError, f"{INVALID}: delete({bad!r})"):
                    await manager.delete(bad)
                with raises(InvalidSessionIdError, f"{INVALID}: rename({bad!r})"):
                    await manager.rename(bad, "x")
                with raises(InvalidSessionIdError, f"{INVALID}: forks({bad!r})"):
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
            assert other.checkpoint_state == CheckpointState(message_id="m1", summary="so far"), (
                f"{LOAD}: with its checkpoint state"
            )

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
            assert disposed == [True], f"{DISPOSE}: once, on the conversation's dispose"
            conversation.append(msg("not saved"))
            await manager.flush()  # the save start_new queued still lands after dispose
            stored = await store.load(session_id)
            assert stored is not None, f"{DISPOSE}: the save start_new queued is missing"
            assert stored.messages == [], f"{DISPOSE}: a message after dispose was saved"
            refused = f"{DISPOSE}; then start_new raises ManagerDisposedError"
            with raises(ManagerDisposedError, refused, match=f"disposed .*{session_id}"):
                manager.start_new()

        run(scenario())

    def test_async_with_flushes(self, store: SessionStore) -> None:
        contract = "SessionManager: async with flushes on exit"

        async def scenario() -> None:
            conversation = SimpleConversation()
            async with SessionManager(store, conversation) as manager:
                session_id = manager.start_new()
                conversation.append(msg("flushed on exit"))
            stored = await store.load(session_id)
            assert stored is not None, f"{contract}: the session is missing"
            assert texts(stored.messages) == ["flushed on exit"], f"{contract}: the message is missing"

        run(scenario())

    def test_sync_with_disposes(self, store: SessionStore) -> None:
        conversation = SimpleConversation()
        with SessionManager(store, conversation) as manager:
            session_id = manager.start_new()
        conversation.append(msg("ignored"))
        stored = run(store.load(session_id))
        assert stored is not None, f"{START}: not saved at once without an event loop"
        assert stored.messages == [], "SessionManager: with disposes on exit; a later message was saved"

    def test_messages_before_start_are_not_lost(self, store: SessionStore) -> None:
        contract = f"{AUTO}; messages before start_new start a session"

        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            conversation.append(msg("early"))
            await manager.flush()
            assert manager.current_session_id is not None, f"{contract}: no current session"
            stored = await store.load(manager.current_session_id)
            assert stored is not None, f"{contract}: the session is missing"
            assert texts(stored.messages) == ["early"], f"{contract}: the message is missing"

        run(scenario())
