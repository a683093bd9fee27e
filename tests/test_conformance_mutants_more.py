"""Mutation testing of the conformance kit, continued (``test_conformance_mutants`` has the
protocol's core): ``load_chain``, ``restore``, cancellation, ids' case, the checksum rule and
residue (and
``test_conformance_mutants_manager``, the manager's suites).
Each store below makes one small, plausible mistake breaking a documented contract, and the
kit must fail it with a message naming that contract. The stores wrap
``InMemorySessionStore`` through ``ProtocolOnlyStore`` (``test_conformance_kit``)."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import JsonObject, Revision, SessionMetadata, StoredSession
from simulacra_session.errors import CorruptSessionError
from simulacra_session.models import metadata_from_stored
from simulacra_session.protocols import ChainLoadingStore, RestorableSessionStore
from simulacra_session.testing.store_cancellation import CANCEL
from simulacra_session.testing.store_capabilities import CHAIN
from simulacra_session.testing.store_checksums import CHECKSUM, StoreChecksumContract
from simulacra_session.testing.store_reads import CASE
from simulacra_session.testing.store_residue import RESIDUE, StoreResidueContract
from simulacra_session.testing.store_restore import RESTORE
from test_conformance_kit import ProtocolOnlyStore, _fails_naming_the_contract, _run_kit

pytest_plugins = ["pytester"]


# -- restore ---------------------------------------------------------------------------------


class RestoreStore(ProtocolOnlyStore):
    """A correct ``restore``, the memory store's: the mutants below change one step."""

    async def restore(self, id: str, messages: Sequence[JsonObject], metadata: SessionMetadata) -> None:
        await self._inner.restore(id, messages, metadata)


class SavingRestoreStore(RestoreStore):
    """Restores with ``save``: the stamps are the store's, the stored metadata merged in."""

    async def restore(self, id: str, messages: Sequence[JsonObject], metadata: SessionMetadata) -> None:
        given = metadata.to_json_dict()
        for key in ("created_at", "updated_at", "message_count"):
            given.pop(key, None)
        await self._inner.save(id, messages, given)


class UncheckedRestoreStore(RestoreStore):
    """Takes metadata naming another session or another count, and writes it."""

    async def restore(self, id: str, messages: Sequence[JsonObject], metadata: SessionMetadata) -> None:
        fixed = metadata.model_copy(update={"id": id, "message_count": len(messages)})
        await self._inner.restore(id, messages, fixed)


class AppendingRestoreStore(RestoreStore):
    """Restores onto what was stored: the messages given are appended to the old ones."""

    async def restore(self, id: str, messages: Sequence[JsonObject], metadata: SessionMetadata) -> None:
        stored = await self._inner.load(id)
        old = list(stored.messages) if stored is not None else []
        whole = metadata.model_copy(update={"message_count": len(old) + len(messages)})
        await self._inner.restore(id, [*old, *messages], whole)


# -- load_chain ------------------------------------------------------------------------------


class ChainStore(ProtocolOnlyStore):
    """A correct ``load_chain``, one ``load`` per ancestor: the mutants below change one step."""

    async def load_chain(self, id: str) -> list[StoredSession]:
        chain: list[StoredSession] = []
        stored = await self._fetch(id)
        while stored is not None:
            chain.append(stored)
            meta = stored.metadata
            if meta.parent_id is None or meta.detached or meta.parent_id in {s.metadata.id for s in chain}:
                break
            stored = await self._fetch(meta.parent_id)
        return chain

    async def _fetch(self, id: str) -> StoredSession | None:
        """One session of the chain."""
        return await self.load(id)


class RootFirstChainStore(ChainStore):
    """Returns the chain root first (a recursive query's rows in the order they were found)."""

    async def load_chain(self, id: str) -> list[StoredSession]:
        return (await super().load_chain(id))[::-1]


class LateCycleCheckChainStore(ChainStore):
    """Checks for a cycle after adding the parent, so a cycle's first session comes twice."""

    async def load_chain(self, id: str) -> list[StoredSession]:
        chain: list[StoredSession] = []
        stored = await self.load(id)
        while stored is not None:
            chain.append(stored)
            meta = stored.metadata
            if (
                meta.parent_id is None
                or meta.detached
                or stored.metadata.id in {s.metadata.id for s in chain[:-1]}
            ):
                break
            stored = await self.load(meta.parent_id)
        return chain


class DetachedBlindChainStore(ChainStore):
    """Follows ``parent_id`` through detached forks too, which inherit nothing."""

    async def load_chain(self, id: str) -> list[StoredSession]:
        chain: list[StoredSession] = []
        stored = await self.load(id)
        while stored is not None and stored.metadata.id not in {s.metadata.id for s in chain}:
            chain.append(stored)
            parent = stored.metadata.parent_id
            stored = None if parent is None else await self.load(parent)
        return chain


class CutAncestorsChainStore(ChainStore):
    """Gives each ancestor only the messages its child inherits (``[:fork_message_count]``)."""

    async def load_chain(self, id: str) -> list[StoredSession]:
        chain = await super().load_chain(id)
        for child, parent in itertools.pairwise(chain):
            count = child.metadata.fork_message_count
            if count is not None:
                parent.messages[count:] = []
        return chain


class MemoChainStore(ChainStore):
    """Memoizes each chain it loads (handing out copies), and never forgets one: a later save
    is not seen."""

    def __init__(self) -> None:
        super().__init__()
        self._chains: dict[str, list[StoredSession]] = {}

    async def load_chain(self, id: str) -> list[StoredSession]:
        if id not in self._chains:
            self._chains[id] = await super().load_chain(id)
        return copy.deepcopy(self._chains[id])


class CachedChainStore(ChainStore):
    """Keeps a write-through cache of each session for ``load_chain``, handing out the cached
    objects themselves."""

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[str, StoredSession] = {}

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await super().save(id, messages, metadata)
        stored = await self._inner.load(id)
        assert stored is not None
        self._cache[id] = stored

    async def _fetch(self, id: str) -> StoredSession | None:
        await self.load(id)  # validates the id
        return self._cache.get(id)


# -- cancellation ----------------------------------------------------------------------------


class ClearThenWriteStore(ProtocolOnlyStore):
    """Saves by deleting the session, then writing it anew (two statements, no transaction)."""

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await self._inner.delete(id)
        await asyncio.sleep(0)
        await self._inner.save(id, messages, metadata)


class PiecemealSaveStore(ProtocolOnlyStore):
    """Saves a message at a time, each write its own round trip: a cancelled save is half done."""

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await self._inner.save(id, [], metadata)
        for message in messages:
            await asyncio.sleep(0)
            await self._inner.append(id, [message])


class RetriedAppendStore(ProtocolOnlyStore):
    """Its ``append``, once cancelled, retries in the background "so that nothing is lost"."""

    async def append(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> Revision:
        try:
            await asyncio.sleep(0)
            return await self._inner.append(id, messages, metadata)
        except asyncio.CancelledError:
            asyncio.get_running_loop().call_soon(asyncio.ensure_future, self._inner.append(id, messages))
            raise


class OutboxAppendStore(ProtocolOnlyStore):
    """Its ``append``, once cancelled, keeps the messages in an outbox that its next write, to
    any session, sends first ("so that nothing is lost")."""

    def __init__(self) -> None:
        super().__init__()
        self._outbox: list[tuple[str, list[JsonObject]]] = []

    async def _send(self) -> None:
        while self._outbox:
            id, messages = self._outbox.pop(0)
            await self._inner.append(id, messages)

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await self._send()
        await super().save(id, messages, metadata)

    async def append(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> Revision:
        await self._send()
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            self._outbox.append((id, list(messages)))
            raise
        return await self._inner.append(id, messages, metadata)


class LazyDeleteStore(ProtocolOnlyStore):
    """Deletes in a background task and returns at once (a write-behind cache)."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: set[asyncio.Future[bool]] = set()

    async def delete(self, id: str) -> bool:
        found = await self._inner.load(id) is not None
        self._pending.add(asyncio.ensure_future(self._inner.delete(id)))
        return found


# -- ids' case -------------------------------------------------------------------------------


class CaseFoldingStore(ProtocolOnlyStore):
    """Finds sessions by their id's lowercase, keeping the first id of each, as a MySQL table
    with a case-insensitive collation (MariaDB's and MySQL's default) does."""

    def __init__(self) -> None:
        super().__init__()
        self._first: dict[str, str] = {}

    def _key(self, id: str) -> str:
        return self._first.setdefault(id.lower(), id) if isinstance(id, str) else id

    async def load(self, id: str) -> StoredSession | None:
        return await super().load(self._key(id))

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await super().save(self._key(id), messages, metadata)

    async def delete(self, id: str) -> bool:
        deleted = await super().delete(self._key(id))
        if deleted:
            del self._first[id.lower()]
        return deleted


# -- checksums -------------------------------------------------------------------------------


class ChecksummedFileStore(ProtocolOnlyStore):
    """Keeps each session in ``{id}.json`` under ``root`` with a CRC-32 of its messages and
    metadata, checked on ``load``: right, the base of the mutants below."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def _covered(self, document: dict[str, Any]) -> Any:
        """What the checksum covers."""
        return [document["messages"], document["metadata"]]

    def _crc(self, document: dict[str, Any]) -> int:
        return zlib.crc32(json.dumps(self._covered(document), sort_keys=True).encode())

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await super().save(id, messages, metadata)
        stored = await self._inner.load(id)
        assert stored is not None
        document = {"messages": stored.messages, "metadata": stored.metadata.to_json_dict()}
        (self.root / f"{id}.json").write_text(json.dumps({**document, "crc": self._crc(document)}))

    async def load(self, id: str) -> StoredSession | None:
        await super().load(id)  # validates the id
        path = self.root / f"{id}.json"
        if not path.exists():
            return None
        document = self._parse(path)
        self._verify(path, document)
        return StoredSession(metadata_from_stored(id, document["metadata"]), document["messages"])

    def _parse(self, path: Path) -> dict[str, Any]:
        try:
            document: dict[str, Any] = json.loads(path.read_bytes())
            document["messages"], document["crc"]
            metadata_from_stored(path.stem, document["metadata"])
        except (ValueError, KeyError, TypeError) as error:
            raise CorruptSessionError(f"{path}: not a session document: {error}", path=str(path)) from error
        return document

    def _verify(self, path: Path, document: dict[str, Any]) -> None:
        if document["crc"] != self._crc(document):
            raise CorruptSessionError(f"{path}: checksum mismatch", path=str(path))


class UncheckedFileStore(ChecksummedFileStore):
    """Writes the checksum but never compares it on ``load``."""

    def _verify(self, path: Path, document: dict[str, Any]) -> None:
        pass


class MessagesOnlyChecksumStore(ChecksummedFileStore):
    """Its checksum covers the messages, not the metadata."""

    def _covered(self, document: dict[str, Any]) -> Any:
        return document["messages"]


class RawParseErrorStore(ChecksummedFileStore):
    """Checks the checksum, but lets a document that no longer parses raise ``JSONDecodeError``."""

    def _parse(self, path: Path) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(path.read_bytes())
        return document


@pytest.mark.parametrize(
    ("store", "contract"),
    [
        (UncheckedFileStore, "loads a state never committed"),
        (MessagesOnlyChecksumStore, "loads a state never committed"),
        (RawParseErrorStore, "raises JSONDecodeError, not CorruptSessionError"),
    ],
)
def test_a_store_loading_damaged_bytes_fails_naming_the_contract(
    tmp_path: Path, store: type[ChecksummedFileStore], contract: str
) -> None:
    mutant = store(tmp_path)
    with pytest.raises(AssertionError) as failure:
        StoreChecksumContract().test_damaged_bytes_never_load_as_data(
            mutant, lambda id: tmp_path / f"{id}.json"
        )
    assert str(failure.value).startswith(f"{CHECKSUM}: byte ")
    assert contract in str(failure.value)


def test_the_checksummed_file_store_passes(tmp_path: Path) -> None:
    """The checksum mutants' base is right: what fails in them is their mutation."""
    store = ChecksummedFileStore(tmp_path)
    StoreChecksumContract().test_damaged_bytes_never_load_as_data(store, lambda id: tmp_path / f"{id}.json")


# -- residue ---------------------------------------------------------------------------------


def test_a_store_sweeping_only_old_files_fails_naming_the_contract(tmp_path: Path) -> None:
    """``residue_mutants.AgeSweepStore``: it sweeps what killed writers left, but only files an
    hour old, so that a sweep never takes a live writer's file."""
    directory = tmp_path / "sessions"
    with pytest.raises(AssertionError) as failure:
        StoreResidueContract().test_a_killed_writer_leaves_no_residue(
            ("residue_mutants:AgeSweepStore", directory)
        )
    assert str(failure.value).startswith(f"{RESIDUE}: seed ")
    assert f"left in {directory}: " in str(failure.value)
    assert ".leak" in str(failure.value)


@pytest.mark.parametrize(
    ("store", "test", "contract"),
    [
        (RootFirstChainStore, "test_load_chain_follows_what_each_fork_inherits", f"{CHAIN}: load_chain('a')"),
        (
            LateCycleCheckChainStore,
            "test_load_chain_follows_what_each_fork_inherits",
            f"{CHAIN}: load_chain('x')",
        ),
        (
            DetachedBlindChainStore,
            "test_load_chain_follows_what_each_fork_inherits",
            f"{CHAIN}: load_chain('d')",
        ),
        (
            CutAncestorsChainStore,
            "test_load_chain_follows_what_each_fork_inherits",
            f"{CHAIN}: each session as load returns it ('a')",
        ),
        (MemoChainStore, "test_load_chain_follows_what_each_fork_inherits", f"{CHAIN} after saves: "),
        (
            CachedChainStore,
            "test_load_chain_follows_what_each_fork_inherits",
            f"{CHAIN} after the caller changed what it returned: each session as load returns it",
        ),
        (SavingRestoreStore, "test_restore_writes_the_session_as_given", f"{RESTORE}: the stamps"),
        (
            UncheckedRestoreStore,
            "test_restore_refuses_metadata_not_matching",
            f"{RESTORE}; metadata with another id raises InvalidMetadataError",
        ),
        (
            AppendingRestoreStore,
            "test_restore_writes_the_session_as_given",
            f"{RESTORE}: the messages, replaced",
        ),
        (ClearThenWriteStore, "test_a_cancelled_write_never_lands_afterwards", f"{CANCEL}: save cancelled"),
        (PiecemealSaveStore, "test_a_cancelled_write_never_lands_afterwards", f"{CANCEL}: save cancelled"),
        (RetriedAppendStore, "test_a_cancelled_write_never_lands_afterwards", f"{CANCEL}: append cancelled"),
        (LazyDeleteStore, "test_a_cancelled_write_never_lands_afterwards", f"{CANCEL}: delete cancelled"),
        (OutboxAppendStore, "test_a_cancelled_write_never_lands_afterwards", f"{CANCEL}: append cancelled"),
        (
            CaseFoldingStore,
            "test_ids_differing_only_in_case_are_two_sessions",
            f"{CASE}: Alice's messages after a save of alice",
        ),
    ],
)
def test_a_mutant_store_fails_naming_the_contract(
    pytester: pytest.Pytester, store: type[ProtocolOnlyStore], test: str, contract: str
) -> None:
    _fails_naming_the_contract(pytester, store, test, contract)


def test_the_correct_chain_store_passes(pytester: pytest.Pytester) -> None:
    """The mutants' base is right: what fails in them is their mutation."""
    assert isinstance(ChainStore(), ChainLoadingStore)
    passed, _, failed = _run_kit(pytester, ChainStore, "-k", "chain or fork").listoutcomes()
    assert [report.nodeid for report in failed] == []
    assert passed


def test_the_correct_restore_store_passes(pytester: pytest.Pytester) -> None:
    """The restore mutants' base is right: what fails in them is their mutation."""
    assert isinstance(RestoreStore(), RestorableSessionStore)
    passed, _, failed = _run_kit(pytester, RestoreStore, "-k", "restore").listoutcomes()
    assert [report.nodeid for report in failed] == []
    assert len(passed) >= 2
