"""Whose a session is: every adapter checks before it reads or writes one.

The openai-agents, LangChain and pydantic-ai adapters store a key under
``session_id_for_key(key)``, with no prefix of their own (sessions already stored keep their
ids), so one key given to two of them names one session. Each session an adapter writes
keeps the adapter's name in its metadata (``integration``), and each adapter checks it before
reading, appending, popping or clearing: a session of another integration is refused with
``ForeignSessionError``, nothing read or written. A session without ``integration`` is the
adapter's when it holds no message of its own (the adapter's first append marks it) or is a
fork (it has a ``parent_id``: ``SessionManager.fork`` copies no metadata, and a fork an
adapter's pop or clear detached keeps none); one holding messages of its own otherwise (a
``SessionManager``'s conversation, a session saved by hand) is refused too: its messages
are no framework's items.

An adapter object remembers the revision it last found its own (``Owner.seen``, on a store
that checks revisions): its next append is conditional on it and reads nothing first, as
the session cannot have changed hands if it did not change (``_writes.append``). Otherwise
the check reads the session just before the write, which cannot be conditional on what it
read: two integrations creating one session at the same moment are not told apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import SessionOwnerError
from ..models import Revision, SessionMetadata, StoredSession
from ..protocols import SessionStore, checks_revisions

__all__ = ["ForeignSessionError", "Owner", "check_owner"]


class ForeignSessionError(SessionOwnerError):
    """A framework adapter was given a key whose session is not its own: another integration
    wrote it (``owner``, its ``integration`` metadata), or it holds messages no integration
    wrote (``owner`` is ``None``). Nothing was read or written. Keep each framework's
    histories apart with keys of its own (``"langchain:user-42"``) or a store of its own."""

    def __init__(self, session_id: str, key: object, integration: str, owner: object) -> None:
        if owner is None:
            whose = (
                "holds messages but no 'integration' in its metadata (a SessionManager's "
                "conversation, or saved by hand)"
            )
        else:
            whose = f"belongs to the integration {owner!r}"
        super().__init__(
            session_id,
            owner,
            f"session {session_id} (key {key!r}) {whose}, not to {integration!r}: refused, "
            "nothing read or written; give each framework keys of its own, or a store of its own",
        )
        self.key = key
        self.integration = integration

    def __reduce__(self) -> tuple[type[ForeignSessionError], tuple[str, object, str, object]]:
        return type(self), (self.session_id, self.key, self.integration, self.owner)  # pickled with its parts


def check_owner(metadata: SessionMetadata, mine: Mapping[str, Any]) -> None:
    """Raise ``ForeignSessionError`` unless the session of ``metadata`` is for the adapter
    whose session metadata is ``mine`` (its ``integration`` and ``key``): see the module."""
    owner = (metadata.model_extra or {}).get("integration")
    if owner == mine["integration"]:
        return
    if owner is None and (metadata.message_count == 0 or metadata.parent_id):
        return
    raise ForeignSessionError(metadata.id, mine["key"], mine["integration"], owner)


class Owner:
    """One adapter object's claim on its session: the metadata it writes there (``metadata``:
    its ``integration`` and ``key``), checked against what it reads, and the revision it last
    found its own (``seen``; ``None`` on a store that does not check revisions)."""

    def __init__(self, store: SessionStore, integration: str, key: object) -> None:
        self.metadata: dict[str, Any] = {"integration": integration, "key": key}
        self.seen: Revision | None = None
        self._revisions = checks_revisions(store)

    def check(self, stored: StoredSession) -> None:
        """Refuse the session ``stored`` was read from unless it is the adapter's (``check_owner``)."""
        check_owner(stored.metadata, self.metadata)
        self.saw(stored.revision)

    def saw(self, revision: Revision | None) -> None:
        """``revision`` is of the adapter's session, as the adapter read or wrote it."""
        if self._revisions:
            self.seen = revision
