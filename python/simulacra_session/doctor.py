"""A store check: what a crash, a killed writer or a hand edit left wrong in a store, and the
repair of what can be repaired without losing data (``check_store``; the CLI's ``doctor``).

Kinds of problem (``Problem.kind``), the stores they concern, and what ``repair`` does:

- ``torn_tail`` (file): bytes after a journal's last record that verifies, an append cut
  short or damage (loads leave them out): cut off, a copy of the file kept first as
  ``{name}.corrupt-{time}`` when the bytes are damage (none for an append cut short).
- ``unreadable`` (file, SQL): a session file that cannot be read: a damaged one, a FIFO or a
  device is moved aside as ``{name}.corrupt-{time}``; a symlink, a directory, a file of a
  newer format version, a journal whose record nests deeper than a load reads (no save
  writes one; release 0.1.0 did), or one the process may not read is left as it is. SQL: a
  session whose metadata or a message row cannot be read (nesting deeper than a load reads,
  say) is named, with the row, and left as it is.
- ``set_aside`` (file): a ``*.corrupt-*`` file a save or a repair moved aside: never
  touched (look at it, then remove it).
- ``temp_file`` (file): a temp file or fork index temp link that a killed writer left:
  removed (never one a live writer holds). A session's empty temp file nobody holds may
  be a write that has not locked it yet: a check does not name it, a repair removes it
  (its writer, if live, starts over).
- ``fork_link`` (file): a fork index entry that is missing, stale or not the session
  file's inode: re-linked, or the stale entry removed, once the session's file, read again
  under its writers' locks, still says so. A link whose session file is gone is the last
  copy of that session: it is left, and named; so is what is no file (a directory).
- ``compactable`` (file): a journal whose superseded records and truncated messages
  outweigh the rest: rewritten without them.
- ``missing_parent`` (every store): an attached fork whose parent is gone: detached, with
  the copy of what it inherits when its store kept one, so its history stays as it loads
  (in the file store only over the fork as it was read: one written meanwhile is read
  again, one deleted meanwhile stays deleted).
- ``fork_cycle`` (every store): attached forks whose parents lead back to them (written by
  hand, or by another tool): their histories cannot be resolved, so loads raise. Named,
  never repaired: which one to detach is the owner's choice.
- ``message_count`` (SQL): message rows that disagree with the session's
  ``message_count``: the count set to the rows there are (renumbered in order); rows of
  no session are named, not removed.

Nothing is deleted: what cannot be used is moved aside and named. Checks are functions of
a store and ``repair`` (``Check``), chosen by the store's type; each is safe while the
store is in use by other processes.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .errors import CaseClashError, ConflictError, CorruptSessionError
from .history import inherits
from .messages import JsonObject
from .models import Revision, SessionMetadata
from .protocols import RestorableSessionStore, SessionStore, takes_expected

__all__ = ["Check", "Problem", "Report", "check_store", "fork_cycles", "missing_parents"]

_PAGE = 1000
_TRIES = 5  # reads of a fork to detach that another writer may overtake


@dataclass(frozen=True)
class Problem:
    """One thing found wrong: its ``kind`` (see the module), the session and file concerned
    (``None`` where none is), what is wrong in words, and whether the check repaired it."""

    kind: str
    session_id: str | None
    path: str | None
    detail: str
    repaired: bool = False

    def to_json(self) -> dict[str, Any]:
        """``{"kind", "session_id", "path", "detail", "repaired"}``."""
        return asdict(self)


@dataclass(frozen=True)
class Report:
    """What a check found. ``ok``: nothing is left to repair (every problem was repaired)."""

    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return all(problem.repaired for problem in self.problems)

    def to_json(self) -> dict[str, Any]:
        """``{"ok": bool, "problems": [Problem.to_json(), ...]}``."""
        return {"ok": self.ok, "problems": [problem.to_json() for problem in self.problems]}


#: A check of one kind of store: the problems it finds, repairing them with ``repair``.
Check = Callable[[Any, bool], Awaitable[list[Problem]]]


async def _attached_forks(store: SessionStore) -> tuple[dict[str, str], set[str]]:
    """Every attached fork's parent id, by fork id, and the ids of every session listed."""
    forks: dict[str, str] = {}
    present: set[str] = set()
    offset = 0
    while True:
        page = await store.list(limit=_PAGE, offset=offset)
        for meta in page:
            present.add(meta.id)
            if inherits(meta) and meta.parent_id is not None:
                forks[meta.id] = meta.parent_id
        if len(page) < _PAGE:
            break
        offset += len(page)
    return forks, present


async def fork_cycles(store: SessionStore, repair: bool) -> list[Problem]:
    """Attached forks whose chain of parents leads back to them: one problem per cycle, named
    by its members (never repaired: see the module)."""
    forks, _ = await _attached_forks(store)
    problems = []
    done: set[str] = set()
    for start in sorted(forks):
        chain: list[str] = []
        at: str | None = start
        while at is not None and at not in done and at not in chain:
            chain.append(at)
            at = forks.get(at)
        done.update(chain)
        if at is not None and at in chain:
            cycle = chain[chain.index(at) :]
            members = ", ".join(cycle)
            detail = f"sessions {members} form a fork cycle (each inherits from the next): none of them loads"
            problems.append(Problem("fork_cycle", min(cycle), None, detail))
    return problems


async def missing_parents(store: SessionStore, repair: bool) -> list[Problem]:
    """Attached forks whose parent is gone (an unreadable parent is not: its own check names
    it). Repaired by detaching the fork, with the copy of what it inherits when its store
    kept one, its stamps kept (``RestorableSessionStore.restore``): over the fork as it was
    read, so an append landing meanwhile (in another process) is read again, never lost."""
    forks, present = await _attached_forks(store)
    problems = []
    for fork_id, parent_id in forks.items():
        if parent_id in present or await _exists(store, parent_id):
            continue
        outcome = await _detach(store, fork_id, parent_id) if repair else "left"
        if outcome == "resolved":
            continue  # deleted, detached or its parent saved again meanwhile: nothing is wrong
        detail = f"session {fork_id} inherits from session {parent_id}, which is gone"
        if outcome == "detached":
            detail += ": detached, with the history it loads with"
        elif outcome == "busy":
            detail += f": not detached, written again at each of {_TRIES} reads (repair again later)"
        problems.append(Problem("missing_parent", fork_id, None, detail, outcome == "detached"))
    return problems


async def _exists(store: SessionStore, session_id: str) -> bool:
    """Whether ``session_id`` is stored, readable or not (``CorruptSessionError``)."""
    try:
        return await store.load(session_id) is not None
    except CorruptSessionError:
        return True
    except CaseClashError:  # its name opens another id's file: the session is gone
        return False


async def _detach(store: SessionStore, fork_id: str, parent_id: str) -> str:
    """Write the fork as the detached session it loads as: ``"detached"``; ``"resolved"``
    when it needs it no more (deleted, detached or its parent saved again since it was
    listed); ``"left"`` when it cannot be (a store without ``restore``); ``"busy"`` when
    another writer wrote the fork again after each of ``_TRIES`` reads."""
    if not isinstance(store, RestorableSessionStore):
        return "left"
    for _ in range(_TRIES):
        stored = await store.load(fork_id)
        if stored is None or not inherits(stored.metadata) or stored.metadata.parent_id != parent_id:
            return "resolved"
        if await _exists(store, parent_id):
            return "resolved"
        messages = [*(stored.parent_copy or []), *stored.messages]
        update = {"detached": True, "message_count": len(messages)}
        metadata = stored.metadata.model_copy(update=update)
        try:
            await _restore(store, fork_id, messages, metadata, stored.revision)
        except ConflictError:
            continue  # written (or deleted) since it was read: read again
        return "detached"
    return "busy"


async def _restore(
    store: RestorableSessionStore,
    session_id: str,
    messages: Sequence[JsonObject],
    metadata: SessionMetadata,
    expected: Revision,
) -> None:
    """``restore`` over the session at revision ``expected`` only (``ConflictError``), where
    the store's ``restore`` takes ``expected`` (every bundled store's: checked under its lock
    of the session); as given elsewhere."""
    restore: Callable[..., Awaitable[None]] = store.restore
    options = {"expected": expected} if takes_expected(restore) else {}
    await restore(session_id, messages, metadata, **options)


def _checks_for(store: SessionStore) -> list[Check]:
    """The checks every store gets, then those of ``store``'s kind. ``missing_parents`` comes
    first: a parent that a file check is about to set aside (unreadable) is damaged, not
    gone, and its forks must not be detached from what they inherit in the same run; the
    check after a repair names them, their parent now missing, as left."""
    from .stores.file import FileSessionStore

    checks: list[Check] = [missing_parents, fork_cycles]
    if isinstance(store, FileSessionStore):
        from .stores.file.check import check_files

        checks.append(check_files)
    sql = sys.modules.get("simulacra_session.stores.sql")  # imported when a store was made
    if sql is not None and isinstance(store, sql.SqlSessionStore):
        from .stores._sql_check import check_rows

        checks.append(check_rows)
    return checks


async def check_store(store: SessionStore, *, repair: bool = False) -> Report:
    """Check ``store`` (see the module for what is looked for) and, with ``repair``, repair
    what can be repaired without losing data, then check again: the report names what was
    repaired and what is left (a file the repair set aside among it). A store of another
    kind gets the checks every store gets."""
    checks = _checks_for(store)
    problems = [problem for check in checks for problem in await check(store, repair)]
    if repair and any(problem.repaired for problem in problems):
        # What a repair leaves (the files it set aside, say) is found by checking again, so
        # the report of a repair and a check run right after it agree on what is left.
        # One the repair left and named (why it was left, say) keeps the repair's words.
        left_by_repair = {(p.kind, p.session_id, p.path): p for p in problems if not p.repaired}
        left = [
            left_by_repair.get((problem.kind, problem.session_id, problem.path), problem)
            for check in checks
            for problem in await check(store, False)
        ]
        problems = [problem for problem in problems if problem.repaired] + left
    return Report(problems)
