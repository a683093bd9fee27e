"""The interfaces a store and a conversation implement to work with a SessionManager."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .messages import JsonObject, Message
from .models import CheckpointState, Revision, SessionMetadata, StoredSession

__all__ = [
    "AppendOnlyConversation",
    "AppendableSessionStore",
    "ChainLoadingStore",
    "Conversation",
    "ForkIndexedStore",
    "RestorableSessionStore",
    "RevisionedSessionStore",
    "SessionStore",
    "TailReadingStore",
    "TruncatableStore",
    "checks_revisions",
]


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions live. Every method rejects an invalid id with ``InvalidSessionIdError``.

    A message is any JSON object (``JsonObject``: the engine's ``Message``, a framework's own
    items, a plain ``dict``), stored verbatim; it comes back as a fresh ``dict`` that equals it.

    A cancelled write (``save``, ``append``, ``delete``, ``restore``) either never started or
    completed before ``CancelledError`` reached the caller: it never lands afterwards.
    """

    async def list(self, *, limit: int | None = None, offset: int = 0) -> list[SessionMetadata]:
        """Metadata of the sessions, most recently updated first, one page of them.

        The page is the ``limit`` sessions after the first ``offset`` (all after them when
        ``limit`` is ``None``), in an order that breaks ties the same way each time (the
        bundled stores: by id), so that pages read in turn neither repeat nor skip a session
        nobody saved meanwhile. A store pages where it is cheap (a SQL ``LIMIT``/``OFFSET``);
        a negative ``limit`` or ``offset`` raises ``ValueError`` naming both.
        """
        ...

    async def load(self, id: str) -> StoredSession | None:
        """The session's metadata and its own messages, or ``None`` when absent."""
        ...

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> Revision | None:
        """Replace the session's messages and merge its metadata (see ``merge_metadata``).

        Gives the session an ``updated_at`` strictly later than its previous save. A value
        that cannot be serialized raises ``SerializationError`` and leaves the old state intact.
        Returns the session's new ``Revision`` (a ``RevisionedSessionStore``), or ``None``.
        """
        ...

    async def delete(self, id: str) -> bool:
        """Remove the session; ``True`` when it existed."""
        ...


@runtime_checkable
class ForkIndexedStore(SessionStore, Protocol):
    """A store that finds a session's forks without listing every session."""

    async def forks(self, id: str) -> list[SessionMetadata]:
        """Metadata of the sessions whose ``parent_id`` is ``id``, most recent first."""
        ...


@runtime_checkable
class AppendableSessionStore(SessionStore, Protocol):
    """A store that adds messages to a session without rewriting the ones it holds.

    A SessionManager appends when only new messages followed its last save, so an
    auto-save costs what the new messages cost, whatever the conversation's length.
    """

    async def append(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> Revision | None:
        """Add ``messages`` after the stored ones and merge ``metadata`` as ``save`` does.

        ``message_count`` becomes the stored count plus ``len(messages)``; a session that
        does not exist yet is created. All or nothing: a crash never leaves part of it.
        Returns the session's new ``Revision`` (a ``RevisionedSessionStore``), or ``None``.
        """
        ...


@runtime_checkable
class RevisionedSessionStore(SessionStore, Protocol):
    """A store that refuses a write made from a stale view of a session.

    Its ``save``, and its ``append`` when it has one, take ``expected``: the ``Revision`` the
    writer last saw (``StoredSession.revision`` of its load, or what its last write
    returned). When the session is at another revision, or gone, the write raises
    ``ConflictError`` naming both and writes nothing, so a writer never overwrites or drops
    messages it has not seen; checked and written atomically, under the store's lock of the
    session. ``expected=None`` writes unconditionally, as a plain ``SessionStore`` does.
    Each write returns the revision it committed. Every bundled store is one: a
    ``SessionManager`` passes ``expected`` to a store whose methods take it (see
    ``checks_revisions``).
    """

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        """``SessionStore.save``, refused with ``ConflictError`` unless the session is at ``expected``."""
        ...


def checks_revisions(store: SessionStore) -> bool:
    """Whether ``store`` is a ``RevisionedSessionStore``: its ``save``, and its ``append`` when
    it has one, take ``expected``. Read from their signatures (a runtime protocol check sees
    method names only): a subclass overriding ``save`` without ``expected`` is not one."""
    save, append = (getattr(store, name, None) for name in ("save", "append"))
    return save is not None and takes_expected(save) and (append is None or takes_expected(append))


def takes_expected(method: object) -> bool:
    """Whether ``method`` takes ``expected`` (read from its signature; ``False`` without one)."""
    try:
        return callable(method) and "expected" in inspect.signature(method).parameters
    except (TypeError, ValueError):  # no signature to read
        return False


@runtime_checkable
class TailReadingStore(SessionStore, Protocol):
    """A store that reads the last messages of a session without reading all of them.

    ``simulacra_session.history.read_tail`` uses it (and falls back to ``load`` for other
    stores); its cost depends on ``count``, not on the session's length.
    """

    async def load_tail(self, id: str, count: int, *, end: int | None = None) -> StoredSession | None:
        """The session's metadata and its own messages ``[max(0, end - count), end)``, oldest first.

        ``end`` defaults to ``message_count`` (the last ``count`` messages) and is clamped to
        it; ``end`` lets a fork's tail reach into the history it inherits (the parent's
        messages before the fork point). Only the session's own messages: what an attached
        fork inherits is not read (``read_tail`` resolves that). ``None`` when absent; a
        negative ``count`` or ``end`` raises ``ValueError`` naming it.
        """
        ...


@runtime_checkable
class TruncatableStore(SessionStore, Protocol):
    """A store that removes the last messages of a session at a cost independent of its length.

    ``simulacra_session.history.truncate`` uses it (and falls back to ``save`` for other
    stores), after keeping the history of the forks that inherit what is removed.
    """

    async def truncate(self, id: str, count: int, *, expected: Revision | None = None) -> Revision:
        """Remove the session's last ``count`` own messages, durably; all or nothing.

        ``updated_at`` advances as on ``save``; metadata is otherwise kept. ``count`` must be
        between 0 and ``message_count`` (``ValueError`` naming both otherwise); an absent
        session raises ``SessionNotFoundError``. ``expected`` is checked as on a
        ``RevisionedSessionStore``'s ``save`` (``ConflictError``, nothing written). Forks that
        inherit the removed messages are not touched here: ``history.truncate`` keeps them.
        Returns the session's new ``Revision``.
        """
        ...


@runtime_checkable
class ChainLoadingStore(SessionStore, Protocol):
    """A store that loads a fork and the ancestors it inherits from in one round trip.

    Resolving an attached fork otherwise loads one ancestor at a time, a round trip each:
    a database store answers a chain hundreds deep at once instead.
    """

    async def load_chain(self, id: str) -> list[StoredSession]:
        """``id``'s session, then as many of the ancestors it inherits from as one fetch
        reaches, nearest first: each next one the ``parent_id`` of an attached fork before
        it. Ends after a session that inherits nothing, or before a parent that is missing
        or already listed (a cycle: the caller reports both). ``[]`` when ``id`` is absent.
        """
        ...


@runtime_checkable
class RestorableSessionStore(SessionStore, Protocol):
    """A store that writes a session exactly as given, its timestamps included.

    ``save`` stamps every write (``updated_at`` later than the last, ``created_at`` kept) and
    refuses the store-owned keys. Moving sessions between stores (``transfer``: export,
    import, copy) needs them kept, so that "most recent first" in the target is the source's
    order; ``restore`` writes them as they are. Every bundled store implements it.
    """

    async def restore(self, id: str, messages: Sequence[JsonObject], metadata: SessionMetadata) -> None:
        """Replace session ``id`` (created when absent) with ``messages`` and ``metadata``, as given.

        ``metadata.id`` must be ``id`` and its ``message_count`` ``len(messages)``; every key,
        ``created_at`` and ``updated_at`` included, is stored as it is (a store may round the
        stamps to its precision: the file store's ``.json`` documents keep milliseconds).
        All or nothing, as ``save``; a fork is indexed as ``save`` indexes it. Every bundled
        store's also takes ``expected`` (keyword), as its ``save`` does: then it writes only
        over the session at that revision (``ConflictError``, nothing written, otherwise);
        ``doctor --repair`` passes it where a store's ``restore`` takes it.
        """
        ...


@runtime_checkable
class Conversation(Protocol):
    """The part of a conversation engine a SessionManager needs.

    Events the manager listens to: ``message_complete`` (messages were added to the
    history; its argument is the message added, the last one when several were), then
    ``create_child`` (first argument: the child conversation) and ``dispose``. On
    ``message_complete`` an auto-saving manager reads the history (``messages``, or the
    history view of an ``AppendOnlyConversation``) and saves what its last save lacks.
    """

    @property
    def messages(self) -> Sequence[Message]:
        """The conversation's history, oldest first. The manager only reads it, and treats
        the messages in it as immutable once saved."""
        ...

    @property
    def is_checkpoint(self) -> bool:
        """Whether this conversation writes a checkpoint summary (an internal session)."""
        ...

    @property
    def checkpoint_state(self) -> CheckpointState | None:
        """The latest checkpoint, if any."""
        ...

    @checkpoint_state.setter
    def checkpoint_state(self, value: CheckpointState | None) -> None: ...

    def load(self, messages: Sequence[Message]) -> None:
        """Replace the history with ``messages`` without emitting ``message_complete``."""
        ...

    def clear(self) -> None:
        """Drop the history."""
        ...

    def on(self, event: str, listener: Any) -> Any:
        """Register ``listener`` for ``event``."""
        ...

    def off(self, event: str, listener: Any) -> Any:
        """Unregister ``listener`` for ``event``."""
        ...

    def once(self, event: str, listener: Any) -> Any:
        """Register ``listener`` for the next ``event`` only."""
        ...


@runtime_checkable
class AppendOnlyConversation(Conversation, Protocol):
    """A conversation that keeps its history in one sequence it only ever appends to.

    A SessionManager then snapshots the history as that sequence and its length, at no cost
    however long the conversation is, and an auto-save appends the messages after the
    length it last saved without comparing the ones before. Without it the manager copies
    ``messages`` on every auto-save and compares the copy with what it saved.
    """

    @property
    def history(self) -> Sequence[Message]:
        """The sequence holding the history, oldest first: the conversation's own, not a copy.

        While the conversation keeps returning the same sequence it only ever appends to it:
        no message in it is removed, replaced or reordered. ``load``, ``clear`` or any other
        change to what came before puts the history in a new sequence. Callers only read it.
        """
        ...
