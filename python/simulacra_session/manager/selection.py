"""Which sessions a SessionManager takes: its own, never a framework adapter's.

A framework adapter (``simulacra_session.integrations``) keeps its name in the metadata of
each session it writes (``integration``). The manager reads such a session into no
conversation and writes none: ``load()`` without an id takes the most recent session
without ``integration`` (``latest``), and ``load(id)``, an attached ``fork`` and ``recover``
refuse a framework's with ``SessionOwnerError`` (``check_own``) before writing anything.
The check is made when the manager takes a session: one it already holds that an adapter
claims afterwards is refused at its next ``load`` or ``recover`` (on a store that checks
revisions the adapter's write makes the manager's next save a ``ConflictError``).
"""

from __future__ import annotations

from ..errors import SessionOwnerError
from ..models import SessionMetadata
from ..protocols import SessionStore

__all__ = ["check_own", "latest"]

#: ``latest`` reads one session first (the most recent is usually the manager's own), then
#: pages twice as long each time, up to this many sessions a page.
_LONGEST_PAGE = 256


def integration_of(metadata: SessionMetadata) -> object:
    """The ``integration`` metadata of a session (the adapter that writes it), or ``None``."""
    return (metadata.model_extra or {}).get("integration")


def check_own(metadata: SessionMetadata) -> None:
    """``SessionOwnerError`` naming the session and the integration when a framework adapter
    writes the session of ``metadata``."""
    owner = integration_of(metadata)
    if owner is not None:
        raise SessionOwnerError(metadata.id, owner)


async def latest(store: SessionStore) -> str | None:
    """The id of the most recently updated session in ``store`` that no framework adapter
    writes; ``None`` when there is none. Reads the store's pages in turn until it finds one."""
    offset, limit = 0, 1
    while True:
        page = await store.list(limit=limit, offset=offset)
        for metadata in page:
            if integration_of(metadata) is None:
                return metadata.id
        if len(page) < limit:
            return None
        offset += limit
        limit = min(2 * limit, _LONGEST_PAGE)
