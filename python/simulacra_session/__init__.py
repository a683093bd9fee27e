"""simulacra-session: durable AI-agent conversations.

Save, load, label, fork, list, delete and rename conversation sessions on pluggable
stores, with auto-save after every model response. ``BACKEND`` tells whether the
compiled hot path (``"native"``) or its pure-Python twin (``"pure"``) is in use.
"""

from __future__ import annotations

from ._backend import BACKEND
from .conversation import SimpleConversation
from .errors import (
    CorruptSessionError,
    InvalidSessionIdError,
    NoActiveSessionError,
    SerializationError,
    SessionError,
    SessionNotFoundError,
    StoreError,
)
from .events import EventName, LifecycleErrorEvent, LoadEvent, SaveEvent, SessionEvent
from .manager import SessionManager
from .messages import (
    AssistantMessage,
    Content,
    Message,
    RawContent,
    TextContent,
    ThinkingContent,
    ToolContent,
    ToolResultContent,
    UserMessage,
)
from .models import CheckpointState, SessionMetadata, StoredSession
from .protocols import Conversation, ForkIndexedStore, SessionStore
from .stores import FileSessionStore, InMemorySessionStore

__all__ = [
    "BACKEND",
    "AssistantMessage",
    "CheckpointState",
    "Content",
    "Conversation",
    "CorruptSessionError",
    "EventName",
    "FileSessionStore",
    "ForkIndexedStore",
    "InMemorySessionStore",
    "InvalidSessionIdError",
    "LifecycleErrorEvent",
    "LoadEvent",
    "Message",
    "NoActiveSessionError",
    "RawContent",
    "SaveEvent",
    "SerializationError",
    "SessionError",
    "SessionEvent",
    "SessionManager",
    "SessionMetadata",
    "SessionNotFoundError",
    "SessionStore",
    "SimpleConversation",
    "StoreError",
    "StoredSession",
    "TextContent",
    "ThinkingContent",
    "ToolContent",
    "ToolResultContent",
    "UserMessage",
]
