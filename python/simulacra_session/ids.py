"""Session ids: what is allowed, and how new ones are made.

Ids become file names and database keys, so they are checked before any I/O: 1-128
characters of ``A-Z a-z 0-9 . _ -``, not starting with ``.`` (no dotfiles, no ``..``).
"""

from __future__ import annotations

import os
import re

from .errors import InvalidSessionIdError

__all__ = [
    "SESSION_ID_PATTERN",
    "InvalidKeyError",
    "new_session_id",
    "new_uuid4",
    "session_id_for_key",
    "validate_session_id",
]

SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_HASHED = re.compile(r".*\.k[0-9a-f]{32}")  # the ending of an id made from a key
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class InvalidKeyError(InvalidSessionIdError):
    """A framework's key that is not a ``str``: keys are any string, so the fault is the type
    (an ``InvalidSessionIdError``, as before, and a ``ValueError``). ``key`` is the value;
    ``what`` names it in the message (a Claude Agent SDK key's part, say)."""

    def __init__(self, key: object, what: str = "key") -> None:
        # not the session-id pattern's message: the key's characters are not at fault
        super(InvalidSessionIdError, self).__init__(
            f"invalid {what} {key!r}: expected a str (any string), got {type(key).__name__}"
        )
        self.session_id = self.key = key
        self.what = what

    def __reduce__(self) -> tuple[type[InvalidKeyError], tuple[object, str]]:
        return type(self), (self.key, self.what)  # pickled with its parts


def validate_session_id(session_id: object) -> str:
    """Return ``session_id`` unchanged when valid, else raise :class:`InvalidSessionIdError`."""
    if type(session_id) is not str or SESSION_ID_PATTERN.fullmatch(session_id) is None:
        raise InvalidSessionIdError(session_id)
    return session_id


def new_uuid4() -> str:
    """A random version-4 UUID, as ``str(uuid.uuid4())`` makes it (the same 122 random bits
    from ``os.urandom``) at under half the cost: every message a conversation stamps needs one.
    """
    hex = os.urandom(16).hex()
    variant = "89ab"[int(hex[16], 16) & 3]  # RFC 4122: 10xx
    return f"{hex[:8]}-{hex[8:12]}-4{hex[13:16]}-{variant}{hex[17:20]}-{hex[20:]}"


def new_session_id() -> str:
    """A fresh random session id (a uuid4 string, as the original library uses)."""
    return new_uuid4()


def session_id_for_key(key: str) -> str:
    """The session id a framework's key (any string: ``project/session/subpath``, a user's
    name) is stored under: distinct keys get distinct ids.

    A key that is a valid session id is its own id, unless it ends as the ids made here do.
    Any other key becomes a readable part of it (at most 93 characters) and ``.k`` and 32 hex
    digits of its SHA-256, an ending no key used as is has: two keys share an id only
    if their hashes share 128 bits. Keep the key itself beside the session (the adapters of
    ``simulacra_session.integrations`` store it in its metadata). A key that is not a
    ``str`` raises ``InvalidKeyError`` naming its type and value.
    """
    if type(key) is not str:
        raise InvalidKeyError(key)
    if SESSION_ID_PATTERN.fullmatch(key) is not None and _HASHED.fullmatch(key) is None:
        return key
    import hashlib  # here: its OpenSSL costs a few ms at import, and only keys not ids need it

    readable = _UNSAFE.sub("_", key).lstrip(".")[:93] or "_"
    return f"{readable}.k{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"
