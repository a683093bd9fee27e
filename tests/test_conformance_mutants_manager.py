"""Mutation testing of the conformance kit's manager suites (``manager_saves``,
``manager_forks``, ``manager_conflicts``): each store below makes one small, plausible
mistake that a ``SessionManager`` on it runs into, and the kit must fail it with a message
naming the contract broken. The stores wrap ``InMemorySessionStore`` through
``ProtocolOnlyStore`` (``test_conformance_kit``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from simulacra_session import JsonObject, Revision
from simulacra_session.errors import ConflictError
from simulacra_session.testing.manager_conflicts import CONFLICT
from simulacra_session.testing.manager_forks import ATTACHED, RESOLVE
from simulacra_session.testing.manager_saves import AUTO, START
from simulacra_session.testing.store_revisions import RETURNS, STALE
from test_conformance_kit import ProtocolOnlyStore, _fails_naming_the_contract
from test_conformance_mutants import BlindAppendStore, RevisionedStore

pytest_plugins = ["pytester"]


# -- the manager's sessions -----------------------------------------------------------------


class ForkPointDroppingStore(ProtocolOnlyStore):
    """Keeps ``parent_id`` but drops ``fork_message_count`` (taken for the manager's own bookkeeping)."""

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        kept = {key: value for key, value in (metadata or {}).items() if key != "fork_message_count"}
        await super().save(id, messages, kept)


class SkipEmptySaveStore(ProtocolOnlyStore):
    """Skips a save of no messages to a session it does not hold ("nothing to write")."""

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        if messages or await self._inner.load(id) is not None:
            await super().save(id, messages, metadata)


# -- revisions, as the manager sees them -----------------------------------------------------


class AbsentIsFreshStore(ProtocolOnlyStore):
    """Checks ``expected`` only when the session exists: a stale writer recreates a deleted one."""

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        stored = await self._inner.load(id)
        if stored is not None and expected is not None and stored.revision != expected:
            raise ConflictError(id, expected, stored.revision)
        return await self._inner.save(id, messages, metadata)


class OwnConflictErrorStore(ProtocolOnlyStore):
    """Refuses a stale writer with an error of its own (``RuntimeError``), not ``ConflictError``."""

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        try:
            return await self._inner.save(id, messages, metadata, expected=expected)
        except ConflictError as error:
            raise RuntimeError(f"stale write to {id}") from error


class PriorRevisionAppendStore(RevisionedStore):
    """Its ``append`` checks ``expected`` but returns the revision it found, not the one it wrote."""

    async def append(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        stored = await self._inner.load(id)
        await self._inner.append(id, messages, metadata, expected=expected)
        return Revision(0, "") if stored is None else stored.revision


@pytest.mark.parametrize(
    ("store", "test", "contract"),
    [
        (
            AbsentIsFreshStore,
            "test_a_write_expecting_a_session_deleted_since_is_refused",
            f"{STALE}: expected ConflictError, nothing was raised",
        ),
        (AbsentIsFreshStore, "test_recover_saves_a_session_deleted_meanwhile_anew", f"{CONFLICT}"),
        (BlindAppendStore, "test_a_stale_auto_save_is_reported_and_recovered", f"{CONFLICT}"),
        (
            OwnConflictErrorStore,
            "test_a_stale_save_is_refused",
            f"{STALE}: expected ConflictError, got RuntimeError",
        ),
        (OwnConflictErrorStore, "test_a_stale_auto_save_is_reported_and_recovered", f"{CONFLICT}: ["),
        (
            PriorRevisionAppendStore,
            "test_writes_return_the_revision_load_gives",
            f"{RETURNS}: after an append",
        ),
        (PriorRevisionAppendStore, "test_auto_save_after_each_message", f"{AUTO}: the messages after flush"),
        (ForkPointDroppingStore, "test_fork_resolves_to_parent_history_at_fork_time_without_ids", RESOLVE),
        (
            ForkPointDroppingStore,
            "test_attached_fork_stores_only_its_own_messages",
            f"{ATTACHED}: fork_message_count",
        ),
        (SkipEmptySaveStore, "test_start_new_without_loop_persists_at_once", f"{START}: not saved at once"),
    ],
)
def test_a_mutant_store_fails_naming_the_contract(
    pytester: pytest.Pytester, store: type[ProtocolOnlyStore], test: str, contract: str
) -> None:
    _fails_naming_the_contract(pytester, store, test, contract)
