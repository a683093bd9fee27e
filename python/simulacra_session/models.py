"""Session metadata and stored sessions, and the merge rule every store applies on save."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._backend import dumps, loads
from ._shown import shown
from .errors import ConflictError, CorruptSessionError, InvalidMetadataError, SerializationError
from .timestamps import next_timestamp, parse_timestamp, stamp_after

__all__ = [
    "RESERVED_METADATA_KEYS",
    "CheckpointState",
    "Revision",
    "SessionMetadata",
    "StoredSession",
    "auto_saved_metadata",
    "check_revision",
    "copy_metadata",
    "dump_metadata",
    "merge_metadata",
    "metadata_from_stored",
    "most_recent_first",
]

#: Keys a store owns: callers cannot set them through ``save(metadata=...)``.
RESERVED_METADATA_KEYS = frozenset({"id", "created_at", "updated_at", "message_count"})

#: A count of messages: an ``int`` (not a bool, float or string a lax model would turn into
#: one) from 0 to 2**63 - 1 (what a SQL ``BIGINT`` holds; a larger one, thousands of digits,
#: is more than Python turns into text). Metadata holding another value is refused where it
#: is made (``InvalidMetadataError`` from a save) and is damage where it is read
#: (``CorruptSessionError``).
Count = Annotated[int, Field(strict=True, ge=0, le=2**63 - 1)]

#: A yes or no (``detached``, ``is_checkpoint``): a ``bool``, not the ``1`` or ``"yes"`` a lax
#: model reads as one (a SQL store's listing, reading the stored text, would not), refused
#: and damage as a bad ``Count`` is.
Flag = Annotated[bool, Field(strict=True)]


class CheckpointState(BaseModel):
    """Where a conversation was last summarized, and the summary that replaced what came before."""

    model_config = ConfigDict(extra="allow", frozen=True)

    message_id: str
    summary: str


class SessionMetadata(BaseModel):
    """What a store knows about a session besides its messages. Unknown keys are kept.

    ``message_count`` counts the messages the session stores itself; an attached fork also
    inherits ``fork_message_count`` messages of its parent (``fork_message_id`` names the
    last one, as the original library records it).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    created_at: str
    updated_at: str
    message_count: Count
    provider: str | None = None
    model: str | None = None
    label: str | None = None
    parent_id: str | None = None
    fork_message_id: str | None = None
    fork_message_count: Count | None = None
    detached: Flag | None = None
    is_checkpoint: Flag | None = None
    checkpoint_state: CheckpointState | None = None

    @field_validator("created_at", "updated_at")
    @classmethod
    def _timestamp(cls, value: str) -> str:
        parse_timestamp(value)
        return value

    @property
    def updated(self) -> datetime:
        """``updated_at`` as an aware datetime, for ordering across timestamp precisions."""
        return parse_timestamp(self.updated_at)

    @property
    def created(self) -> datetime:
        """``created_at`` as an aware datetime."""
        return parse_timestamp(self.created_at)

    def to_json_dict(self, *, include_id: bool = False) -> dict[str, Any]:
        """Plain JSON-ready dict of the set fields and unknown keys (``None`` fields left out)."""
        exclude = None if include_id else {"id"}
        try:
            return self.model_dump(mode="json", exclude_none=True, exclude=exclude)
        except UnicodeEncodeError:  # a nested key holding a lone surrogate, which JSON allows and
            # pydantic-core cannot turn into a key of its own; the hot path writes it escaped
            return cast(dict[str, Any], loads(dumps(self.model_dump(exclude_none=True, exclude=exclude))))


@dataclass(frozen=True, slots=True)
class Revision:
    """Which committed state of a session a writer saw: its ``message_count`` and ``updated_at``.

    Every save gives a session an ``updated_at`` strictly later than its last, so two states
    of a session never share a revision, and every store already keeps both (no migration;
    the original library's documents carry them too). Exceptions: ``restore`` writes stamps
    as given, and a session deleted and saved again starts afresh. Compared for equality.
    """

    message_count: int
    updated_at: str

    @classmethod
    def of(cls, metadata: SessionMetadata) -> Revision:
        """The revision of a session whose (loaded or listed) metadata is ``metadata``."""
        return cls(metadata.message_count, metadata.updated_at)

    def __str__(self) -> str:
        return f"{self.message_count}@{self.updated_at}"


def check_revision(session_id: str, expected: Revision | None, actual: Revision | None) -> None:
    """``ConflictError`` unless the session is at the revision a writer ``expected`` (``None``:
    it expects nothing, the write is unconditional); ``actual`` is ``None`` for no session."""
    if expected is not None and expected != actual:
        raise ConflictError(session_id, expected, actual)


@dataclass(frozen=True)
class StoredSession:
    """A session as a store holds it: its metadata and the messages it stores itself.

    Messages come back as fresh plain dicts, whatever shape they were saved as (the engine's
    ``Message``, a framework's items): JSON objects, read without casts.

    ``parent_copy`` is, for an attached fork, a copy of the messages it inherits, when the store
    keeps one (the file store's ``.json`` forks hold it for the original library): its history
    is resolved from it should the parent be gone. ``damage`` is set when the store found
    part of the session's file damaged and left it out: what it returns is the last state
    that verified, and the error names the file and offset (see ``FileSessionStore.load``).
    """

    metadata: SessionMetadata
    messages: list[dict[str, Any]]
    parent_copy: list[dict[str, Any]] | None = None
    damage: CorruptSessionError | None = field(default=None, compare=False)

    @property
    def revision(self) -> Revision:
        """The session's revision (see ``Revision``)."""
        return Revision(self.metadata.message_count, self.metadata.updated_at)


def merge_metadata(
    session_id: str,
    existing: SessionMetadata | None,
    message_count: int,
    given: Mapping[str, Any] | None,
) -> SessionMetadata:
    """Apply the save rule shared by every store, as the original library does.

    Existing metadata first, then ``created_at`` (kept) / ``updated_at`` (strictly later
    than the previous save) / ``message_count``, then ``given`` on top, where ``None``
    removes a key. ``given`` may not set the store-owned keys (``ValueError`` naming them)
    and must be strict JSON (``SerializationError`` naming the session and the path, e.g.
    ``session s1: ... at $.extra[0]``).
    """
    if given:
        reserved = sorted(RESERVED_METADATA_KEYS.intersection(given))
        if reserved:
            raise InvalidMetadataError(
                f"metadata keys are managed by the store: {', '.join(reserved)} (session {session_id})"
            )
        # strict JSON, as for messages: pydantic would quietly write NaN as null, a set as a list
        try:
            dump_metadata({key: value for key, value in given.items() if not isinstance(value, BaseModel)})
        except SerializationError as error:
            raise SerializationError(f"session {session_id}: {error}") from None
    merged: dict[str, Any] = existing.to_json_dict() if existing is not None else {}
    previous = existing.updated_at if existing is not None else None
    merged["created_at"] = existing.created_at if existing is not None else None
    merged["updated_at"] = next_timestamp(previous)
    if merged["created_at"] is None:
        merged["created_at"] = merged["updated_at"]
    merged["message_count"] = message_count
    for key, value in (given or {}).items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, BaseModel):
            merged[key] = value.model_dump(mode="json", exclude_none=True)
        else:
            merged[key] = value
    merged["id"] = session_id
    try:
        return SessionMetadata.model_validate(merged)
    except ValidationError as error:
        wrong = ", ".join(f"{'.'.join(map(str, e['loc']))}={shown(e['input'])}" for e in error.errors())
        raise InvalidMetadataError(f"invalid metadata for session {session_id}: {wrong}: {error}") from None


def dump_metadata(metadata: Mapping[str, Any]) -> bytes:
    """``dumps`` of a session's metadata (its JSON dict as stored, or metadata given to a save),
    checked as deep as a session document holds it, one level down (``{"metadata": {...}}``,
    as a journal's records hold it too): what nests deeper would be saved, then not load.
    ``SerializationError`` naming the path in the metadata otherwise (``$.extra[0]``)."""
    try:
        return dumps([metadata])[1:-1]
    except SerializationError as error:  # its path is in the list: name it in the metadata
        raise SerializationError(str(error).replace(" at $[0]", " at $", 1)) from None


def auto_saved_metadata(
    stored: Mapping[str, Any], message_count: int, known: tuple[str, int] | None
) -> tuple[dict[str, Any], tuple[str, int]]:
    """``merge_metadata`` of a save given no metadata, on the stored JSON dict (without the id)
    instead of a model: what a store's auto-save writes, at a fraction of the cost. Returns it
    and its ``updated_at`` stamp, for the store to keep as the next save's ``known`` (see
    ``stamp_after``)."""
    merged = dict(stored)
    stamp = stamp_after(merged.get("updated_at"), known)
    merged["updated_at"] = stamp[0]
    merged["message_count"] = message_count
    return merged, stamp


def metadata_from_stored(session_id: str, stored: Mapping[str, Any]) -> SessionMetadata:
    """Build metadata read from storage, where the id lives outside the metadata record."""
    return SessionMetadata.model_validate({**stored, "id": session_id})


def _fresh(value: Any) -> Any:
    """A deep copy of a JSON value, or of a model holding them (what metadata is made of)."""
    if type(value) is dict:
        return {key: _fresh(item) for key, item in value.items()}
    if type(value) is list:
        return [_fresh(item) for item in value]
    if isinstance(value, CheckpointState):
        return _copy_state(value)
    return value  # str, int, float, bool, None: immutable


def _copy_state(state: CheckpointState) -> CheckpointState:
    """``state`` copied without validation, its unknown keys deep-copied (its fields are strings)."""
    extra = state.model_extra
    return state.model_copy(update=_fresh(extra) if extra else None)


def copy_metadata(metadata: SessionMetadata) -> SessionMetadata:
    """An independent copy of ``metadata``, sharing nothing mutable with it, at a fraction of the
    cost of validating one (``model_copy``, then fresh copies of the unknown keys and the
    checkpoint state, the only values not immutable): for caches handing out metadata."""
    extra = metadata.model_extra
    state = metadata.checkpoint_state
    if state is None and not extra:
        return metadata.model_copy()
    fresh: dict[str, Any] = _fresh(extra) if extra else {}
    if state is not None:
        fresh["checkpoint_state"] = _copy_state(state)
    return metadata.model_copy(update=fresh)


def most_recent_first(sessions: Sequence[SessionMetadata]) -> list[SessionMetadata]:
    """Sort by ``updated_at`` instant, newest first; ties by id, for a stable order."""
    by_id = sorted(sessions, key=lambda m: m.id)
    return sorted(by_id, key=lambda m: m.updated, reverse=True)
