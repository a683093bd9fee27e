"""Writing an export (``transfer``'s format): the header, then one line per session, to any
binary output, written whole (``write_all``)."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timezone
from typing import Protocol

from ._backend import dumps
from ._export_file import EXPORT_FORMAT, EXPORT_VERSION, spool
from ._transfer_plan import Progress, Unreadable, _Plan, _plan, _prepared
from .errors import CorruptSessionError
from .models import StoredSession
from .protocols import SessionStore
from .stores._codec import stored_metadata

__all__ = ["Writable", "export_records", "export_sessions", "write_all"]


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
    with spool() as spooled:
        count = await _write_records(store, plan, spooled, progress, on_unreadable)
        write_all(out, _header(count))
        for chunk in spooled.chunks():
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
