"""The checks every bundled store runs before ``restore`` writes a session exactly as given."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InvalidMetadataError
from ..ids import validate_session_id
from ..messages import JsonObject
from ..models import SessionMetadata
from ._codec import check_messages

__all__ = ["check_restore"]


def check_restore(session_id: object, messages: Sequence[JsonObject], metadata: object) -> SessionMetadata:
    """``metadata`` when ``restore(session_id, messages, metadata)`` may write it, before any I/O.

    The id must be valid and be ``metadata.id``, ``messages`` a sequence of them (``TypeError``
    naming the session otherwise: ``check_messages``), ``message_count`` must count them,
    and a ``parent_id`` must be a valid id (it names a fork index directory):
    ``InvalidSessionIdError`` or ``InvalidMetadataError`` naming the session otherwise.
    """
    checked = validate_session_id(session_id)
    check_messages("restore", checked, messages)
    if not isinstance(metadata, SessionMetadata):
        raise TypeError(f"restore of session {checked} needs SessionMetadata, got {type(metadata).__name__}")
    if metadata.id != checked:
        raise InvalidMetadataError(f"metadata of session {metadata.id} cannot be restored as {checked}")
    if metadata.message_count != len(messages):
        raise InvalidMetadataError(
            f"session {checked}: metadata says message_count {metadata.message_count}, "
            f"restoring {len(messages)} messages"
        )
    if metadata.parent_id is not None:
        validate_session_id(metadata.parent_id)
    return metadata
