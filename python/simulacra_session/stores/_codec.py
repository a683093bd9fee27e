"""The session document both bundled stores keep: ``{"metadata": {...}, "messages": [...]}``.

Metadata comes first and without its id (the file name or key is the id), written compact
by ``dumps``. The same shape is what the original TypeScript library writes (pretty-printed)
and reads, so files move freely between the two.

Whatever a store keeps a session as (this document, a journal's lines, SQL rows, export
lines), a message or the metadata is written only if it fits the document: at most 128
levels deep counted from the document (a message nests at most 126 itself), the depth a
load reads back, so no session is saved that cannot be loaded. Each is checked as deep as
the document holds it, and an error names the session and the value's path in it
(``session s1: ... at $.messages[3].content``), or in the metadata (``$.checkpoint_state``:
see ``models.dump_metadata``).
A message may be any ``Mapping`` (``JsonObject``): one that is not a dict is written as a
dict of its items. Any other JSON value is written as it is (a framework's item may be a
list; a journal keeps it as ``["message",value]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from .._backend import dumps, loads
from ..errors import CorruptSessionError, SerializationError
from ..ids import SESSION_ID_PATTERN, validate_session_id
from ..messages import JsonObject, check_many
from ..models import SessionMetadata, StoredSession, dump_metadata, metadata_from_stored

__all__ = [
    "TOO_DEEP",
    "check_count",
    "check_messages",
    "check_metadata",
    "check_page",
    "check_save_args",
    "check_truncation",
    "decode_session",
    "dump_document",
    "encode_messages",
    "encode_metadata",
    "listed_messages",
    "page",
    "plain_messages",
    "starts_ids",
    "stored_metadata",
    "too_deep",
]

#: What a load says of a stored value nesting deeper than the parser reads (128 levels), in a
#: journal record or an SQL row: no save writes one now (release 0.1.0 or a hand may have),
#: and it is not damage: no repair reads it better, so the store checks leave it as it is.
TOO_DEEP = "nests deeper than a load reads"


def too_deep(fault: str) -> bool:
    """Whether the parser's ``fault`` is its nesting limit (see ``TOO_DEEP``)."""
    return fault.startswith("nesting deeper than")


def check_save_args(
    method: str, session_id: object, given: Mapping[str, Any] | None, messages: object = ()
) -> str:
    """Validate what ``save`` or ``append`` (``method``) gets before any I/O: the id, the
    type of ``messages`` when given (``check_messages``) and of the metadata
    (``check_metadata``), a ``parent_id`` being set.

    A parent id names a fork index directory, so it must be a valid id too.
    Returns the session id.
    """
    checked = validate_session_id(session_id)
    check_messages(method, checked, messages)
    check_metadata(method, checked, given)
    if given is not None and given.get("parent_id") is not None:
        validate_session_id(given["parent_id"])
    return checked


def check_messages(method: str, session_id: object, messages: object) -> None:
    """``TypeError`` naming ``method``, session ``session_id`` and the type unless ``messages``
    is an iterable other than a ``str``, bytes or a ``Mapping``: one value where a sequence of
    messages belongs, which would be written as its characters, bytes or keys
    (``save(id, "hello")`` as five messages), or ``None``. A check of the type alone, whatever
    the number of messages (each is written as the JSON value it is)."""
    if type(messages) is list:  # the usual argument, at the cost of one comparison
        return
    check_many(f"{method} of session {session_id}", messages)


def check_metadata(method: str, session_id: object, metadata: object) -> None:
    """``TypeError`` naming ``method``, session ``session_id`` and the type unless
    ``metadata`` is ``None`` or a ``Mapping`` (the keys to merge)."""
    if metadata is None or type(metadata) is dict or isinstance(metadata, Mapping):
        return
    raise TypeError(
        f"{method} of session {session_id}: metadata must be a dict (a Mapping) or None,"
        f" not a {type(metadata).__name__}"
    )


def listed_messages(method: str, session_id: object, messages: object) -> list[JsonObject]:
    """``messages`` as a new list, their type checked before any I/O (``check_messages``):
    for a store that serializes them further on, and reads them once (a generator)."""
    check_messages(method, session_id, messages)
    listed: list[JsonObject] = list(messages)  # type: ignore[call-overload]
    return listed


def stored_metadata(metadata: SessionMetadata) -> dict[str, Any]:
    """The JSON dict of a session's metadata as stored (without its id)."""
    try:
        return metadata.to_json_dict()
    except PydanticSerializationError as error:
        raise SerializationError(f"cannot serialize metadata of session {metadata.id}: {error}") from None


def plain_messages(messages: Sequence[JsonObject]) -> list[JsonObject]:
    """``messages`` as a list the serializers take: each that is a ``Mapping`` but not a dict
    (a read-only ``MappingProxyType``, say) as a dict of its items."""
    return [message if isinstance(message, dict) else _plain(message) for message in messages]


def _plain(message: JsonObject) -> JsonObject:
    """``message`` as a dict when it is a ``Mapping`` (not a dict: a dict, or a subclass, is
    written as it stores its items); any other value as it is (written as JSON, or refused)."""
    return dict(message) if isinstance(message, Mapping) and not isinstance(message, dict) else message


def _in_session(session_id: str, error: SerializationError) -> SerializationError:
    """``error`` (which names a value's path in a session) naming the session too: what a
    store raises for a value of session ``session_id`` that JSON cannot hold."""
    return SerializationError(f"session {session_id}: {error}")


def dump_document(session_id: str, stored: dict[str, Any], messages: Sequence[JsonObject]) -> bytes:
    """The document of session ``session_id``, of the metadata as ``stored`` (see
    ``stored_metadata``) and ``messages``; ``SerializationError`` naming the session and the
    path of a fault in the metadata (as for every store: ``models.dump_metadata``) or in the
    session (``$.messages[3]``)."""
    try:
        try:
            return dumps({"metadata": stored, "messages": plain_messages(messages)})
        except SerializationError:
            dump_metadata(stored)  # rare: a fault in the metadata named in the metadata
            raise
    except SerializationError as error:
        raise _in_session(session_id, error) from None


def encode_metadata(metadata: SessionMetadata) -> bytes:
    """The stored bytes of a session's metadata (without its id)."""
    return dump_metadata(stored_metadata(metadata))


def encode_messages(session_id: str, messages: Sequence[JsonObject], offset: int = 0) -> list[bytes]:
    """Each message of session ``session_id`` serialized on its own, checked as deep as the
    session document holds it; an error names the session and the path in it, e.g. ``session
    s1: ... at $.messages[3].content[0]`` (``offset``: how many messages the session holds
    before). Only a failure costs more than the serializing: a dict is checked by the test that
    passes it on as it is. Messages that are no list (a generator) are listed first: a failure
    reads them again to name the path."""
    if type(messages) is not list:
        messages = list(messages)
    encoded: list[bytes] = []
    try:
        for message in messages:
            try:
                # as deep as in {"messages": [...]}: what a store loads back
                if not isinstance(message, dict):
                    message = _plain(message)
                encoded.append(dumps([[message]])[2:-2])
            except SerializationError:
                # rare: redo it as part of the session document so the path names the message
                dumps({"messages": [None] * offset + plain_messages(messages)})
                raise
    except SerializationError as error:
        raise _in_session(session_id, error) from None
    return encoded


def decode_session(session_id: str, data: bytes, where: str) -> StoredSession:
    """Parse stored bytes into a session; ``CorruptSessionError`` naming ``where`` otherwise.

    Unknown metadata and message keys are kept; an ``id`` inside the stored metadata is
    ignored in favour of ``session_id``.
    """
    try:
        document = loads(data)
    except ValueError as error:
        raise CorruptSessionError(f"corrupt session {where}: {error}") from None
    if not isinstance(document, dict):
        raise CorruptSessionError(f"corrupt session {where}: expected a JSON object")
    metadata = document.get("metadata")
    messages = document.get("messages")
    if not isinstance(metadata, dict) or not isinstance(messages, list):
        raise CorruptSessionError(
            f"corrupt session {where}: expected an object 'metadata' and a list 'messages'"
        )
    try:
        parsed = metadata_from_stored(session_id, metadata)
    except ValidationError as error:
        raise CorruptSessionError(f"corrupt session {where}: invalid metadata: {error}") from None
    return StoredSession(parsed, messages)


def _check_int(name: str, value: object) -> None:
    """``TypeError`` naming ``name`` unless ``value`` is an ``int``. Every store checks its
    counts so, before any engine sees them: one database would round a float, another
    refuse it."""
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {name}={value!r}")


def check_count(name: str, value: int | None) -> None:
    """``TypeError`` naming ``name`` unless ``value`` is an ``int`` (``None`` passes), and
    ``ValueError`` naming it and its value when it is negative."""
    if value is None:
        return
    _check_int(name, value)
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {name}={value}")


def check_truncation(session_id: str, count: int, message_count: int) -> int:
    """How many messages session ``session_id`` keeps when its last ``count`` of
    ``message_count`` go; ``ValueError`` naming both unless ``0 <= count <= message_count``."""
    if not 0 <= count <= message_count:
        raise ValueError(f"cannot truncate {count} messages of session {session_id}: it has {message_count}")
    return message_count - count


def check_page(limit: int | None, offset: int) -> None:
    """``TypeError`` naming the one that is not an ``int`` (a ``limit`` may be ``None``), and
    ``ValueError`` naming both when ``limit`` or ``offset`` is negative."""
    if limit is not None:
        _check_int("limit", limit)
    _check_int("offset", offset)
    if offset < 0 or (limit is not None and limit < 0):
        raise ValueError(f"limit and offset must not be negative, got limit={limit} offset={offset}")


def starts_ids(prefix: object) -> bool:
    """Whether an id can start with ``prefix`` (of the ids looked for): ``""``, or a valid id
    itself, as every start of one is. One that cannot matches none, and is looked for nowhere
    (a database may refuse it: MySQL's ids are ASCII, PostgreSQL's text holds no NUL).
    ``TypeError`` naming the type unless it is a ``str``."""
    if not isinstance(prefix, str):
        raise TypeError(f"ids_starting: prefix must be a str, not a {type(prefix).__name__}")
    return prefix == "" or SESSION_ID_PATTERN.fullmatch(prefix) is not None


def page(sessions: list[SessionMetadata], limit: int | None, offset: int) -> list[SessionMetadata]:
    """The ``limit`` sessions after the first ``offset`` (all of them when ``limit`` is None)."""
    check_page(limit, offset)
    return sessions[offset:] if limit is None else sessions[offset : offset + limit]
