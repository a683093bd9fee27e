"""Conversation messages, as the Simulacra engine shapes them.

Messages stay plain dicts (JSON-ready, cheap to save); these ``TypedDict``s only describe
them. Keys and block types not listed here are kept on every round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict

__all__ = [
    "AssistantMessage",
    "Content",
    "JsonObject",
    "Message",
    "RawContent",
    "TextContent",
    "ThinkingContent",
    "ToolContent",
    "ToolResultContent",
    "UserMessage",
]


#: One value where a sequence of messages belongs: iterated, its characters, bytes or keys
#: would pass for messages (``save(id, "hello")``, ``SimpleConversation("hello")``).
SINGLE_VALUES = (str, bytes, bytearray, memoryview, Mapping)


def check_many(where: str, messages: object) -> None:
    """``messages`` as a sequence of messages, else a ``TypeError`` naming ``where`` (``save of
    session s1``, ``SimpleConversation.load``) and the type: one value (``SINGLE_VALUES``) or
    no iterable (``None``, an int), before anything is written."""
    if isinstance(messages, SINGLE_VALUES) or not _iterable(messages):
        raise TypeError(
            f"{where}: messages must be a sequence of messages (a list of dicts),"
            f" not a {type(messages).__name__}"
        )


def _iterable(value: object) -> bool:
    """Whether ``iter(value)`` works (it does not consume an iterator: it returns it)."""
    try:
        iter(value)  # type: ignore[call-overload]
    except TypeError:
        return False
    return True


class _BlockExtras(TypedDict, total=False):
    id: str
    timestamp: int
    extended: dict[str, Any]


class TextContent(_BlockExtras):
    """Plain text written by the user or the model."""

    type: Literal["text"]
    text: str


class ThinkingContent(_BlockExtras):
    """The model's reasoning, when the provider exposes it."""

    type: Literal["thinking"]
    thought: str


class ToolContent(_BlockExtras):
    """A tool call requested by the model."""

    type: Literal["tool"]
    tool_request_id: str
    tool: str
    params: dict[str, Any]


class ToolResultContent(_BlockExtras):
    """The result of a tool call, sent back to the model."""

    type: Literal["tool_result"]
    tool: str
    tool_request_id: str
    result: Any


class RawContent(_BlockExtras):
    """Provider-specific data the engine passes through untouched."""

    type: Literal["raw"]
    model_kind: str
    data: Any


Content = TextContent | ThinkingContent | ToolContent | ToolResultContent | RawContent


class _MessageExtras(TypedDict, total=False):
    id: str
    timestamp: int


class UserMessage(_MessageExtras):
    """A message from the user (tool results travel as user messages too)."""

    role: Literal["user"]
    content: list[Content]


class AssistantMessage(_MessageExtras):
    """A message from the model."""

    role: Literal["assistant"]
    content: list[Content]


Message = UserMessage | AssistantMessage

#: Any JSON object: what a store and a SessionManager accept as a message. ``Message`` is the
#: engine's typed shape of one; a framework's own items (see ``simulacra_session.integrations``)
#: are stored as they are, verbatim, and come back equal.
JsonObject = Mapping[str, Any]
