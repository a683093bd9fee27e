"""openai-agents sessions kept in any simulacra-session store.

``OpenAIAgentsSession`` is an ``agents.memory.Session``: pass it to
``Runner.run(agent, input, session=...)`` and the run's items are stored verbatim, one JSON
object per item, in the store given. The store does the work: ``add_items`` is one durable
append, ``get_items(limit=n)`` reads the last ``n`` items without the rest
(``history.read_tail``) and ``pop_item`` removes one without rewriting the session
(``history.truncate``), on a journal file, a SQL database or any other bundled store.

Importing this module imports openai-agents; without it, ``ImportError`` names the extra
that installs it: ``pip install 'simulacra-session[openai-agents]'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from ._imports import require

require("agents", "openai-agents")  # before the imports below: a missing framework names its extra

from agents.items import TResponseInputItem  # noqa: E402
from agents.memory.session_settings import (  # noqa: E402
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)

from ..errors import ConflictError, SessionNotFoundError  # noqa: E402
from ..history import read_tail, resolve_history, truncate  # noqa: E402
from ..ids import session_id_for_key  # noqa: E402
from ..protocols import SessionStore  # noqa: E402
from . import _writes  # noqa: E402
from ._owner import Owner  # noqa: E402

__all__ = ["INTEGRATION", "OpenAIAgentsSession"]

#: The ``integration`` metadata key of the sessions this adapter writes.
INTEGRATION = "openai-agents"


def _items(messages: Sequence[dict[str, Any]]) -> list[TResponseInputItem]:
    """Stored messages as the items they were: stored verbatim, they come back equal."""
    return cast("list[TResponseInputItem]", list(messages))


class OpenAIAgentsSession:
    """An openai-agents ``Session`` whose items live in ``store`` under ``session_id``.

    ``session_id`` is any string (``user/42``, a UUID, a project path): the session's id in
    the store is ``ids.session_id_for_key(session_id)`` (``store_id``), and its metadata
    keeps ``{"integration": "openai-agents", "key": session_id}``; a session another
    integration wrote under that id is refused (``ForeignSessionError``). ``session_settings``
    (a ``SessionSettings`` or a dict of one) gives ``get_items`` its default ``limit``, as
    openai-agents' own sessions do. Any number of these objects, in any number of
    processes, may share one session: concurrent pops each return another item, and appends
    never drop another writer's. On an ``AdapterSessionStore`` that holds within one process
    only (whatever its number of objects, stores and event loops): its adapter has no
    conditional write, so two processes writing one session at once may lose what one of
    them wrote, or both pop the same item. On another store without ``append``, two
    processes creating the session at the same moment may lose one's batch.
    """

    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str,
        store: SessionStore,
        *,
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        self.store_id = session_id_for_key(session_id)
        self.session_id = session_id
        self.session_settings = (
            coerce_session_settings(session_settings) if session_settings is not None else SessionSettings()
        )
        self.store = store
        self._owner = Owner(store, INTEGRATION, session_id)

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The latest ``limit`` items, oldest first (``None``: ``session_settings.limit``, and
        all items when that is ``None`` too; a negative limit also gives all, as in
        ``SQLiteSession``). Reads only the items returned where the store reads tails."""
        count = resolve_session_limit(limit, self.session_settings)
        if count == 0:
            return []
        if count is None or count < 0:
            resolved = await resolve_history(self.store, self.store_id)
            if resolved is None:
                return []
            self._owner.check(resolved.stored)
            return _items(resolved.messages)
        tail = await read_tail(self.store, self.store_id, count)
        if tail is None:
            return []
        self._owner.check(tail)
        return _items(tail.messages)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Add ``items`` after the stored ones: one durable append of the whole batch (a
        store without ``append`` saves the session instead, from the revision it read). An
        item holding a value JSON cannot hold raises ``SerializationError`` naming the key
        and the session, none of the batch written."""
        if items:
            owner = self._owner
            owner.saw(await _writes.append(self.store, self.store_id, items, owner.metadata, owner.seen))

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove the most recent item and return it; ``None`` when the session is empty.

        Reads the last item, then truncates it from the revision it read, so that of two
        concurrent pops each returns a different item; costs what one item costs where the
        store reads tails and truncates."""
        while True:
            tail = await read_tail(self.store, self.store_id, 1)
            if tail is None:
                return None
            self._owner.check(tail)
            if not tail.messages:
                return None
            try:
                self._owner.saw(await truncate(self.store, self.store_id, 1, expected=tail.revision))
            except (ConflictError, SessionNotFoundError):
                continue  # the session moved on since the read: pop from where it is now
            return _items(tail.messages)[0]

    async def clear_session(self) -> None:
        """Remove every item; the session stays, empty, with its metadata. Forks made of it
        (``SessionManager.fork``) keep the history they inherit."""
        await _writes.clear(self.store, self.store_id, self._owner.metadata)
