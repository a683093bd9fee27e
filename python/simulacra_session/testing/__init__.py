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

- ``SessionStoreContract``: the store's own contract. What the ``SessionStore`` protocol
  documents, which every store must pass: the merge rules of ``save``, strictly later
  ``updated_at``, ordering and paging of ``list`` (its metadata as ``load``'s), isolation
  from callers' objects, messages verbatim (key order, number types, every character), unknown
  keys kept, invalid ids rejected before any I/O, ids differing only in case kept apart (or
  the second refused with ``CaseClashError``), ``SerializationError`` leaving the old
  state intact, ``delete``, and cancellation with one meaning (a cancelled write never
  started, or completed before ``CancelledError`` reached the caller). Then the optional
  capabilities, each tested when the store has it and skipped with the reason when not:
  ``forks`` (``ForkIndexedStore``), ``append`` (``AppendableSessionStore``), ``load_chain``
  (``ChainLoadingStore``), ``load_tail`` (``TailReadingStore``), ``truncate``
  (``TruncatableStore``), ``restore`` writing a session as given, stamps included
  (``RestorableSessionStore``), stale writers refused with ``ConflictError``
  (``RevisionedSessionStore``), and the checksum rule (damaged bytes never load as data),
  for a store keeping each session in a file: override the ``session_file`` fixture to
  name it; no residue after a writer is killed, for a store keeping its files in a
  directory: override the ``residue_factory`` fixture to name a factory and the directory.
  ``history.read_tail`` and ``history.truncate`` run on every store, forks
  included. A store implementing exactly the four methods of ``SessionStore`` passes.
- ``SessionManagerConformance``: a ``SessionManager`` working on the store. Auto-save, slugs,
  load, attached and detached forks (deep chains, cycles), checkpoint state, delete keeping
  the forks' history, rename, child sessions, dispose and ``async with``; on a store that
  checks revisions, a stale manager's ``ConflictError`` and ``recover``.

Every failure is an ``AssertionError`` whose message starts with the contract it checks (the
method and the rule of its documentation), then what differed.

The tests drive the store with ``asyncio.run``, so they need no plugin; the store contract
runs several event loops one after the other in a test, so a store must not bind itself to
the loop it was first used on. The helpers ``msg``, ``assistant``, ``texts``, ``run`` and
``raises`` and the ``BAD_IDS`` list are public, for your own tests. Requires pytest.
"""

from __future__ import annotations

import pytest

# pytest rewrites the suites' asserts (showing both sides of a failed comparison after the
# contract's message) when they are registered before their first import
_SUITES = (
    "manager_conflicts",
    "manager_forks",
    "manager_saves",
    "store_cancellation",
    "store_capabilities",
    "store_checksums",
    "store_reads",
    "store_residue",
    "store_revisions",
    "store_saves",
    "store_tails",
)
pytest.register_assert_rewrite(*(f"{__name__}.{suite}" for suite in _SUITES))

from .helpers import BAD_IDS, assistant, msg, raises, run, texts  # noqa: E402
from .manager_conflicts import ManagerConflictConformance  # noqa: E402
from .manager_forks import ManagerForkConformance  # noqa: E402
from .manager_saves import ManagerSaveConformance  # noqa: E402
from .store_cancellation import StoreCancellationContract  # noqa: E402
from .store_capabilities import StoreCapabilityContract  # noqa: E402
from .store_checksums import StoreChecksumContract  # noqa: E402
from .store_reads import StoreReadContract  # noqa: E402
from .store_residue import StoreResidueContract  # noqa: E402
from .store_restore import StoreRestoreContract  # noqa: E402
from .store_revisions import StoreRevisionContract  # noqa: E402
from .store_saves import StoreSaveContract  # noqa: E402
from .store_tails import StoreTailContract  # noqa: E402

__all__ = [
    "BAD_IDS",
    "SessionManagerConformance",
    "SessionStoreConformance",
    "SessionStoreContract",
    "SessionStoreProtocolContract",
    "assistant",
    "msg",
    "raises",
    "run",
    "texts",
]


class SessionStoreProtocolContract(StoreSaveContract, StoreReadContract, StoreCancellationContract):
    """What the ``SessionStore`` protocol documents, as pytest tests: every store passes it.

    Subclass it in a test module and override the ``store`` fixture to return a fresh,
    empty store; every test then runs against it.
    """


class SessionStoreContract(
    SessionStoreProtocolContract,
    StoreCapabilityContract,
    StoreRevisionContract,
    StoreChecksumContract,
    StoreTailContract,
    StoreResidueContract,
    StoreRestoreContract,
):
    """The contract of a ``SessionStore``, as pytest tests: the protocol, then the optional
    capabilities it implements (``forks``, ``append``, ``load_chain``, revisions, checksums of
    the bytes it keeps in files, ``load_tail``, ``truncate``, ``restore``), the others skipped; and
    ``history.read_tail`` and ``history.truncate`` on it, forks included.

    Subclass it (or ``SessionStoreConformance``, which includes it) in a test module and
    override the ``store`` fixture to return a fresh, empty store.
    """


class SessionManagerConformance(ManagerSaveConformance, ManagerForkConformance, ManagerConflictConformance):
    """A ``SessionManager`` working on the store, as pytest tests.

    Subclass it (or ``SessionStoreConformance``, which includes it) in a test module and
    override the ``store`` fixture to return a fresh, empty store. Each test runs its
    scenario in one event loop (``run``), except those that check what the manager does
    when no loop is running.
    """


class SessionStoreConformance(SessionStoreContract, SessionManagerConformance):
    """Everything a ``SessionStore`` must pass: its own contract and a manager working on it.

    Subclass it in a test module and override the ``store`` fixture to return (or yield) a
    fresh, empty store; every test of both halves then runs against it.
    """
