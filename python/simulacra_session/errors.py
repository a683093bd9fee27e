"""Exceptions raised by simulacra-session.

Every error the library raises on purpose derives from :class:`SessionError`, and
where a caller would naturally catch a builtin, the class subclasses it too::

    SessionError
    ├── SessionNotFoundError
    ├── NoActiveSessionError
    ├── InvalidSessionIdError      (also ValueError)
    ├── InvalidMetadataError       (also ValueError)
    ├── ManagerDisposedError       (also RuntimeError)
    ├── SerializationError         (also TypeError)
    ├── CorruptSessionError
    ├── ConflictError              (a write from a stale view of the session, refused)
    ├── SessionOwnerError          (a session another owner writes: a framework adapter's)
    ├── UnsafePathError            (a symlink where a store keeps its own file or directory)
    ├── CaseClashError             (an id whose file another id holds: a case-insensitive disk)
    │   └── CaseNotKeptError       (an id whose case the disk would not keep)
    ├── EventLoopError             (a wait for a write in flight on another loop, not running)
    └── StoreError                 (a store's backend failed: disk, database)

Messages name the id, path or value at fault. ``OSError`` from the file system is
re-raised unchanged (it already carries errno and filename).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Revision

__all__ = [
    "CaseClashError",
    "CaseNotKeptError",
    "ConflictError",
    "CorruptSessionError",
    "EventLoopError",
    "InvalidMetadataError",
    "InvalidSessionIdError",
    "ManagerDisposedError",
    "NoActiveSessionError",
    "SerializationError",
    "SessionError",
    "SessionNotFoundError",
    "SessionOwnerError",
    "StoreError",
    "UnsafePathError",
]


class SessionError(Exception):
    """Base class of every error raised by simulacra-session."""


class SessionNotFoundError(SessionError, LookupError):
    """No session with the given id exists in the store."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session not found: {session_id}")
        self.session_id = session_id


class NoActiveSessionError(SessionError):
    """An operation needs a current session, and the manager has none."""

    def __init__(self) -> None:
        super().__init__("no active session")


class InvalidMetadataError(SessionError, ValueError):
    """Metadata given to a save is not what a session's metadata may hold: a key the store or
    manager owns, or a value of the wrong type. The message names the session and the keys."""


class ManagerDisposedError(SessionError, RuntimeError):
    """A disposed ``SessionManager`` was asked to do something."""

    def __init__(self, session_id: str | None) -> None:
        super().__init__(f"session manager is disposed (its last session: {session_id})")
        self.session_id = session_id


class InvalidSessionIdError(SessionError, ValueError):
    """A session id is not ``^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$``."""

    def __init__(self, session_id: object) -> None:
        super().__init__(
            f"invalid session id {session_id!r}: "
            "expected 1-128 characters of A-Z a-z 0-9 . _ - not starting with '.'"
        )
        self.session_id = session_id


class SerializationError(SessionError, TypeError):
    """A value cannot be written as JSON; the message names its path, e.g. ``$.messages[3].content``."""


class CorruptSessionError(SessionError):
    """Stored session data cannot be read back (bad JSON, wrong shape, broken fork chain,
    a checksum that does not match). ``path`` and ``offset`` name the file and the byte
    where it stops verifying, when a file store knows them (else ``None``)."""

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset


class ConflictError(SessionError):
    """A save or append made from a stale view of a session, refused with nothing written.

    The writer expected the session at revision ``expected`` (what it last loaded or wrote),
    but another writer changed it since: the store holds ``actual`` (``None``: no session).
    Nothing of either writer is lost. Reload the session and add the messages again
    (``SessionManager.recover``), or save them as a fork.
    """

    def __init__(self, session_id: str, expected: Revision, actual: Revision | None) -> None:
        found = f"revision {actual}" if actual is not None else "no session"
        super().__init__(
            f"session {session_id} changed since it was read: expected revision {expected}, "
            f"the store holds {found}"
        )
        self.session_id = session_id
        self.expected = expected
        self.actual = actual

    def __reduce__(self) -> tuple[type[ConflictError], tuple[str, Revision, Revision | None]]:
        return type(self), (self.session_id, self.expected, self.actual)  # pickled with its parts


class SessionOwnerError(SessionError):
    """A session that is not the caller's to read into a conversation or write: a framework
    adapter writes it (``owner``, its ``integration`` metadata, e.g. ``"langchain"``). A
    ``SessionManager`` refuses to load it, fork it attached or recover into it, nothing
    written: its saves would put messages there the framework cannot read. The framework
    adapters raise ``integrations.ForeignSessionError``, a subclass, for a session that is
    not theirs. ``message`` replaces the default wording (a subclass's)."""

    def __init__(self, session_id: str, owner: object, message: str | None = None) -> None:
        if message is None:
            message = (
                f"session {session_id} belongs to the integration {owner!r} (its 'integration' "
                "metadata), not to a SessionManager: refused, nothing written; keep a manager's "
                "sessions and a framework's apart (a store or keys of their own)"
            )
        super().__init__(message)
        self.session_id = session_id
        self.owner = owner

    def __reduce__(self) -> tuple[type[SessionOwnerError], tuple[object, ...]]:
        return type(self), (self.session_id, self.owner, str(self))  # pickled with its parts


class UnsafePathError(SessionError):
    """A symlink sits where a file store keeps a session file, a temp file, a fork index
    directory or one of its entries. The store refuses to go through it and leaves it as it
    is, so nothing outside its root is ever read, written or removed. ``path`` names it."""

    def __init__(self, path: str) -> None:
        super().__init__(f"refusing {path}: a symlink where the store keeps its own files")
        self.path = path


class CaseClashError(SessionError):
    """On a file system that compares names without case (macOS's and Windows' defaults,
    exFAT), ``session_id``'s file name opens ``path``, the file of an id that differs from it
    only in case. The file store refuses the id, reading, writing and removing nothing: it
    cannot keep both sessions there. ``path`` names the other id's file."""

    def __init__(self, session_id: str, path: str) -> None:
        super().__init__(f"session id {session_id!r} refused: {self._why(path)}")
        self.session_id = session_id
        self.path = path

    @staticmethod
    def _why(path: str) -> str:
        return (
            "this file system compares names without case, "
            f"and its file name opens {path}, the file of an id that differs from it only in case"
        )

    def __reduce__(self) -> tuple[type[CaseClashError], tuple[str, str]]:
        return type(self), (self.session_id, self.path)  # pickled with its parts


class CaseNotKeptError(CaseClashError):
    """On a file system that compares names without case and does not keep their case (one
    that lists every name in lower case: NTFS mounted by ``lowntfs-3g -o ignore_case``, FAT
    without long names), ``session_id``'s new file would be named ``path``: found there only
    as another id's. The file store refuses the id, writing nothing; ids in lower case work."""

    @staticmethod
    def _why(path: str) -> str:
        return (
            "this file system does not keep the case of names, "
            f"and its file would be named {path}, the file name of another id; nothing was written"
        )


class EventLoopError(SessionError):
    """A ``SessionManager``'s ``flush`` or ``save`` (or what waits for them: ``delete``,
    ``load``...) on one event loop found the session's write in flight on another event loop,
    open but not running. The write's end is heard on its own loop only, so that wait would
    never end: refused instead, nothing queued by the call. Run that loop until the write
    ends (or close it: the write is then taken back), then wait again. ``session_id`` names
    the session."""

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"session {session_id}: its write is in flight on another event loop, which"
            " is not running: run that loop to finish the write (or close it), then wait again"
        )
        self.session_id = session_id

    def __reduce__(self) -> tuple[type[EventLoopError], tuple[str]]:
        return type(self), (self.session_id,)  # pickled with its parts


class StoreError(SessionError):
    """A store's backend failed; the message names the operation and session id."""
