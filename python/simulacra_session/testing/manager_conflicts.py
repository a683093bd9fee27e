"""Two ``SessionManager``s saving one session on a store that checks revisions: the stale
one's auto-save fails with ``ConflictError``, reported as ``lifecycle_error``, and
``recover`` brings it back in step losing neither writer's messages. Skipped for a store
that does not check revisions. Each failure names the manager's contract."""

from __future__ import annotations

from typing import Any

import pytest

from ..conversation import SimpleConversation
from ..errors import ConflictError
from ..events import LifecycleErrorEvent
from ..manager import SessionManager
from ..protocols import SessionStore, checks_revisions
from .helpers import StoreFixture, msg, run, texts

__all__ = ["ManagerConflictConformance"]

CONFLICT = "SessionManager: an auto-save from a stale view fails with ConflictError, as a lifecycle_error"
RECOVER = "SessionManager.recover reloads the session and saves after it the messages the store lacks"


def _revisioned(store: SessionStore) -> None:
    if not checks_revisions(store):
        pytest.skip("optional capability: the store's save takes no expected (RevisionedSessionStore)")


async def _stored(store: SessionStore) -> list[str] | None:
    found = await store.load("s")
    return None if found is None else texts(found.messages)


class ManagerConflictConformance(StoreFixture):
    """A stale manager's conflict, and ``recover``."""

    def test_a_stale_auto_save_is_reported_and_recovered(self, store: SessionStore) -> None:
        _revisioned(store)

        async def scenario() -> None:
            await store.save("s", [msg("seed")])
            first, second = SimpleConversation(), SimpleConversation()
            one, other = SessionManager(store, first), SessionManager(store, second)
            errors: dict[str, list[LifecycleErrorEvent]] = {"one": [], "other": []}
            one.on("lifecycle_error", errors["one"].append)
            other.on("lifecycle_error", errors["other"].append)
            await one.load("s")
            await other.load("s")
            first.append(msg("a1"))
            await one.flush()
            second.append(msg("b1"))  # saved from the revision both loaded: stale now
            await other.flush()
            assert [(type(e.error), e.operation) for e in errors["other"]] == [(ConflictError, "save")], (
                f"{CONFLICT}: {errors['other']}"
            )
            assert await _stored(store) == ["seed", "a1"], f"{CONFLICT}: the stale save wrote over a1"
            assert await other.recover() == 1, f"{RECOVER}: b1 saved again"
            assert texts(second.messages) == ["seed", "a1", "b1"], f"{RECOVER}: the conversation holds both"
            assert await _stored(store) == ["seed", "a1", "b1"], f"{RECOVER}: the store holds both"
            second.append(msg("b2"))
            await other.flush()
            first.append(msg("a2"))
            await one.flush()
            assert len(errors["one"]) == 1, f"{CONFLICT}: the other manager is stale now: {errors['one']}"
            assert await one.recover() == 1, f"{RECOVER}: a2 saved again"
            assert await _stored(store) == ["seed", "a1", "b1", "b2", "a2"], f"{RECOVER}: nothing lost"
            assert len(errors["other"]) == 1, f"{RECOVER}: no conflict once recovered: {errors['other']}"

        run(scenario())

    def test_recover_saves_a_session_deleted_meanwhile_anew(self, store: SessionStore) -> None:
        _revisioned(store)

        async def scenario() -> Any:
            await store.save("s", [msg("seed")])
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            errors: list[LifecycleErrorEvent] = []
            manager.on("lifecycle_error", errors.append)
            await manager.load("s")
            await store.delete("s")
            conversation.append(msg("b1"))
            await manager.flush()
            assert [type(e.error) for e in errors] == [ConflictError], f"{CONFLICT}: after a delete: {errors}"
            assert await _stored(store) is None, f"{CONFLICT}: the stale save created the session again"
            assert await manager.recover() == 2, f"{RECOVER}: the whole history saved anew"
            assert await _stored(store) == ["seed", "b1"], f"{RECOVER}: the session saved anew"

        run(scenario())
