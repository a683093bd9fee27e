"""Events a :class:`~simulacra_session.SessionManager` emits: small typed records.

Names are part of the API and never change: ``load``, ``save``, ``lifecycle_error`` and
``dispose`` (which carries no payload).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .messages import JsonObject, Message

__all__ = [
    "EventName",
    "LifecycleErrorEvent",
    "LoadEvent",
    "SaveEvent",
    "SessionEvent",
]

EventName = Literal["load", "save", "lifecycle_error", "dispose"]


@dataclass(frozen=True)
class LoadEvent:
    """A session was loaded from the store; ``messages`` is its resolved history."""

    id: str
    messages: Sequence[JsonObject]
    type: Literal["load"] = "load"


@dataclass(frozen=True)
class SaveEvent:
    """A session was written to the store; ``messages`` is the history that was saved."""

    id: str
    messages: Sequence[Message]
    type: Literal["save"] = "save"


@dataclass(frozen=True)
class LifecycleErrorEvent:
    """Background work failed (an auto-save, a child fork); nothing was raised to the caller."""

    error: BaseException
    operation: str
    context: Mapping[str, Any] = field(default_factory=dict)
    type: Literal["lifecycle_error"] = "lifecycle_error"


SessionEvent = LoadEvent | SaveEvent | LifecycleErrorEvent
