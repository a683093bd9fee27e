"""The target side of an import or copy: each session written as ``on_conflict`` says, what
was done counted (``TransferResult``), and the forks of a session passed over passed over too."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import CaseClashError, SessionError
from .history import inherits, materialize_forks
from .models import StoredSession
from .protocols import RestorableSessionStore, SessionStore

__all__ = ["OnConflict", "SessionExistsError", "TransferResult"]

OnConflict = Literal["error", "skip", "replace"]
_log = logging.getLogger("simulacra_session")

_LINKS = ("parent_id", "fork_message_count", "fork_message_id")  # what a fork's history hangs on


class SessionExistsError(SessionError):
    """Sessions to import or copy exist in the target already (``on_conflict="error"``), so
    nothing was written. ``session_ids`` names them all; the message, the first few."""

    __module__ = "simulacra_session.transfer"  # where it is public: tracebacks and reprs name it

    def __init__(self, session_ids: Sequence[str], target: str) -> None:
        more = len(session_ids) - 5
        shown = ", ".join(session_ids[:5]) + (f" and {more} more" if more > 0 else "")
        super().__init__(
            f"{len(session_ids)} session(s) already in {target}: {shown} "
            "(nothing written; on_conflict 'skip' keeps them, 'replace' overwrites them)"
        )
        self.session_ids = list(session_ids)


@dataclass
class TransferResult:
    """What an import or copy did: sessions ``written`` new, ``replaced`` and ``skipped`` (not
    written); of those skipped, ``passed_over`` are not in the target (``"skip"``: the target
    refused the id, or a fork would inherit another history there), each with a warning; the
    others are there already."""

    written: int = 0
    replaced: int = 0
    skipped: int = 0
    passed_over: int = 0


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
    result.passed_over += 1
