"""The conformance kit itself: a store implementing exactly the documented ``SessionStore``
protocol passes it, with the optional capabilities skipped; a store breaking a contract
fails with a message naming that contract; the kit's own rules (every assert says what it
checks, no test shadows another)."""

from __future__ import annotations

import ast
import asyncio
import builtins
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import simulacra_session.testing as kit
from residue_stores import FILE_STORES
from simulacra_session import InMemorySessionStore, JsonObject, Revision, SessionMetadata, StoredSession
from simulacra_session.protocols import AppendableSessionStore, ForkIndexedStore, SessionStore
from simulacra_session.testing import SessionStoreConformance, raises
from simulacra_session.testing.manager_conflicts import ManagerConflictConformance
from simulacra_session.testing.store_capabilities import StoreCapabilityContract
from simulacra_session.testing.store_checksums import StoreChecksumContract
from simulacra_session.testing.store_residue import RESIDUE, StoreResidueContract
from simulacra_session.testing.store_restore import StoreRestoreContract
from simulacra_session.testing.store_revisions import StoreRevisionContract

pytest_plugins = ["pytester"]


class ProtocolOnlyStore:
    """The four methods ``SessionStore`` documents and nothing else, kept in a memory store."""

    def __init__(self) -> None:
        self._inner = InMemorySessionStore()

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        return await self._inner.list(limit=limit, offset=offset)

    async def load(self, id: str) -> StoredSession | None:
        return await self._inner.load(id)

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await self._inner.save(id, messages, metadata)

    async def delete(self, id: str) -> bool:
        return await self._inner.delete(id)


class UnpagedStore(ProtocolOnlyStore):
    """Ignores ``limit`` and ``offset``."""

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        return await super().list()


class AlwaysDeletedStore(ProtocolOnlyStore):
    """Says every delete removed a session."""

    async def delete(self, id: str) -> bool:
        await super().delete(id)
        return True


class LaxLoadStore(ProtocolOnlyStore):
    """Answers ``None`` for an invalid id instead of rejecting it."""

    async def load(self, id: str) -> StoredSession | None:
        return await super().load(id) if isinstance(id, str) and id.isalnum() else None


class StaleBlindStore(ProtocolOnlyStore):
    """Takes the revision a writer expects, and writes whatever the session's is."""

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        return await self._inner.save(id, messages, metadata)


class LateStore(ProtocolOnlyStore):
    """Saves in a thread it does not wait for once cancelled: the save lands afterwards."""

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        def write() -> None:
            time.sleep(0.001)
            asyncio.run(self._inner.save(id, messages, metadata))

        await asyncio.shield(asyncio.to_thread(write))


class BlindForksStore(ProtocolOnlyStore):
    """Claims the optional ``forks`` capability but never finds a fork."""

    async def forks(self, id: str) -> builtins.list[SessionMetadata]:
        return []


class EndlessTailStore(ProtocolOnlyStore):
    """Claims ``load_tail`` but ignores ``end``, always reading the session's last messages."""

    async def load_tail(self, id: str, count: int, *, end: int | None = None) -> StoredSession | None:
        return await self._inner.load_tail(id, count)


class SloppyTruncateStore(ProtocolOnlyStore):
    """Claims ``truncate`` but removes messages whatever the revision a writer expects."""

    async def truncate(self, id: str, count: int, *, expected: Revision | None = None) -> Revision:
        return await self._inner.truncate(id, count)


def _run_kit(pytester: pytest.Pytester, store: type[ProtocolOnlyStore], *args: str) -> pytest.HookRecorder:
    """Run ``SessionStoreConformance`` against ``store`` in a pytest run of its own."""
    pytester.makepyfile(
        test_kit=f"""
import pytest
from simulacra_session.testing import SessionStoreConformance
from {store.__module__} import {store.__name__}

class TestStore(SessionStoreConformance):
    @pytest.fixture
    def store(self):
        return {store.__name__}()
"""
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester.inline_run("-p", "no:cacheprovider", *args)


def _fails_naming_the_contract(
    pytester: pytest.Pytester, store: type[ProtocolOnlyStore], test: str, contract: str
) -> None:
    """The kit's ``test`` fails on ``store``, each failure an ``AssertionError`` naming ``contract``."""
    _, _, failed = _run_kit(pytester, store, f"test_kit.py::TestStore::{test}").listoutcomes()
    assert failed
    for report in failed:
        assert f"AssertionError: {contract}" in str(report.longrepr)


def _test_name(nodeid: str) -> str:
    """``test_x`` of ``path::Class::test_x[param]``."""
    return nodeid.rpartition("::")[2].partition("[")[0]


OPTIONAL = (
    StoreCapabilityContract,
    StoreRevisionContract,
    StoreChecksumContract,
    StoreResidueContract,
    StoreRestoreContract,
    ManagerConflictConformance,
)
CAPABILITY_TESTS = {name for contract in OPTIONAL for name in vars(contract) if name.startswith("test")}
#: StoreTailContract's tests of load_tail and truncate (those of history's functions run on any store)
CAPABILITY_TESTS |= {"test_load_tail", "test_load_tail_follows_writes", "test_truncate"}
CAPABILITY_TESTS |= {"test_truncate_refuses_and_writes_nothing", "test_truncate_then_write"}


def test_the_protocol_only_store_is_a_session_store_and_nothing_more() -> None:
    store = ProtocolOnlyStore()
    assert isinstance(store, SessionStore)
    assert not isinstance(store, ForkIndexedStore)
    assert not isinstance(store, AppendableSessionStore)


def test_a_store_of_exactly_the_protocol_passes_with_the_capabilities_skipped(
    pytester: pytest.Pytester,
) -> None:
    passed, skipped, failed = _run_kit(pytester, ProtocolOnlyStore).listoutcomes()
    assert [report.nodeid for report in failed] == []
    cancelled_append = "test_a_cancelled_write_never_lands_afterwards"  # save and delete ran
    assert {_test_name(report.nodeid) for report in skipped} == CAPABILITY_TESTS | {cancelled_append}
    assert not {_test_name(report.nodeid) for report in passed} & CAPABILITY_TESTS
    assert len(passed) > 60  # the protocol's and the manager's tests all ran
    reasons = {str(report.longrepr[2]) for report in skipped}  # type: ignore[index]
    assert reasons == {
        "Skipped: optional capability: the store has no forks() (ForkIndexedStore)",
        "Skipped: optional capability: the store has no append() (AppendableSessionStore)",
        "Skipped: optional capability: the store has no load_chain() (ChainLoadingStore)",
        "Skipped: optional capability: the store's save takes no expected (RevisionedSessionStore)",
        "Skipped: not applicable: the store keeps no bytes in a file (override session_file)",
        "Skipped: not applicable: the store keeps no files in a directory (override residue_factory)",
        "Skipped: optional capability: the store has no load_tail() (TailReadingStore)",
        "Skipped: optional capability: the store has no truncate() (TruncatableStore)",
        "Skipped: optional capability: the store has no restore() (RestorableSessionStore)",
    }


@pytest.mark.parametrize(
    ("store", "test", "contract"),
    [
        (
            UnpagedStore,
            "test_list_pages",
            "SessionStore.list(limit=, offset=) returns the limit sessions after the first offset: "
            "limit=2 offset=0",
        ),
        (
            AlwaysDeletedStore,
            "test_empty_store",
            "SessionStore.delete removes the session and returns True only when it existed: "
            "delete of an absent session",
        ),
        (
            LaxLoadStore,
            "test_invalid_ids_rejected",
            "SessionStore: every method rejects an invalid id with InvalidSessionIdError: load(",
        ),
        (
            StaleBlindStore,
            "test_a_stale_save_is_refused",
            "RevisionedSessionStore: a write expecting another revision raises ConflictError and writes "
            "nothing: expected ConflictError, nothing was raised",
        ),
        (
            LateStore,
            "test_a_cancelled_write_never_lands_afterwards",
            "SessionStore: a cancelled write never started, or completed before CancelledError reached "
            "the caller: save cancelled after",
        ),
        (
            EndlessTailStore,
            "test_load_tail",
            "TailReadingStore.load_tail returns the metadata and the own messages "
            "[max(0, end - count), end): count=2 end=4",
        ),
        (
            SloppyTruncateStore,
            "test_truncate_refuses_and_writes_nothing",
            "TruncatableStore.truncate removes the last count own messages, all or nothing, updated_at "
            "advancing: a stale expected revision raises ConflictError",
        ),
        (
            BlindForksStore,
            "test_forks",
            "ForkIndexedStore.forks returns the sessions whose parent_id is the id, most recent first: "
            "attached and detached",
        ),
    ],
)
def test_a_broken_store_fails_naming_the_contract(
    pytester: pytest.Pytester, store: type[ProtocolOnlyStore], test: str, contract: str
) -> None:
    _fails_naming_the_contract(pytester, store, test, contract)


class TestFileStoreResidue(StoreResidueContract):
    """No residue after a kill, on the file store in both formats (``residue_stores``)."""

    @pytest.fixture(
        params=list(FILE_STORES.values()),
        ids=list(FILE_STORES),
    )
    def residue_factory(self, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
        return request.param, tmp_path / "sessions"


def test_a_store_leaving_files_behind_fails_naming_the_contract(tmp_path: Path) -> None:
    directory = tmp_path / "sessions"
    with pytest.raises(AssertionError) as failure:
        StoreResidueContract().test_a_killed_writer_leaves_no_residue(
            ("residue_stores:LeakyStore", directory)
        )
    leaks = sorted(path.name for path in directory.glob(".*.leak"))
    assert leaks
    assert str(failure.value).startswith(f"{RESIDUE}: seed ")
    assert f"left in {directory}: {leaks}" in str(failure.value)


def test_raises_names_the_contract_whatever_went_wrong() -> None:
    with raises(ValueError, "the rule", match="k"):
        raise ValueError("k")
    failures = {
        "expected ValueError, nothing was raised": lambda: None,
        "expected ValueError, got TypeError: k": lambda: _throw(TypeError("k")),
        "ValueError raised, but its message 'other' does not match 'k'": lambda: _throw(ValueError("other")),
    }
    for detail, body in failures.items():
        with pytest.raises(AssertionError) as info, raises(ValueError, "the rule", match="k"):
            body()
        assert str(info.value).startswith("the rule: ")
        assert detail in str(info.value)


def _throw(error: Exception) -> None:
    raise error


def _kit_modules() -> list[Path]:
    return sorted(Path(kit.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("path", _kit_modules(), ids=lambda path: path.name)
def test_every_kit_assert_names_its_contract(path: Path) -> None:
    tree = ast.parse(path.read_text())
    bare = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert) and node.msg is None]
    assert bare == [], f"{path.name}: asserts without a message at lines {bare}"
    pytest_raises = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "raises" and ast.unparse(node.value) == "pytest"
    ]
    assert pytest_raises == [], f"{path.name}: pytest.raises (not naming a contract) at lines {pytest_raises}"


def test_no_kit_test_shadows_another() -> None:
    seen: dict[str, str] = {}
    for cls in SessionStoreConformance.__mro__:
        for name in vars(cls):
            if name.startswith("test"):
                assert name not in seen, f"{name} is in both {seen[name]} and {cls.__name__}"
                seen[name] = cls.__name__
    assert len(seen) > 40
