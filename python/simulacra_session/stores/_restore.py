"""The checks every bundled store runs before ``restore`` writes a session exactly as given."""

from __future__ import annotations

from ..errors import InvalidMetadataError
from ..ids import validate_session_id
from ..messages import JsonObject
from ..models import SessionMetadata
from ._codec import listed_messages

__all__ = ["checked_restore"]


def checked_restore(
    session_id: object, messages: object, metadata: object
) -> tuple[SessionMetadata, list[JsonObject]]:
    """``metadata`` and ``messages`` (a new list, read once: a generator, say) when
    ``restore(session_id, messages, metadata)`` may write them, before any I/O.

    The id must be valid and be ``metadata.id``, ``messages`` an iterable of messages
    (``TypeError`` naming the session otherwise: ``listed_messages``), ``message_count`` must
    count them, and a ``parent_id`` must be a valid id (it names a fork index directory):
    ``InvalidSessionIdError`` or ``InvalidMetadataError`` naming the session otherwise.
    """
    checked = validate_session_id(session_id)
    listed = listed_messages("restore", checked, messages)
    if not isinstance(metadata, SessionMetadata):
        raise TypeError(f"restore of session {checked} needs SessionMetadata, got {type(metadata).__name__}")
    if metadata.id != checked:
        raise InvalidMetadataError(f"metadata of session {metadata.id} cannot be restored as {checked}")
    if metadata.message_count != len(listed):
        raise InvalidMetadataError(
            f"session {checked}: metadata says message_count {metadata.message_count}, "
            f"restoring {len(listed)} messages"
        )
    if metadata.parent_id is not None:
        validate_session_id(metadata.parent_id)
    return metadata, listed
