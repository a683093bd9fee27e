"""Moving sessions between stores with everything they hold: export, import and copy.

Ids, ``created_at``, ``updated_at``, labels, every metadata key, fork links and checkpoint
state are kept (written with ``RestorableSessionStore.restore``), so the target lists the
sessions in the source's "most recent first" order. Sessions stream one at a time: memory
holds one session and the ids of all of them, whatever their number.

The export is JSON Lines, UTF-8, one JSON value a line::

    {"format": "simulacra-session-export", "version": 1, "sessions": N, "exported_at": "..."}
    {"id": "...", "metadata": {...}, "messages": [...]}      one line per session

``metadata`` is the session's metadata as stores keep it (without ``id``); ``messages`` its
own messages (an attached fork's inherited ones stay with its parent). Parents come before
their forks. A fork whose parent is gone but whose store kept a copy of what it inherits
(``StoredSession.parent_copy``) is written with that copy, detached, so no history is lost.

``on_conflict`` says what happens to a session the target holds already: ``"error"`` (the
default) writes nothing at all and raises ``SessionExistsError``; ``"skip"`` keeps the
target's, which also finishes what an interrupted run left; ``"replace"`` overwrites it.
Where the target refuses an id because another differing only in case holds its name (a
file store on a case-insensitive file system: ``CaseClashError``), ``"skip"`` passes over
it, and its attached forks (they would lose what they inherit), each with a warning; the
others raise there, overwriting nothing of the other id's, after the sessions before it.

Sessions are listed a page at a time: moving a store in use, a session saved meanwhile can
be missed (run again with ``"skip"`` to pick it up) or move in its newer state, and one deleted
meanwhile is left out (the forks it leaves move with the history its delete wrote into them).

A copy's store failure is a ``CopyStoreError`` saying which store failed: the source or the
target. Output is written whole: a pipe whose reader left mid-write raises
``BrokenPipeError``, never cuts an export short unseen (``write_all``).
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Literal, Protocol

from ._backend import dumps
from ._export_file import EXPORT_FORMAT, EXPORT_VERSION, opened, records
from .errors import CaseClashError, CorruptSessionError, SessionError, SessionNotFoundError, StoreError
from .history import inherits, materialize_forks
from .ids import validate_session_id
from .models import StoredSession
from .protocols import RestorableSessionStore, SessionStore
from .stores._codec import stored_metadata

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "CopyStoreError",
    "OnConflict",
    "Progress",
    "SessionExistsError",
    "TransferResult",
    "Unreadable",
    "Writable",
    "copy_sessions",
    "export_records",
    "export_sessions",
    "import_sessions",
    "write_all",
]

OnConflict = Literal["error", "skip", "replace"]
_log = logging.getLogger("simulacra_session")
#: Called after each session with how many are done and how many there are (``None``: unknown).
Progress = Callable[[int, int | None], None]
#: Told of each session an export leaves out because it cannot be read: its id and the error.
Unreadable = Callable[[str, CorruptSessionError], None]
_PAGE = 1000  # sessions listed per list() call
_CHUNK = 1 << 20  # bytes copied at a time from a spooled export
_LINKS = ("parent_id", "fork_message_count", "fork_message_id")  # what a fork's history hangs on


class Writable(Protocol):
    """Where an export goes: a binary file, or anything with its ``write``."""

    def write(self, data: bytes, /) -> int | None: ...


def write_all(out: Writable, data: bytes) -> None:
    """Write all of ``data`` to ``out``. A pipe whose reader leaves mid-write takes part of it
    without an error (``BufferedWriter.write`` returns the short count); the rest is written
    again, which raises ``BrokenPipeError`` (or the disk's error), so nothing is lost unseen."""
    while data:
        written = out.write(data)
        if not written:  # a non-blocking stream that would block: not one this module writes to
            raise BlockingIOError(errno.EAGAIN, "the output took none of the bytes written to it")
        data = data[written:]


class SessionExistsError(SessionError):
    """Sessions to import or copy exist in the target already (``on_conflict="error"``), so
    nothing was written. ``session_ids`` names them all; the message, the first few."""

    def __init__(self, session_ids: Sequence[str], target: str) -> None:
        more = len(session_ids) - 5
        shown = ", ".join(session_ids[:5]) + (f" and {more} more" if more > 0 else "")
        super().__init__(
            f"{len(session_ids)} session(s) already in {target}: {shown} "
            "(nothing written; on_conflict 'skip' keeps them, 'replace' overwrites them)"
        )
        self.session_ids = list(session_ids)


class CopyStoreError(StoreError):
    """A store failed during a copy; ``side`` says which: ``"source"`` or ``"target"``, and
    ``reason`` what its ``StoreError`` said."""

    def __init__(self, side: Literal["source", "target"], store: SessionStore, error: StoreError) -> None:
        super().__init__(f"copy {side} {store!r}: {error}")
        self.side = side
        self.reason = str(error)


@contextmanager
def _failing_as(side: Literal["source", "target"], store: SessionStore) -> Iterator[None]:
    """Meanwhile, a ``StoreError`` of ``store`` is raised as a ``CopyStoreError`` naming ``side``."""
    try:
        yield
    except CopyStoreError:
        raise
    except StoreError as error:
        raise CopyStoreError(side, store, error) from error


@dataclass
class TransferResult:
    """What an import or copy did: sessions ``written`` new, ``replaced`` and ``skipped``."""

    written: int = 0
    replaced: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class _Plan:
    """The sessions to move, parents before their forks, every id the source lists (a session
    deleted meanwhile leaves it), and the ids asked for by name (``None``: the whole store)."""

    order: list[str]
    present: set[str]
    named: frozenset[str] | None
    parents: frozenset[str]  # those attached forks inherit from


async def _listed(store: SessionStore) -> list[tuple[str, str | None, bool]]:
    """``(id, parent_id, attached)`` of every session, most recent first, a page at a time."""
    found: list[tuple[str, str | None, bool]] = []
    seen: set[str] = set()
    offset = 0
    while True:
        page = await store.list(limit=_PAGE, offset=offset)
        for meta in page:
            if meta.id not in seen:  # a save meanwhile moves a session to the first page
                seen.add(meta.id)
                found.append((meta.id, meta.parent_id, inherits(meta)))
        if len(page) < _PAGE:
            return found
        offset += len(page)


def _parents_first(listed: list[tuple[str, str | None, bool]], ids: Sequence[str] | None) -> list[str]:
    """The ids to move, each after its parent when that moves too.

    ``ids`` (all when ``None``) are joined by the ancestors they inherit from, so a fork
    keeps its history in the target. Ids the source does not list are kept: loading them
    tells whether they are missing or unreadable.
    """
    parent_of = {sid: parent for sid, parent, _ in listed}
    attached = {sid for sid, _, inherit in listed if inherit}
    if ids is None:
        chosen = [sid for sid, _, _ in listed]
    else:
        chosen = []
        for sid in ids:
            current: str | None = validate_session_id(sid)
            while current is not None and current not in chosen:
                chosen.append(current)
                current = parent_of.get(current) if current in attached else None
    members = set(chosen)
    children: dict[str, list[str]] = {}
    roots = []
    for sid in chosen:
        parent = parent_of.get(sid)
        if parent is not None and parent in members and parent != sid:
            children.setdefault(parent, []).append(sid)
        else:
            roots.append(sid)
    order: list[str] = []
    done: set[str] = set()
    stack = roots[::-1]
    while stack:
        sid = stack.pop()
        if sid not in done:
            done.add(sid)
            order.append(sid)
            stack.extend(children.get(sid, [])[::-1])
    order.extend(sid for sid in chosen if sid not in done)  # a cycle (corrupt): written as it is
    return order


async def _plan(store: SessionStore, ids: Sequence[str] | None) -> _Plan:
    listed = await _listed(store)
    named = None if ids is None else frozenset(ids)
    parents = frozenset(parent for _, parent, attached in listed if attached and parent is not None)
    return _Plan(_parents_first(listed, ids), {sid for sid, _, _ in listed}, named, parents)


async def _prepared(
    store: SessionStore, session_id: str, plan: _Plan, *, gone: bool = False
) -> StoredSession | None:
    """The session as it moves: a fork whose parent is gone and whose store kept a copy of what
    it inherits carries that copy, detached (as deleting a parent through a manager does).

    ``gone``: a session listed, deleted since (the store in use) and not asked for by name is
    ``None``, left out as if deleted before (its forks hold what they inherited)."""
    stored = await store.load(session_id)
    if stored is None:
        if not gone or session_id not in plan.present or session_id in (plan.named or ()):
            raise SessionNotFoundError(session_id)
        plan.present.discard(session_id)
        return None
    metadata = stored.metadata
    if stored.parent_copy is None or metadata.parent_id in plan.present:
        return StoredSession(metadata, stored.messages)
    messages = [*stored.parent_copy, *stored.messages]
    return StoredSession(
        metadata.model_copy(update={"detached": True, "message_count": len(messages)}), messages
    )


def _header(total: int) -> bytes:
    stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    header = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "sessions": total, "exported_at": stamp}
    return dumps(header) + b"\n"


def _record(stored: StoredSession) -> bytes:
    metadata = stored.metadata
    return (
        dumps({"id": metadata.id, "metadata": stored_metadata(metadata), "messages": stored.messages}) + b"\n"
    )


async def export_records(store: SessionStore, ids: Sequence[str] | None = None) -> AsyncIterator[bytes]:
    """The export of ``ids`` (every session when ``None``) and the ancestors they inherit from,
    line by line: the header, then one line per session, each loaded when it is asked for.

    ``SessionNotFoundError`` names an id that is not there, ``CorruptSessionError`` a session
    that cannot be read.
    """
    plan = await _plan(store, ids)
    yield _header(len(plan.order))
    for session_id in plan.order:
        stored = await _prepared(store, session_id, plan)
        assert stored is not None  # not ``gone``: a session deleted meanwhile raised
        yield _record(stored)


async def export_sessions(
    store: SessionStore,
    out: Writable,
    ids: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
    on_unreadable: Unreadable | None = None,
) -> int:
    """Write the export of ``ids`` (every session when ``None``; see ``export_records``) to the
    binary file ``out``, one session at a time; returns how many sessions it holds.

    With ``on_unreadable``, a session that cannot be read (``CorruptSessionError``) is passed to
    it and left out, and the rest exported: the sessions go to a temporary file first, for the
    header to count those written (the output then starts once every session is read); a
    session another process deletes meanwhile is left out too, unless asked for by name.
    Without it, such a session raises ``SessionNotFoundError`` (the header counted it)."""
    plan = await _plan(store, ids)
    if on_unreadable is None:
        write_all(out, _header(len(plan.order)))
        return await _write_records(store, plan, out, progress, None)
    with tempfile.TemporaryFile() as spool:
        count = await _write_records(store, plan, spool, progress, on_unreadable)
        write_all(out, _header(count))
        spool.seek(0)
        while chunk := spool.read(_CHUNK):
            write_all(out, chunk)
    return count


async def _write_records(
    store: SessionStore,
    plan: _Plan,
    out: Writable,
    progress: Progress | None,
    on_unreadable: Unreadable | None,
) -> int:
    """Write the sessions ``plan`` orders to ``out``: how many were written (see ``export_sessions``)."""
    total = len(plan.order)
    count = 0
    for done, session_id in enumerate(plan.order, start=1):
        try:
            stored = await _prepared(store, session_id, plan, gone=on_unreadable is not None)
        except CorruptSessionError as error:
            if on_unreadable is None:
                raise
            on_unreadable(session_id, error)
        else:
            if stored is not None:
                write_all(out, _record(stored))
                count += 1
        if progress is not None:
            progress(done, total)
    return count


def _restorable(store: SessionStore) -> RestorableSessionStore:
    if not isinstance(store, RestorableSessionStore):
        raise TypeError(
            f"{type(store).__name__} cannot write sessions with their timestamps: "
            "it is no RestorableSessionStore (it has no restore method)"
        )
    return store


def _check_on_conflict(on_conflict: str) -> None:
    if on_conflict not in ("error", "skip", "replace"):
        raise ValueError(f"on_conflict must be 'error', 'skip' or 'replace', got {on_conflict!r}")


async def _put(
    target: RestorableSessionStore,
    stored: StoredSession,
    existing: set[str],
    on_conflict: OnConflict,
    result: TransferResult,
    clashed: set[str],
) -> None:
    """Write ``stored`` into ``target``. ``clashed``: the ids passed over (``"skip"``) because
    the target refused them (``CaseClashError``), or kept as the target holds them where that
    differs; their attached forks are passed over too, since written they would load without
    what they inherit, or with another conversation's history for theirs. A session replaced
    by another history first has it written into the target's own forks of it, detached."""
    session_id, parent_id = stored.metadata.id, stored.metadata.parent_id
    if session_id in existing and on_conflict == "skip":
        result.skipped += 1
        if await _differs(target, stored, clashed):
            clashed.add(session_id)
        return
    if parent_id in clashed and inherits(stored.metadata):
        _log.warning("skipping session %s: it inherits from session %s, skipped", session_id, parent_id)
        _passed_over(session_id, clashed, result)
        return
    if session_id in existing and await _differs(target, stored, clashed):  # "replace"
        await materialize_forks(target, session_id)  # the target's forks keep their history
    try:
        await target.restore(session_id, stored.messages, stored.metadata)
    except CaseClashError as clash:  # another id differing only in case holds its name
        if on_conflict != "skip":
            raise
        _log.warning("skipping session %s: %s", session_id, clash)
        _passed_over(session_id, clashed, result)
        return
    if session_id in existing:
        result.replaced += 1
    else:
        result.written += 1
        existing.add(session_id)


async def _differs(target: SessionStore, stored: StoredSession, clashed: set[str]) -> bool:
    """Whether the target's session of ``stored``'s id is another history than ``stored``'s
    for its forks to inherit: other messages, or another parent (or one passed over)."""
    held, mine = await target.load(stored.metadata.id), stored.metadata
    if held is None or held.messages != stored.messages or (inherits(mine) and mine.parent_id in clashed):
        return True
    kept = held.metadata
    return inherits(mine) != inherits(kept) or any(getattr(mine, k) != getattr(kept, k) for k in _LINKS)


def _passed_over(session_id: str, clashed: set[str], result: TransferResult) -> None:
    clashed.add(session_id)
    result.skipped += 1


@contextmanager
def _readable(source: str | os.PathLike[str] | IO[bytes], rereads: bool) -> Iterator[tuple[IO[bytes], str]]:
    """``opened``, a path opened first: a pipe by its path (``<(zcat export.gz)``, a FIFO)
    cannot seek, so it is spooled to be read twice, as stdin is."""
    with ExitStack() as stack:
        if isinstance(source, (str, os.PathLike)):
            source = stack.enter_context(open(source, "rb"))
        yield stack.enter_context(opened(source, rereads))


async def import_sessions(
    store: SessionStore,
    source: str | os.PathLike[str] | IO[bytes],
    *,
    on_conflict: OnConflict = "error",
    progress: Progress | None = None,
) -> TransferResult:
    """Write the sessions of an export (a path or a binary file) into ``store``, as they were.

    With ``on_conflict="error"`` the whole export is read and checked first, and nothing is
    written when a line is damaged or a session exists already (``SessionExistsError``).
    Otherwise sessions are written as they are read; a damaged line (or a session there twice)
    stops the import there (``CorruptSessionError`` naming the file and line), and a rerun
    with ``"skip"`` finishes it. ``TypeError`` when ``store`` is no ``RestorableSessionStore``.
    """
    target = _restorable(store)
    _check_on_conflict(on_conflict)
    existing = {sid for sid, _, _ in await _listed(store)}
    with _readable(source, rereads=on_conflict == "error") as (file, where):
        if on_conflict == "error":
            seen: set[str] = set()
            conflicts = []
            for stored in records(file, where)[1]:
                session_id = stored.metadata.id
                if session_id in seen:
                    raise CorruptSessionError(f"{where}: session {session_id} is in it twice")
                seen.add(session_id)
                if session_id in existing:
                    conflicts.append(session_id)
            if conflicts:
                raise SessionExistsError(conflicts, repr(store))
            file.seek(0)
        total, sessions = records(file, where)
        result, clashed, written = TransferResult(), set[str](), set[str]()
        for done, stored in enumerate(sessions, start=1):
            if stored.metadata.id in written:  # checked before writing with "error"
                raise CorruptSessionError(f"{where}: session {stored.metadata.id} is in it twice")
            written.add(stored.metadata.id)
            await _put(target, stored, existing, on_conflict, result, clashed)
            if progress is not None:
                progress(done, total)
    return result


async def _copied(
    source: SessionStore, session_id: str, plan: _Plan, on_unreadable: Unreadable | None
) -> StoredSession | None:
    """The session of ``source`` to copy; ``None`` when left out: unreadable (``on_unreadable``
    told) or deleted meanwhile."""
    try:
        with _failing_as("source", source):
            return await _prepared(source, session_id, plan, gone=True)
    except CorruptSessionError as error:
        if on_unreadable is None:
            raise
        on_unreadable(session_id, error)
        return None


async def copy_sessions(
    source: SessionStore,
    target: SessionStore,
    ids: Sequence[str] | None = None,
    *,
    on_conflict: OnConflict = "error",
    progress: Progress | None = None,
    on_unreadable: Unreadable | None = None,
) -> TransferResult:
    """Copy ``ids`` (every session when ``None``) and the ancestors they inherit from from
    ``source`` to ``target``, as they are, one session at a time. ``on_conflict`` as for
    ``import_sessions``: with ``"error"`` nothing is written when one exists in ``target``.
    With ``on_unreadable``, a session of ``source`` that cannot be read is passed to it and
    left out, and the rest copied (as ``export_sessions`` does); without it, it raises. A
    session another process deletes meanwhile is left out, unless asked for by name.
    A store's failure is a ``CopyStoreError`` naming the store and its side."""
    restorable = _restorable(target)
    _check_on_conflict(on_conflict)
    with _failing_as("source", source):
        plan = await _plan(source, ids)
    with _failing_as("target", target):
        existing = {sid for sid, _, _ in await _listed(target)}
    if on_conflict == "error":
        conflicts = [sid for sid in plan.order if sid in existing]
        if conflicts:
            raise SessionExistsError(conflicts, repr(target))
    result, clashed = TransferResult(), set[str]()
    total = len(plan.order)
    for done, session_id in enumerate(plan.order, start=1):
        if session_id in existing and on_conflict == "skip" and session_id not in plan.parents:
            result.skipped += 1  # no fork inherits from it: whatever the target holds
        elif (stored := await _copied(source, session_id, plan, on_unreadable)) is not None:
            with _failing_as("target", target):
                await _put(restorable, stored, existing, on_conflict, result, clashed)
        if progress is not None:
            progress(done, total)
    return result
