"""``copy_sessions``: sessions moved from one store to another, a store's failure naming its
side (``CopyStoreError``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

from ._transfer_plan import Progress, Unreadable, _listed, _Plan, _plan, _prepared
from ._transfer_target import (
    OnConflict,
    SessionExistsError,
    TransferResult,
    _check_on_conflict,
    _put,
    _restorable,
)
from .errors import CorruptSessionError, StoreError
from .models import StoredSession
from .protocols import SessionStore

__all__ = ["CopyStoreError", "copy_sessions"]


class CopyStoreError(StoreError):
    """A store failed during a copy; ``side`` says which: ``"source"`` or ``"target"``, and
    ``reason`` what its ``StoreError`` said."""

    __module__ = "simulacra_session.transfer"  # where it is public: tracebacks and reprs name it

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
