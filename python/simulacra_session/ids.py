"""Session ids: what is allowed, and how new ones are made.

Ids become file names and database keys, so they are checked before any I/O: 1-128
characters of ``A-Z a-z 0-9 . _ -``, not starting with ``.`` (no dotfiles, no ``..``).
"""

from __future__ import annotations

import re
import uuid

from .errors import InvalidSessionIdError

__all__ = ["SESSION_ID_PATTERN", "new_session_id", "validate_session_id"]

SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


def validate_session_id(session_id: object) -> str:
    """Return ``session_id`` unchanged when valid, else raise :class:`InvalidSessionIdError`."""
    if type(session_id) is not str or SESSION_ID_PATTERN.fullmatch(session_id) is None:
        raise InvalidSessionIdError(session_id)
    return session_id


def new_session_id() -> str:
    """A fresh random session id (a uuid4 string, as the original library uses)."""
    return str(uuid.uuid4())
