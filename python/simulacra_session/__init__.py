"""simulacra-session: durable AI-agent conversations.

Save, load, label, fork, list, delete and rename conversation sessions on pluggable
stores, with auto-save after every model response. ``BACKEND`` tells whether the
compiled hot path (``"native"``) or its pure-Python twin (``"pure"``) is in use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._backend import BACKEND
from ._version import __version__
from .conversation import SimpleConversation
from .errors import (
    CaseClashError,
    CaseNotKeptError,
    ConflictError,
    CorruptSessionError,
    EventLoopError,
    InvalidMetadataError,
    InvalidSessionIdError,
    ManagerDisposedError,
    NoActiveSessionError,
    SerializationError,
    SessionError,
    SessionNotFoundError,
    SessionOwnerError,
    StoreError,
    UnsafePathError,
)
from .events import EventName, LifecycleErrorEvent, LoadEvent, SaveEvent, SessionEvent
from .history import ResolvedSession, read_tail, resolve_history, truncate
from .manager import SessionManager
from .messages import (
    AssistantMessage,
    Content,
    JsonObject,
    Message,
    RawContent,
    TextContent,
    ThinkingContent,
    ToolContent,
    ToolResultContent,
    UserMessage,
)
from .models import CheckpointState, Revision, SessionMetadata, StoredSession
from .protocols import (
    AppendableSessionStore,
    AppendOnlyConversation,
    ChainLoadingStore,
    Conversation,
    ForkIndexedStore,
    RestorableSessionStore,
    RevisionedSessionStore,
    SessionStore,
    TailReadingStore,
    TruncatableStore,
)
from .stores import AdapterSessionStore, FileSessionStore, InMemorySessionStore, SessionAdapter, SessionRow

if TYPE_CHECKING:
    from .stores.sql import SqlSessionStore as SqlSessionStore

# SqlSessionStore is left out of __all__ so that a star import never needs SQLAlchemy.
__all__ = [
    "BACKEND",
    "AdapterSessionStore",
    "AppendOnlyConversation",
    "AppendableSessionStore",
    "AssistantMessage",
    "CaseClashError",
    "CaseNotKeptError",
    "ChainLoadingStore",
    "CheckpointState",
    "ConflictError",
    "Content",
    "Conversation",
    "CorruptSessionError",
    "EventLoopError",
    "EventName",
    "FileSessionStore",
    "ForkIndexedStore",
    "InMemorySessionStore",
    "InvalidMetadataError",
    "InvalidSessionIdError",
    "JsonObject",
    "LifecycleErrorEvent",
    "LoadEvent",
    "ManagerDisposedError",
    "Message",
    "NoActiveSessionError",
    "RawContent",
    "ResolvedSession",
    "RestorableSessionStore",
    "Revision",
    "RevisionedSessionStore",
    "SaveEvent",
    "SerializationError",
    "SessionAdapter",
    "SessionError",
    "SessionEvent",
    "SessionManager",
    "SessionMetadata",
    "SessionNotFoundError",
    "SessionOwnerError",
    "SessionRow",
    "SessionStore",
    "SimpleConversation",
    "StoreError",
    "StoredSession",
    "TailReadingStore",
    "TextContent",
    "ThinkingContent",
    "ToolContent",
    "ToolResultContent",
    "TruncatableStore",
    "UnsafePathError",
    "UserMessage",
    "__version__",
    "read_tail",
    "resolve_history",
    "truncate",
]


def __getattr__(name: str) -> Any:
    """``SqlSessionStore`` on first access (it imports SQLAlchemy, the ``sql`` extra)."""
    if name == "SqlSessionStore":
        from .stores.sql import SqlSessionStore

        return SqlSessionStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
