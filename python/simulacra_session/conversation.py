"""SimpleConversation: a ready Conversation for users without a conversation engine."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from ._backend import copy_json
from ._emitter import Emitter, Listener
from .errors import SerializationError
from .ids import new_uuid4
from .messages import Message, check_many
from .models import CheckpointState

__all__ = ["SimpleConversation"]


class SimpleConversation:
    """An in-memory message history that emits the events a SessionManager listens to
    (an ``AppendOnlyConversation``).

    ``append``/``extend`` store deep copies (saved messages are treated as immutable), fill a
    missing ``id`` (uuid4) and ``timestamp`` (ms), then emit ``message_complete`` once.
    """

    def __init__(self, messages: Iterable[Message] = (), *, is_checkpoint: bool = False) -> None:
        self._messages: list[Message] = [_copied(m) for m in _many(messages, "SimpleConversation()")]
        self._is_checkpoint = is_checkpoint
        self._checkpoint_state: CheckpointState | None = None
        self._events = Emitter()
        self._disposed = False

    @property
    def messages(self) -> Sequence[Message]:
        """The history, oldest first, as an immutable snapshot."""
        return tuple(self._messages)

    @property
    def history(self) -> Sequence[Message]:
        """The history itself, not a copy (``AppendOnlyConversation``): read it, never change it.

        It is only ever appended to (``load`` and ``clear`` put the history in a new list), so
        the sequence and its length are a snapshot that costs nothing to take, however long
        the history: what a SessionManager's auto-save takes.
        """
        return self._messages

    @property
    def is_checkpoint(self) -> bool:
        """Whether this conversation writes a checkpoint summary."""
        return self._is_checkpoint

    @property
    def checkpoint_state(self) -> CheckpointState | None:
        """The latest checkpoint, if any."""
        return self._checkpoint_state

    @checkpoint_state.setter
    def checkpoint_state(self, value: CheckpointState | None) -> None:
        self._checkpoint_state = value

    @property
    def disposed(self) -> bool:
        """Whether :meth:`dispose` has run."""
        return self._disposed

    def append(self, message: Message) -> Message:
        """Add one message and emit ``message_complete``; returns the stored copy."""
        stored = _stamped(message)
        self._messages.append(stored)
        self._events.emit("message_complete", stored)
        return stored

    def extend(self, messages: Iterable[Message]) -> list[Message]:
        """Add several messages, then emit ``message_complete`` once (with the last one)."""
        stored = [_stamped(m) for m in _many(messages, "SimpleConversation.extend")]
        if stored:
            self._messages.extend(stored)
            self._events.emit("message_complete", stored[-1])
        return stored

    def load(self, messages: Sequence[Message]) -> None:
        """Replace the history with copies of ``messages``; emits nothing."""
        self._messages = [_copied(m) for m in _many(messages, "SimpleConversation.load")]

    def clear(self) -> None:
        """Drop the history."""
        self._messages = []

    def spawn_child(self, *, fork_session: bool = False, is_checkpoint: bool = False) -> SimpleConversation:
        """Create a child conversation and emit ``create_child`` with it.

        With ``fork_session`` the child starts from a copy of this history.
        """
        child = SimpleConversation(self._messages if fork_session else (), is_checkpoint=is_checkpoint)
        child.checkpoint_state = self._checkpoint_state
        self._events.emit("create_child", child)
        return child

    def dispose(self) -> None:
        """Emit ``dispose`` once, then drop every listener."""
        if self._disposed:
            return
        self._disposed = True
        self._events.emit("dispose")
        self._events.clear()

    def on(self, event: str, listener: Listener) -> SimpleConversation:
        """Call ``listener`` on every ``event``."""
        self._events.on(event, listener)
        return self

    def once(self, event: str, listener: Listener) -> SimpleConversation:
        """Call ``listener`` on the next ``event`` only."""
        self._events.once(event, listener)
        return self

    def off(self, event: str, listener: Listener) -> SimpleConversation:
        """Stop calling ``listener`` on ``event``."""
        self._events.off(event, listener)
        return self

    def emit(self, event: str, *args: Any) -> None:
        """Emit ``event`` to its listeners (a raising listener is logged, not propagated)."""
        self._events.emit(event, *args)

    def __enter__(self) -> SimpleConversation:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.dispose()


def _many(messages: Iterable[Message], where: str) -> Iterable[Message]:
    """``messages``, unless it is one value (a ``str``, bytes, a ``Mapping``) or no iterable
    (``None``, an int): ``TypeError`` naming ``where`` and the type, as a store's ``save``
    raises it, before the history changes."""
    if type(messages) is not list:
        check_many(where, messages)
    return messages


def _copied(message: Message) -> Message:
    """A deep copy, as a dict (a read-only or other ``Mapping`` too, which ``JsonObject``
    allows): through the JSON hot path when the message is JSON (several times faster than
    ``deepcopy``), else ``deepcopy``. A value ``deepcopy`` cannot copy (one nested too deep,
    a ``MappingProxyType``) raises the hot path's ``SerializationError`` naming its path, as
    saving it would."""
    if not isinstance(message, dict) and isinstance(message, Mapping):
        message = dict(message)
    try:  # loads(dumps(message)), without the round trip
        return copy_json(message)  # type: ignore[return-value]
    except SerializationError as error:
        try:
            return copy.deepcopy(message)
        except Exception:  # RecursionError, TypeError (cannot pickle), copy.Error...
            raise error from None


def _stamped(message: Message) -> Message:
    """A deep copy, with an ``id`` and a ``timestamp`` filled in where missing."""
    stored = _copied(message)
    if "id" not in stored:
        stored["id"] = new_uuid4()
    if "timestamp" not in stored:
        stored["timestamp"] = time.time_ns() // 1_000_000
    return stored
