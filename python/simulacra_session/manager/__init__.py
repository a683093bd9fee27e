"""SessionManager: binds one conversation to a store and keeps it saved.

The package, by job: this module is the manager's API and its events; ``children`` its
child managers; ``selection`` the session ``load()`` takes without an id; ``snapshot`` what
a save holds of the conversation; ``writer`` the save queue of each session, which calls the
store's public ``append`` or ``save`` (``save_request`` what a write holds, ``write_task`` the
task it runs in, ``writers`` a manager's writers by session id); ``forks`` the forks it
makes; ``deletion`` how a session goes while its attached forks keep their history, and how
the manager on it is put back when that fails; ``owned`` the sessions it (or a child
manager) writes, which ``rename`` and ``delete`` change through that manager; ``recovery``
how it gets back in step with a session another writer saved (``recover``), and the
history ``load`` reads.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any, cast, get_args

from .._emitter import Emitter, Listener
from ..errors import (
    InvalidMetadataError,
    ManagerDisposedError,
    NoActiveSessionError,
    SessionNotFoundError,
)
from ..events import EventName, LifecycleErrorEvent, LoadEvent, SaveEvent
from ..history import ResolvedSession, list_forks, save_from
from ..ids import new_session_id, validate_session_id
from ..messages import JsonObject, Message
from ..models import RESERVED_METADATA_KEYS, Revision, SessionMetadata
from ..protocols import Conversation, SessionStore
from .children import busy_writers, spawn_child
from .deletion import delete_session
from .forks import make_fork
from .owned import check_label, owner_of
from .recovery import recover, settled_history
from .selection import check_own, latest
from .snapshot import Inheritance, Snapshots
from .writer import SaveRequest, SessionWriters, check_metadata

__all__ = ["SessionManager"]

_log = logging.getLogger("simulacra_session")

_EVENTS = frozenset(get_args(EventName))
#: Metadata the manager writes itself; ``save(**extra)`` may not set these.
_MANAGED_KEYS = RESERVED_METADATA_KEYS | {
    "parent_id",
    "fork_message_id",
    "fork_message_count",
    "detached",
    "is_checkpoint",
    "checkpoint_state",
}


class SessionManager:
    """Saves, loads, labels, forks and lists the sessions of one conversation.

    With ``auto_save`` every ``message_complete`` of the conversation saves the session in
    the background: saves of a session never interleave, a burst coalesces (one in flight,
    at most one queued, the last holding the newest messages) and a failure is emitted as a
    ``lifecycle_error`` event instead of reaching the conversation. ``await flush()`` waits
    for all of it, child sessions included. A fork whose parent is gone loads, as in the
    original library, without what it inherits (with a warning); ``strict_forks=True``
    raises ``CorruptSessionError`` instead. To a store that checks revisions, a write made
    from a stale view (another writer saved the session since this manager read it) fails
    with ``ConflictError``, an auto-save's as a ``lifecycle_error``; :meth:`recover` then
    brings the session back in step, losing neither writer's messages.
    """

    def __init__(
        self,
        store: SessionStore,
        conversation: Conversation,
        *,
        auto_save: bool = True,
        auto_slug: bool = True,
        strict_forks: bool = False,
    ) -> None:
        if not isinstance(store, SessionStore):
            raise TypeError(f"store must implement SessionStore, got {type(store).__name__}")
        self._store = store
        self._conversation = conversation
        self._auto_save = auto_save
        self._strict_forks = strict_forks
        self._auto_slug = auto_slug
        self._snapshots = Snapshots(conversation, auto_slug=auto_slug)
        self._events = Emitter()
        self._session_id: str | None = None
        self._switches = 0  # sessions made current so far: whether one was meanwhile (``deletion``)
        self._disposed = False
        self._children: list[SessionManager] = []
        self._parent: SessionManager | None = None  # a child's: its errors are reported there too
        self._writers = SessionWriters(store, self._on_saved, self._on_save_failed)
        if auto_save:
            conversation.on("message_complete", self._on_message_complete)
        conversation.on("create_child", self._on_create_child)
        conversation.once("dispose", self._on_conversation_dispose)

    # -- state -------------------------------------------------------------------------

    @property
    def current_session_id(self) -> str | None:
        """The active session's id, or ``None``."""
        return self._session_id

    @property
    def is_loaded(self) -> bool:
        """Whether a session is active."""
        return self._session_id is not None

    @property
    def store(self) -> SessionStore:
        """The store sessions are saved to."""
        return self._store

    @property
    def conversation(self) -> Conversation:
        """The conversation this manager keeps saved."""
        return self._conversation

    @property
    def children(self) -> tuple[SessionManager, ...]:
        """Managers of the child conversations spawned so far and not yet disposed."""
        return tuple(child for child in self._children if not child._disposed)

    # -- lifecycle ---------------------------------------------------------------------

    def start_new(self, label: str | None = None) -> str:
        """Begin a new session (clearing the conversation) and return its id.

        When ``label`` is given or auto-save is on, the session is persisted: at once when no
        event loop is running (errors raise), else in the background (errors are emitted).
        """
        self._check_open()
        session_id = new_session_id()
        if label:  # an empty one is none, as it always was
            check_label(session_id, label)
        self._save_again()
        self._switch_to(session_id, inherited=0, has_label=bool(label))
        if self._conversation.messages:
            self._conversation.clear()
        if label or self._auto_save:
            request = self._request({"label": label} if label else {}, background=True)
            self._writers.submit(request, raise_now=True)
        assert self._session_id is not None
        return self._session_id

    async def load(self, id: str | None = None) -> str:
        """Load a session (its resolved history) into the conversation; returns its id.

        Without ``id`` the most recent session is loaded that no framework adapter writes (no
        ``integration`` in its metadata), or a new one started when there is none. Raises
        ``SessionNotFoundError`` when ``id`` does not exist, ``SessionOwnerError`` when a
        framework adapter writes it (nothing loaded or written).
        """
        self._check_open()
        self._save_again()
        if id is None:
            await self.flush()  # so that what this manager saves counts
            id = await latest(self._store)
            if id is None:
                return self.start_new()
        validate_session_id(id)
        resolved = await settled_history(self, id)
        if resolved is None:
            raise SessionNotFoundError(id)
        check_own(resolved.stored.metadata)
        self._take(resolved, resolved.messages, resolved.stored.metadata.checkpoint_state)
        return id

    async def recover(self) -> int:
        """Bring the current session back in step with the store after a ``ConflictError``
        (another writer saved it since this manager read it); returns how many messages it
        saved again.

        Loads the session as stored (the other writers' messages included), puts this
        manager's messages that the store lacks (those after what it last loaded or saved)
        after them, and saves those: the conversation holds both writers' messages, none
        lost. A session deleted meanwhile is saved anew whole. To keep this manager's
        history apart instead, ``fork(id, detached=True)`` saves it as a new session. A
        session a framework adapter has taken meanwhile (its ``integration`` metadata) raises
        ``SessionOwnerError``, nothing loaded or saved: fork it detached.
        """
        self._check_open()
        if self._session_id is None:
            raise NoActiveSessionError()
        return await recover(self, self._session_id)

    async def save(
        self,
        *,
        label: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        full: bool = False,
        **extra: Any,
    ) -> None:
        """Persist the current session now, with optional metadata on top.

        ``extra`` keys are kept as JSON metadata; the keys the store and manager own raise
        ``ValueError``, as does a ``label`` that is not a non-empty string (both
        ``InvalidMetadataError``), and metadata a store would refuse raises what it would, at
        once (it fails this call alone, never a later save). Saved messages are treated as
        immutable: a store that can append gets only the new ones; ``full=True`` rewrites
        the whole session, for callers that edited history in place. Raises
        ``NoActiveSessionError`` without a session, and whatever the store raised when the
        write fails. Cancelling the call ends the wait, not the write.
        """
        self._check_open()
        reserved = sorted(_MANAGED_KEYS.intersection(extra))
        if reserved:
            raise InvalidMetadataError(
                f"metadata keys are managed by the session manager: {', '.join(reserved)}"
                f" (session {self._session_id})"
            )
        if self._session_id is None:
            raise NoActiveSessionError()
        if label is not None:
            check_label(self._session_id, label)
        given: dict[str, Any] = {"label": label, "provider": provider, "model": model, **extra}
        given = {key: value for key, value in given.items() if value is not None}
        if given:
            check_metadata(self._session_id, given)
        if label:
            self._snapshots.labelled = True
        await self._write(given, full=full)

    async def fork(self, parent_id: str, *, detached: bool = False) -> str:
        """Branch a new session off ``parent_id`` and make it current; returns its id.

        An attached fork (the default) loads the parent's history into the conversation and
        stores only what comes after it. A detached fork inherits nothing, keeps the
        conversation as it is and may name a parent that was never saved. Both copy the
        parent's checkpoint state. An attached fork of a session a framework adapter writes
        (its ``integration`` metadata) raises ``SessionOwnerError``, nothing saved.
        """
        self._check_open()
        validate_session_id(parent_id)
        return await make_fork(self, parent_id, detached=detached)

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        """The sessions in the store, most recent first; ``limit``/``offset`` page them (see
        ``SessionStore.list``)."""
        return await self._store.list(limit=limit, offset=offset)

    async def forks(self, id: str) -> builtins.list[SessionMetadata]:
        """Sessions whose ``parent_id`` is ``id``, most recent first."""
        validate_session_id(id)
        return await list_forks(self._store, id)

    async def delete(self, id: str) -> bool:
        """Remove a session; ``True`` when it existed.

        Attached forks keep their history: what they inherited is written into them (they
        become detached) before the parent goes, through the manager writing one (this one or
        a child manager), so its later saves go on; a fork another process makes meanwhile is
        written so once the parent is gone (see ``manager.deletion``). Deleting the current
        session (or a child manager's) clears that conversation and leaves it no session active,
        at once: a message completed during the delete never saves to it (with auto-save it
        starts a new session). When the delete raises (the store's error, ``CorruptSessionError``
        when an attached fork would lose its history, a cancellation) before the store removed
        the session, that manager is put back on it as it was, its conversation's messages
        (then those added meanwhile without auto-save) and unsaved state kept; unless another
        session became current meanwhile, which stays. Then the error is raised.
        """
        self._check_open()
        validate_session_id(id)
        return await delete_session(self, id)

    async def rename(self, id: str, label: str) -> None:
        """Set a session's label (an explicit label always wins over the derived one).

        A label is a non-empty string (``InvalidMetadataError`` naming the session otherwise).
        The session of this manager or of a child manager is saved through that manager, as
        ``save(label=...)`` does, with what it holds.
        """
        self._check_open()
        validate_session_id(id)
        check_label(id, label)
        owner = owner_of(self, id)  # this manager's session, or a child's: through its writer
        if owner is not None:
            await owner.save(label=label)
            return
        await self.flush()  # a save of ours to that session may still be under way
        stored = await self._store.load(id)
        if stored is None:
            raise SessionNotFoundError(id)
        await save_from(self._store, stored, {"label": label})

    async def flush(self) -> None:
        """Wait until every pending save of this manager and its children has finished.

        Cancelling it (a timeout, say) ends the wait, not the saves: they go on in the
        background, shared with every other waiter, and the next ``flush`` waits for them.
        """
        while True:
            writers = busy_writers(self)
            if not writers:
                return
            waits = [wait for writer in writers if (wait := writer.drained()) is not None]
            await (waits[0] if len(waits) == 1 else asyncio.gather(*waits))

    # -- events ------------------------------------------------------------------------

    def on(self, event: EventName, listener: Listener) -> SessionManager:
        """Call ``listener`` on ``event`` (``load``, ``save``, ``lifecycle_error``, ``dispose``)."""
        self._events.on(_event_name(event), listener)
        return self

    def off(self, event: EventName, listener: Listener) -> SessionManager:
        """Stop calling ``listener`` on ``event``."""
        self._events.off(_event_name(event), listener)
        return self

    def dispose(self) -> None:
        """Detach from the conversation, dispose child managers and emit ``dispose`` (once).

        Saves already under way still finish; ``async with`` flushes them before disposing.
        """
        if self._disposed:
            return
        self._disposed = True
        self._writers.close()
        for child in self._children:
            child.dispose()
        self._conversation.off("message_complete", self._on_message_complete)
        self._conversation.off("create_child", self._on_create_child)
        self._conversation.off("dispose", self._on_conversation_dispose)
        self._events.emit("dispose")
        self._events.clear()

    def __enter__(self) -> SessionManager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.dispose()

    async def __aenter__(self) -> SessionManager:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._disposed:
                self._save_again()
            await self.flush()
        finally:
            self.dispose()

    # -- internals ---------------------------------------------------------------------

    def _save_again(self) -> None:
        """Before the manager leaves its session (or closes), an auto-save of it that failed (a
        full disk, a server gone) is tried again, in the background: what it held is otherwise
        stored only by a later save, which may never come. A failure is reported again."""
        if self._auto_save and self._session_id is not None and self._writers.failed(self._session_id):
            self._writers.submit(self._request({}, background=True))

    def _check_open(self) -> None:
        if self._disposed:
            raise ManagerDisposedError(self._session_id)

    def _switch_to(
        self, session_id: str | None, *, inherited: int, has_label: bool, revision: Revision | None = None
    ) -> None:
        """Make ``session_id`` current (``None``: none); its next write rewrites it (the history
        was replaced), made from ``revision``. The previous session's writer goes, once idle."""
        self._session_id = session_id
        self._switches += 1
        self._snapshots.inherited = Inheritance(inherited)
        self._snapshots.labelled = has_label
        self._writers.switch(session_id, revision)

    def _take(self, resolved: ResolvedSession, messages: Sequence[JsonObject], checkpoint: Any) -> None:
        """Make the loaded session current, holding ``messages`` (its history, or more) and the
        ``checkpoint`` state, and say so: a ``load`` event, and a ``lifecycle_error`` for each
        damage the store left out."""
        stored, metadata = resolved.stored, resolved.stored.metadata
        self._switch_to(
            metadata.id,
            inherited=resolved.inherited,
            has_label=bool(metadata.label),
            revision=stored.revision,
        )
        self._conversation.clear()
        self._conversation.load(cast("Sequence[Message]", messages))  # the engine's shape
        self._snapshots.inherited_loaded()
        self._conversation.checkpoint_state = checkpoint
        for damage in resolved.damage:  # the store logged a warning too
            context = {"session_id": metadata.id, "path": damage.path, "offset": damage.offset}
            self._report(LifecycleErrorEvent(damage, "load", context))
        self._events.emit("load", LoadEvent(id=metadata.id, messages=tuple(messages)))

    async def _write(self, given: dict[str, Any], *, full: bool = False) -> None:
        """Save the current session now with the metadata ``given`` (checked), rewriting it whole
        when ``full``; raises what the write raised."""
        request = self._request(given, background=False)
        request.full = request.full or full
        done = self._writers.submit(request)
        if done is not None:
            await done

    def _request(self, given: dict[str, Any], *, background: bool) -> SaveRequest:
        """A snapshot of the conversation for the current session (see ``Snapshots.request``)."""
        assert self._session_id is not None
        return self._snapshots.request(self._session_id, given, background=background)

    def _on_saved(self, request: SaveRequest) -> None:
        if self._events.has("save"):  # the history snapshot costs O(n): only for listeners
            self._events.emit("save", SaveEvent(id=request.session_id, messages=request.history))

    def _on_save_failed(self, request: SaveRequest, error: BaseException) -> None:
        # what it meant to store (a label among it) goes with the session's next save
        self._emit_error(error, "save", session_id=request.session_id)

    def _emit_error(self, error: BaseException, operation: str, **context: Any) -> None:
        event = LifecycleErrorEvent(error, operation, context)
        if not self._report(event):
            _log.error("%s failed (%s), with no lifecycle_error listener: %r", operation, context, error)

    def _report(self, event: LifecycleErrorEvent) -> bool:
        """Emit ``lifecycle_error`` here and at every parent; whether anyone listened."""
        heard = self._events.has("lifecycle_error")
        self._events.emit("lifecycle_error", event)
        parent = self._parent
        return parent._report(event) or heard if parent is not None else heard

    def _on_message_complete(self, *_: Any) -> None:
        if self._disposed:
            return
        if self._session_id is None:
            # Never drop messages: a conversation that talks before start_new gets a session.
            self._switch_to(new_session_id(), inherited=0, has_label=False)
        self._writers.submit(self._request({}, background=True))

    def _on_create_child(self, child: Conversation, *_: Any) -> None:
        if self._disposed or self._session_id is None:
            return
        spawn_child(self, child)

    def _on_conversation_dispose(self, *_: Any) -> None:
        self.dispose()


def _event_name(event: str) -> str:
    if event not in _EVENTS:
        raise ValueError(f"unknown event {event!r}: expected one of {', '.join(sorted(_EVENTS))}")
    return event
