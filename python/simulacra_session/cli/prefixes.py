"""Session ids as typed on the command line: a whole id, or a unique prefix of one (as git and
docker take them), for every command that names sessions (``show``, ``tree``, ``rename``,
``delete``, ``export``, ``copy``, ``compact``).

- An id a session has is always that session, even when it is also the start of others' ids
  (ids are any valid string: ``ab`` and ``abcd`` may both be sessions).
- Otherwise the one session whose id starts with it; several: ``CommandError`` naming the
  prefix and the ids that match (the first ``_SHOWN``, then how many more); none:
  ``SessionNotFoundError`` naming it, as for a whole id.
- A prefix needs ``MIN_PREFIX`` characters, as git's: a slip of one to three characters
  (``delete -y a``) must not name whatever session happens to start with it.

An id a session has costs one check (a command's own ``load``, or ``exists``) and nothing more.
An id no session has is then looked for among the ids: with the store's ``ids_starting`` where it
has one (the file store reads its file names, no file opened; the SQL store its ids, in one
query: a session saved meanwhile is found, where a listing a page at a time, by recency,
missed one moving to its front), else in its listing, a page at a time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from ..errors import CorruptSessionError, SessionNotFoundError
from ..ids import validate_session_id
from ..protocols import SessionStore, TailReadingStore
from .output import clean
from .urls import CommandError

__all__ = ["MIN_PREFIX", "by_prefix", "exists", "full_id", "full_ids"]

#: The shortest prefix looked up: git's minimum abbreviation.
MIN_PREFIX = 4
_SHOWN = 5  # matching ids named when a prefix is ambiguous
_PAGE = 1000  # sessions listed per list() call


async def exists(store: SessionStore, session_id: str) -> bool:
    """Whether ``store`` has a session ``session_id``, read as cheaply as it allows: its metadata
    and no message where it reads tails (every bundled store: a journal's last bytes, one SQL
    row), else a ``load``. One it cannot read is there: the command then says why, as before."""
    try:
        if isinstance(store, TailReadingStore):
            return await store.load_tail(session_id, 0) is not None
        return await store.load(session_id) is not None
    except CorruptSessionError:
        return True


async def full_id(store: SessionStore, given: str) -> str:
    """The id of the session ``given`` names in ``store``: itself when a session has it, else
    the one whose id starts with it (see the module)."""
    session_id = validate_session_id(given)
    return session_id if await exists(store, session_id) else await by_prefix(store, session_id)


async def full_ids(store: SessionStore, given: Sequence[str]) -> list[str]:
    """``full_id`` of each of ``given``, in order, the ids looked through once for all the
    prefixes; any that names no session or several fails before anything is done."""
    checked = [validate_session_id(session_id) for session_id in given]
    prefixes = [session_id for session_id in dict.fromkeys(checked) if not await exists(store, session_id)]
    if not prefixes:
        return checked
    _check_lengths(prefixes)
    found = await _ids_starting(store, prefixes)
    full = {prefix: _one(prefix, found) for prefix in prefixes}
    return [full.get(session_id, session_id) for session_id in checked]


async def by_prefix(store: SessionStore, prefix: str, known: Iterable[str] | None = None) -> str:
    """The id of the one session of ``store`` whose id starts with ``prefix``, a string no
    session has as its id; among ``known`` when given (ids the command listed already)."""
    _check_lengths([prefix])
    return _one(prefix, known if known is not None else await _ids_starting(store, [prefix]))


def _check_lengths(prefixes: Sequence[str]) -> None:
    for prefix in prefixes:
        if len(prefix) < MIN_PREFIX:
            raise CommandError(
                f"session not found: {prefix} (a prefix of an id needs at least {MIN_PREFIX} characters)"
            )


def _one(prefix: str, found: Iterable[str]) -> str:
    """The one id of ``found`` that starts with ``prefix``."""
    matching = sorted(session_id for session_id in found if session_id.startswith(prefix))
    if not matching:
        raise SessionNotFoundError(prefix)
    if len(matching) > 1:
        named = ", ".join(clean(session_id) for session_id in matching[:_SHOWN])
        more = f" and {len(matching) - _SHOWN} more" if len(matching) > _SHOWN else ""
        raise CommandError(
            f"session id prefix {prefix} is ambiguous: {len(matching)} sessions start with it: {named}{more}"
        )
    return matching[0]


@runtime_checkable
class _LooksUpPrefixes(Protocol):
    """A store finding the ids that start with a prefix itself (the file and SQL stores)."""

    async def ids_starting(self, prefix: str) -> list[str]: ...


async def _ids_starting(store: SessionStore, prefixes: Sequence[str]) -> list[str]:
    """The ids of ``store`` that start with one of ``prefixes``: its ``ids_starting`` of each
    (none skipped as unreadable), else its listing's."""
    if isinstance(store, _LooksUpPrefixes):
        return list({found for prefix in prefixes for found in await store.ids_starting(prefix)})
    starts = tuple(prefixes)
    ids: set[str] = set()
    offset = 0
    while True:
        page = await store.list(limit=_PAGE, offset=offset)
        ids.update(meta.id for meta in page if meta.id.startswith(starts))
        if len(page) < _PAGE:
            return list(ids)
        offset += len(page)
