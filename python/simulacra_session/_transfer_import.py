"""``import_sessions``: an export's sessions written into a store, as they were."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import IO

from ._export_file import named_faults, opened, records
from ._transfer_plan import Progress, _listed
from ._transfer_target import (
    OnConflict,
    SessionExistsError,
    TransferResult,
    _check_on_conflict,
    _put,
    _restorable,
)
from .errors import CorruptSessionError
from .protocols import SessionStore

__all__ = ["import_sessions"]


@contextmanager
def _readable(source: str | os.PathLike[str] | IO[bytes], rereads: bool) -> Iterator[tuple[IO[bytes], str]]:
    """``opened``, a path opened first: a pipe by its path (``<(zcat export.gz)``, a FIFO)
    cannot seek, so it is spooled to be read twice, as stdin is."""
    with ExitStack() as stack:
        if isinstance(source, (str, os.PathLike)):
            source = stack.enter_context(open(source, "rb"))
        yield stack.enter_context(opened(source, rereads))


def _each_once(ids: Iterable[str], where: str) -> list[str]:
    """``ids`` in order, checked as they come: ``CorruptSessionError`` naming ``where`` and the
    first one there twice."""
    seen: dict[str, None] = {}
    for session_id in ids:
        if session_id in seen:
            raise CorruptSessionError(f"{where}: session {session_id} is in it twice")
        seen[session_id] = None
    return list(seen)


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
    with _readable(source, rereads=on_conflict == "error") as (file, where):
        total, sessions = records(file, where)  # no export (or none there): the store untouched
        if on_conflict == "error":  # the whole export read first: a damaged line, nothing done
            ids = _each_once((stored.metadata.id for stored in sessions), where)
            existing = {sid for sid, _, _ in await _listed(store)}
            conflicts = [session_id for session_id in ids if session_id in existing]
            if conflicts:
                raise SessionExistsError(conflicts, repr(store))
            with named_faults(where):
                file.seek(0)
            total, sessions = records(file, where)
        else:
            existing = {sid for sid, _, _ in await _listed(store)}
        result, clashed, written = TransferResult(), set[str](), set[str]()
        for done, stored in enumerate(sessions, start=1):
            if stored.metadata.id in written:  # checked before writing with "error"
                raise CorruptSessionError(f"{where}: session {stored.metadata.id} is in it twice")
            written.add(stored.metadata.id)
            await _put(target, stored, existing, on_conflict, result, clashed)
            if progress is not None:
                progress(done, total)
    return result
