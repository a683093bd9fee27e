"""The optional ``RevisionedSessionStore`` capability: a write made from a stale view of a
session raises ``ConflictError`` and writes nothing; each write returns its revision.

A store whose ``save`` takes no ``expected`` revision (``checks_revisions``) has these tests
skipped. Each failure names the contract it checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from ..errors import ConflictError
from ..models import Revision
from ..protocols import AppendableSessionStore, SessionStore, checks_revisions
from .helpers import StoreFixture, msg, run, texts

__all__ = ["StoreRevisionContract"]

RETURNS = "RevisionedSessionStore: save and append return the revision load then gives"
STALE = "RevisionedSessionStore: a write expecting another revision raises ConflictError and writes nothing"
ATOMIC = "RevisionedSessionStore: of writes expecting one revision at once, exactly one lands"


def _revisioned(store: SessionStore) -> Any:
    """The store, when its writes take ``expected``; the test is skipped when they do not."""
    if not checks_revisions(store):
        pytest.skip("optional capability: the store's save takes no expected (RevisionedSessionStore)")
    return store


def _conflict(write: Coroutine[Any, Any, Any], contract: str) -> ConflictError:
    """The ``ConflictError`` that ``write`` raises; an ``AssertionError`` naming ``contract`` otherwise."""
    try:
        run(write)
    except ConflictError as error:
        return error
    except Exception as error:
        raise AssertionError(
            f"{contract}: expected ConflictError, got {type(error).__name__}: {error}"
        ) from error
    raise AssertionError(f"{contract}: expected ConflictError, nothing was raised")


def _revision(store: SessionStore, session_id: str) -> Revision | None:
    stored = run(store.load(session_id))
    return None if stored is None else stored.revision


class StoreRevisionContract(StoreFixture):
    """Stale writers get ``ConflictError``, tested when the store checks revisions."""

    def test_writes_return_the_revision_load_gives(self, store: SessionStore) -> None:
        revisioned = _revisioned(store)
        first = run(revisioned.save("a", [msg("x")]))
        assert isinstance(first, Revision), f"{RETURNS}: save returned {first!r}"
        assert first == _revision(store, "a"), f"{RETURNS}: after a first save"
        second = run(revisioned.save("a", [msg("x"), msg("y")], expected=first))
        assert second == _revision(store, "a"), f"{RETURNS}: after a save expecting the first"
        assert second != first, f"{RETURNS}: every save makes a new revision"
        assert second.message_count == 2, f"{RETURNS}: its message_count is the session's"
        if isinstance(store, AppendableSessionStore):
            third = run(revisioned.append("a", [msg("z")], expected=second))
            assert third == _revision(store, "a"), f"{RETURNS}: after an append expecting the second"
            assert third.message_count == 3, f"{RETURNS}: an append's message_count"

    def test_a_stale_save_is_refused(self, store: SessionStore) -> None:
        revisioned = _revisioned(store)
        mine = run(revisioned.save("a", [msg("x")]))
        theirs = run(revisioned.save("a", [msg("x"), msg("theirs")], {"label": "theirs"}))
        error = _conflict(revisioned.save("a", [msg("x"), msg("mine")], expected=mine), STALE)
        assert (error.session_id, error.expected, error.actual) == ("a", mine, theirs), (
            f"{STALE}: the error names the session, the revision expected and the one stored"
        )
        named = [part for part in ("session a", str(mine), str(theirs)) if part not in str(error)]
        assert not named, f"{STALE}: the message names the session and both revisions: {error}"
        stored = run(store.load("a"))
        assert stored is not None, f"{STALE}: the session is gone"
        assert (texts(stored.messages), stored.metadata.label) == (["x", "theirs"], "theirs"), (
            f"{STALE}: the refused save changed the session"
        )
        assert run(revisioned.save("a", [msg("y")])) == _revision(store, "a"), (
            f"{STALE}: a save expecting nothing (expected=None) writes unconditionally"
        )

    def test_a_save_stale_by_its_stamp_alone_is_refused(self, store: SessionStore) -> None:
        revisioned = _revisioned(store)
        mine = run(revisioned.save("a", [msg("x")]))
        theirs = run(revisioned.save("a", [msg("theirs")]))  # as many messages: only updated_at differs
        error = _conflict(
            revisioned.save("a", [msg("mine")], expected=mine), f"{STALE}: the same message_count"
        )
        assert (error.expected, error.actual) == (mine, theirs), f"{STALE}: the error names both revisions"
        stored = run(store.load("a"))
        assert stored is not None, f"{STALE}: the session is gone"
        assert texts(stored.messages) == ["theirs"], f"{STALE}: the refused save changed the session"

    def test_a_stale_append_is_refused(self, store: SessionStore) -> None:
        revisioned = _revisioned(store)
        if not isinstance(store, AppendableSessionStore):
            pytest.skip("optional capability: the store has no append() (AppendableSessionStore)")
        mine = run(revisioned.append("a", [msg("x")]))
        theirs = run(revisioned.append("a", [msg("theirs")]))
        error = _conflict(revisioned.append("a", [msg("mine")], expected=mine), STALE)
        assert (error.expected, error.actual) == (mine, theirs), f"{STALE}: an append's error names both"
        stored = run(store.load("a"))
        assert stored is not None, f"{STALE}: the session is gone"
        assert texts(stored.messages) == ["x", "theirs"], f"{STALE}: the refused append changed the session"
        assert run(revisioned.append("a", [msg("mine")], expected=theirs)).message_count == 3, (
            f"{STALE}: an append expecting the revision stored lands"
        )

    def test_a_write_expecting_a_session_deleted_since_is_refused(self, store: SessionStore) -> None:
        revisioned = _revisioned(store)
        mine = run(revisioned.save("a", [msg("x")]))
        run(store.delete("a"))
        error = _conflict(revisioned.save("a", [msg("x"), msg("y")], expected=mine), STALE)
        assert error.actual is None, f"{STALE}: the error says no session is stored"
        assert run(store.load("a")) is None, f"{STALE}: the refused save created the session"

    def test_of_writes_expecting_one_revision_exactly_one_lands(self, store: SessionStore) -> None:
        revisioned = _revisioned(store)
        base = run(revisioned.save("a", [msg("x")]))

        async def race() -> list[Any]:
            writes = [revisioned.save("a", [msg("x"), msg(str(n))], expected=base) for n in range(8)]
            return await asyncio.gather(*writes, return_exceptions=True)

        outcomes = run(race())
        landed = [outcome for outcome in outcomes if isinstance(outcome, Revision)]
        refused = [outcome for outcome in outcomes if isinstance(outcome, ConflictError)]
        assert (len(landed), len(refused)) == (1, 7), f"{ATOMIC}: {outcomes}"
        assert landed[0] == _revision(store, "a"), f"{ATOMIC}: the one that landed is stored"
