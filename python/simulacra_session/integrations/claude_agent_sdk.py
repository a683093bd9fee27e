"""The Claude Agent SDK's session transcripts kept in any simulacra-session store.

``ClaudeAgentSessionStore(store)`` is a ``claude_agent_sdk.SessionStore``: pass it as
``ClaudeAgentOptions(session_store=...)`` and the SDK mirrors every transcript entry into
``store``, verbatim, one JSON object per entry, and resumes, lists, forks and deletes
sessions from there. Every method of the protocol is implemented, the optional ones too.

How keys become sessions. Each key is a session whose id is ``session_id_for_key`` of
the JSON array ``["claude-agent-sdk", *parts]`` (distinct keys, distinct ids, whatever the
strings hold), and whose metadata keeps ``{"integration": "claude-agent-sdk", "key": {...}}``
with the key's parts as given. The sessions form a tree through ``parent_id``, each child
``detached`` (it inherits no message):

- a project (``project_key``) is an empty session, the root of its transcripts;
- a main transcript (``project_key``, ``session_id``) is a child of its project, so
  ``list_sessions`` is an index lookup (``ForkIndexedStore.forks``);
- a subagent transcript (with a ``subpath``) is a child of its main transcript, so
  ``list_subkeys`` is an index lookup and ``delete`` of the main one reaches them all.

Stores without that index (``forks``) are listed instead. A main transcript's metadata also
holds the SDK's running summary (``fold_session_summary``, under ``claude_summary``), so
``list_session_summaries`` reads metadata only. Entries written around this adapter leave
the summary stale (its ``mtime`` then lags, and the SDK reads that transcript) until the
next append folds it again from every entry.

Importing this module imports the SDK; without it, ``ImportError`` names the extra that
installs it: ``pip install 'simulacra-session[claude-agent-sdk]'``; with an SDK older than
0.1.65 (no session summaries), the version it needs.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, cast

from ._imports import require

_sdk = require("claude_agent_sdk", "claude-agent-sdk")  # first: a missing SDK names its extra

try:  # the summaries (list_session_summaries, fold_session_summary) came in 0.1.65
    from claude_agent_sdk import fold_session_summary
    from claude_agent_sdk.types import (
        SessionKey,
        SessionListSubkeysKey,
        SessionStoreEntry,
        SessionStoreListEntry,
        SessionSummaryEntry,
    )
except ImportError as old:
    if (old.name or "").split(".")[0] != "claude_agent_sdk":
        raise  # not the SDK's names: a module the SDK imports failed
    raise ImportError(
        f"claude-agent-sdk 0.1.65 or later is needed, {getattr(_sdk, '__version__', 'an older one')} "
        f"is installed ({old}): pip install --upgrade 'simulacra-session[claude-agent-sdk]'",
        name="claude_agent_sdk",
    ) from old

from ..errors import ConflictError, SessionNotFoundError  # noqa: E402
from ..history import inherits, materialize_forks, read_tail, resolve_history  # noqa: E402
from ..ids import InvalidKeyError, session_id_for_key  # noqa: E402
from ..messages import JsonObject  # noqa: E402
from ..models import Revision, SessionMetadata, StoredSession  # noqa: E402
from ..protocols import AppendableSessionStore, ForkIndexedStore, SessionStore, checks_revisions  # noqa: E402
from ..timestamps import parse_timestamp  # noqa: E402
from . import _writes  # noqa: E402
from ._owner import check_owner  # noqa: E402

__all__ = ["INTEGRATION", "SUMMARY", "ClaudeAgentSessionStore"]

#: The ``integration`` metadata key of the sessions this adapter writes.
INTEGRATION = "claude-agent-sdk"
#: The metadata key of a main transcript's summary: ``{"data": ..., "count": n}``, the SDK's
#: opaque summary ``data`` as it stood when the transcript held ``n`` entries.
SUMMARY = "claude_summary"

_PARTS = ("project_key", "session_id", "subpath")  # a key's parts, in the order _store_id takes them
_ATTEMPTS = 64  # conflicting writers in a row before an append gives up (each conflict is another's progress)
_EPOCH = parse_timestamp("1970-01-01T00:00:00Z")
_MILLISECOND = timedelta(milliseconds=1)


def _millis(timestamp: str) -> int:
    """A stored timestamp as Unix epoch milliseconds (the SDK's ``mtime``)."""
    return (parse_timestamp(timestamp) - _EPOCH) // _MILLISECOND


def _store_id(*parts: str) -> str:
    """The id of the session holding the key of these parts (one for a project, two for a
    main transcript, three for a subagent's): the JSON array of them is the key string."""
    for name, part in zip(_PARTS, parts, strict=False):
        if type(part) is not str:
            raise InvalidKeyError(part, f"Claude Agent SDK key's {name}")
    return session_id_for_key(json.dumps([INTEGRATION, *parts], ensure_ascii=False, separators=(",", ":")))


@dataclass(frozen=True)
class _Place:
    """Where one key's entries live: the session's id, its parent's, and the key kept beside it."""

    id: str
    parent: str
    key: dict[str, str]

    @classmethod
    def of(cls, key: SessionKey) -> _Place:
        project, session = key["project_key"], key["session_id"]
        subpath = key.get("subpath")
        if subpath:  # the SDK's main transcripts have none (an empty one is read as none too)
            parts = {"project_key": project, "session_id": session, "subpath": subpath}
            return cls(_store_id(project, session, subpath), _store_id(project, session), parts)
        return cls(
            _store_id(project, session), _store_id(project), {"project_key": project, "session_id": session}
        )

    @property
    def main(self) -> bool:
        """Whether this is a main transcript (it keeps the session's summary)."""
        return "subpath" not in self.key

    def metadata(self) -> dict[str, Any]:
        """What the session is created with: its key and its place in the tree."""
        return {"integration": INTEGRATION, "key": self.key, "parent_id": self.parent, "detached": True}


def _key_of(metadata: SessionMetadata) -> dict[str, Any] | None:
    """The key a session of this adapter keeps in its metadata; ``None`` for other sessions."""
    extra = metadata.model_extra or {}
    key = extra.get("key")
    return key if extra.get("integration") == INTEGRATION and isinstance(key, dict) else None


def _kept_summary(metadata: SessionMetadata) -> tuple[dict[str, Any] | None, bool]:
    """The summary ``data`` a main transcript keeps (``None``: none), and whether it covers
    every entry stored (entries written around this adapter are not folded in it)."""
    kept = (metadata.model_extra or {}).get(SUMMARY)
    if not isinstance(kept, dict) or not isinstance(kept.get("data"), dict):
        return None, metadata.message_count == 0
    return kept["data"], kept.get("count") == metadata.message_count


def _summary_entry(metadata: SessionMetadata, session_id: str) -> SessionSummaryEntry | None:
    """The summary a main transcript keeps, stamped with its ``updated_at``: one millisecond
    before it when it lacks entries (the SDK then reads the transcript)."""
    data, whole = _kept_summary(metadata)
    if data is None:
        return None
    return {
        "session_id": session_id,
        "mtime": _millis(metadata.updated_at) - (0 if whole else 1),
        "data": data,
    }


def _new_entries(
    entries: Sequence[SessionStoreEntry], stored: Sequence[JsonObject]
) -> builtins.list[SessionStoreEntry]:
    """``entries`` without those whose ``uuid`` is among ``stored`` or earlier in the batch
    (a ``uuid`` that is not a string, stored as given, is nobody's)."""
    seen = {uuid for message in stored if isinstance(uuid := message.get("uuid"), str)}
    new: builtins.list[SessionStoreEntry] = []
    for entry in entries:
        uuid = entry.get("uuid")
        if isinstance(uuid, str):
            if uuid in seen:
                continue
            seen.add(uuid)
        new.append(entry)
    return new


class ClaudeAgentSessionStore:
    """A Claude Agent SDK ``SessionStore`` whose transcripts live in ``store``.

    ``append`` is one write per batch: an append to an ``AppendableSessionStore`` (a save of
    the whole transcript to a store without one), made from the revision it read, and
    retried from a fresh read when another writer came first, so concurrent appends, in
    any number of processes, neither lose nor interleave a batch, and the summary they
    fold stays whole; but on an ``AdapterSessionStore``, whose revision check holds within
    its process only, two processes appending to one key at once may lose one's batch.
    Entries with a ``uuid`` are written once: a batch retried after a
    failure the write survived skips the entries already stored. The check reads the last
    ``len(entries) + dedupe_window`` stored entries (all of them on a store without
    ``append``, or with ``dedupe_window=None``), so a retried batch is recognized unless more
    than ``dedupe_window`` entries were appended by others in between. A re-import from the
    start (the SDK's ``import_session_to_store``, catching a store up after a
    ``MirrorErrorMessage``) meets its earlier copies beyond any window: give the adapter that
    re-imports ``dedupe_window=None``, which checks every batch against the whole
    transcript (a read of all of it per batch). Entries without one are appended as given.
    On a store that cannot append or check revisions (a save creating a session cannot be
    conditional), the process's appends of one key take turns, whatever the number of
    these objects, stores and event loops.

    A key is present once it holds an entry: ``load`` gives ``None`` before, and only keys
    holding entries are listed. A session of another integration at a key's id (another
    framework's adapter given the JSON of ``["claude-agent-sdk", *parts]`` as its key) is
    refused by ``load``, ``append`` and ``delete`` (``ForeignSessionError``).
    """

    def __init__(self, store: SessionStore, *, dedupe_window: int | None = 100) -> None:
        if dedupe_window is not None and dedupe_window < 0:
            raise ValueError(f"dedupe_window must be 0 or more, got {dedupe_window}")
        self._store = store
        self._window = dedupe_window
        self._appender = store if isinstance(store, AppendableSessionStore) else None
        self._indexed = store if isinstance(store, ForkIndexedStore) else None
        self._revisions = checks_revisions(store)
        # a store that cannot append or check revisions: the process's appends of a key take turns
        self._serial = self._appender is None or not self._revisions

    @property
    def store(self) -> SessionStore:
        """The simulacra-session store the transcripts live in."""
        return self._store

    @staticmethod
    def store_id(key: SessionKey) -> str:
        """The id of the session holding ``key``'s entries."""
        return _Place.of(key).id

    @staticmethod
    def project_id(project_key: str) -> str:
        """The id of the empty session whose children are ``project_key``'s main transcripts."""
        return _store_id(project_key)

    # -- the protocol ------------------------------------------------------------------

    async def append(self, key: SessionKey, entries: builtins.list[SessionStoreEntry]) -> None:
        """Add ``entries`` after the key's stored ones, skipping those whose ``uuid`` is stored."""
        if not entries:
            return
        place = _Place.of(key)
        if not self._serial:
            await self._append(place, entries)
        else:
            async with _writes.one_at_a_time(place.id):
                await self._append(place, entries)

    async def load(self, key: SessionKey) -> builtins.list[SessionStoreEntry] | None:
        """The key's entries, deep-equal to those appended; ``None`` when it holds none."""
        place = _Place.of(key)
        resolved = await resolve_history(self._store, place.id)
        if resolved is None:
            return None
        check_owner(resolved.stored.metadata, place.metadata())
        if not resolved.messages:
            return None
        return cast("list[SessionStoreEntry]", resolved.messages)

    async def list_sessions(self, project_key: str) -> builtins.list[SessionStoreListEntry]:
        """The project's main transcripts and their ``mtime`` (the session's ``updated_at``)."""
        return [
            {"session_id": key["session_id"], "mtime": _millis(meta.updated_at)}
            for meta, key in await self._children(_store_id(project_key), {"project_key": project_key})
        ]

    async def list_session_summaries(self, project_key: str) -> builtins.list[SessionSummaryEntry]:
        """The summaries the project's main transcripts keep, read from their metadata."""
        found = []
        for meta, key in await self._children(_store_id(project_key), {"project_key": project_key}):
            summary = _summary_entry(meta, key["session_id"])
            if summary is not None:
                found.append(summary)
        return found

    async def delete(self, key: SessionKey) -> None:
        """Remove the key's transcript; a main transcript's subagent transcripts go first.
        A fork made of one of them (``SessionManager.fork``) keeps the history it inherits:
        it is written into the fork first (``history.materialize_forks``)."""
        place = _Place.of(key)
        head = await read_tail(self._store, place.id, 0)
        if head is not None:
            check_owner(head.metadata, place.metadata())
        ids = [place.id]
        if place.main:
            ids[:0] = [meta.id for meta, _ in await self._children(place.id, place.key, empty=True)]
        for parent in await self._forked(ids):
            await materialize_forks(self._store, parent)
        for id in ids:
            await self._store.delete(id)

    async def list_subkeys(self, key: SessionListSubkeysKey) -> builtins.list[str]:
        """The subpaths holding entries under the main transcript ``key``, sorted."""
        parts = {"project_key": key["project_key"], "session_id": key["session_id"]}
        children = await self._children(_store_id(parts["project_key"], parts["session_id"]), parts)
        return sorted(found["subpath"] for _, found in children)

    # -- reading and writing -----------------------------------------------------------

    async def _children(
        self, parent: str, key: dict[str, str], *, empty: bool = False
    ) -> builtins.list[tuple[SessionMetadata, dict[str, Any]]]:
        """The sessions of this adapter one level below ``key`` (a project's main transcripts,
        a main transcript's subagent transcripts) with their keys; those holding no entry only
        when ``empty``. Found through the fork index, else among every session."""
        if self._indexed is not None:
            found = await self._indexed.forks(parent)
        else:
            found = [meta for meta in await self._store.list() if meta.parent_id == parent]
        depth = len(key) + 1
        children = []
        for meta in found:
            child = _key_of(meta)
            if (
                child is not None
                and len(child) == depth
                and all(child.get(name) == value for name, value in key.items())
                and (empty or meta.message_count > 0)
            ):
                children.append((meta, child))
        return children

    async def _forked(self, ids: Sequence[str]) -> builtins.list[str]:
        """Those of the sessions ``ids`` that attached forks inherit from (the sessions of this
        adapter are detached: only forks made around it inherit), through the fork index,
        else one listing of every session."""
        if self._indexed is not None:
            return [id for id in ids if any(inherits(meta) for meta in await self._indexed.forks(id))]
        parents = {meta.parent_id for meta in await self._store.list() if inherits(meta)}
        return [id for id in ids if id in parents]

    async def _append(self, place: _Place, entries: Sequence[SessionStoreEntry]) -> None:
        """``append``: read, check and fold, then write from the revision read, until no other
        writer comes between. An entry JSON cannot hold raises ``SerializationError`` naming
        the key and its session, no entry written."""
        dedupe = any(isinstance(entry.get("uuid"), str) for entry in entries)
        if self._appender is not None and not dedupe and not place.main:  # no entry to check, nothing to fold
            await _writes.append(self._store, place.id, entries, place.metadata())  # checks the owner
            return
        with _writes.named(place.metadata()):
            await self._append_checked(place, entries, dedupe)

    async def _append_checked(
        self, place: _Place, entries: Sequence[SessionStoreEntry], dedupe: bool
    ) -> None:
        """``_append`` of entries some of which have a ``uuid``, or to a main transcript.
        When the last attempt too meets another writer, its write refused or the session
        deleted again since the attempt before, nothing is written: ``ConflictError``
        (``SessionNotFoundError`` from a store giving no revisions)."""
        seen: Revision | None = None  # the session as this append last read or created it
        for attempt in range(_ATTEMPTS):
            checked = None if self._window is None else len(entries) + self._window
            stored = await self._read(place.id, checked if dedupe else 0)
            if stored is not None:
                check_owner(stored.metadata, place.metadata())
                seen = stored.revision
            if stored is not None and place.main and not _kept_summary(stored.metadata)[1]:
                stored = await self._read(place.id, None)  # to fold the summary again from every entry
            if stored is None:
                seen = await self._create(place, entries)
                if self._appender is None:
                    return  # the save creating the session wrote the batch
                continue
            new = _new_entries(entries, stored.messages)
            if not new:
                return
            try:
                await self._commit(stored, new, self._metadata(place, stored, new))
                return
            except ConflictError:
                if attempt == _ATTEMPTS - 1:
                    raise
        # only a create leaving the batch to write ends the loop: the last attempt found the session gone
        if seen is None:
            raise SessionNotFoundError(place.id)
        raise ConflictError(place.id, seen, None)

    async def _read(self, id: str, count: int | None) -> StoredSession | None:
        """The session's metadata and the entries to check a batch against: its last ``count``
        when the store appends, else (or when ``None``) all of them (a save rewrites them)."""
        if self._appender is not None and count is not None:
            return await read_tail(self._store, id, count)
        resolved = await resolve_history(self._store, id)
        return None if resolved is None else replace(resolved.stored, messages=resolved.messages)

    async def _create(self, place: _Place, entries: Sequence[SessionStoreEntry]) -> Revision | None:
        """Create the session under its project (created too when new) and return the revision
        the store gave it (``None`` from a store giving none). Empty, by an append of nothing,
        which never removes what a racing writer stored: the batch is still to write. A store
        without ``append`` is given the batch by the save that creates the session."""
        if place.main and await self._store.load(place.parent) is None:
            key = {"project_key": place.key["project_key"]}
            await self._store.save(place.parent, [], {"integration": INTEGRATION, "key": key})
        if self._appender is not None:
            return await self._appender.append(place.id, [], place.metadata())
        new = _new_entries(entries, [])
        return await self._store.save(place.id, new, self._metadata(place, None, new))

    def _metadata(
        self, place: _Place, stored: StoredSession | None, new: Sequence[SessionStoreEntry]
    ) -> dict[str, Any]:
        """The metadata an append of ``new`` writes: the key and place (for a session it
        creates), and a main transcript's summary with ``new`` folded in (folded again from
        every entry when it lacked some: ``stored`` then holds them all)."""
        metadata = place.metadata() if stored is None else {}
        if place.main:
            data, whole = (None, True) if stored is None else _kept_summary(stored.metadata)
            previous: SessionSummaryEntry | None = None
            if data is not None and whole:
                previous = {"session_id": place.key["session_id"], "mtime": 0, "data": data}
            entries = list(new)
            if not whole and stored is not None:
                entries[:0] = cast("list[SessionStoreEntry]", stored.messages)
            folded = fold_session_summary(previous, cast(SessionKey, place.key), entries)
            count = (0 if stored is None else stored.metadata.message_count) + len(new)
            metadata[SUMMARY] = {"data": folded["data"], "count": count}
        return metadata

    async def _commit(
        self, stored: StoredSession, new: Sequence[JsonObject], metadata: dict[str, Any]
    ) -> None:
        """Append ``new`` to the session ``stored`` was read as (save it with them, on a store
        without ``append``), refused with ``ConflictError`` when another writer came first."""
        options = {"expected": stored.revision} if self._revisions else {}
        if self._appender is not None:
            await self._appender.append(stored.metadata.id, new, metadata, **options)
        else:
            await self._store.save(stored.metadata.id, [*stored.messages, *new], metadata, **options)
