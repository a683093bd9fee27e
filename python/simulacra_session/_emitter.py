"""A small synchronous event emitter shared by conversations and managers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Any

__all__ = ["Emitter", "Listener"]

Listener = Callable[..., Any]

_log = logging.getLogger("simulacra_session")


class Emitter:
    """Calls listeners in registration order; a listener that raises is logged, never propagated.

    Persistence must not break because an observer failed, so one bad listener neither stops
    the others nor reaches the code that emitted the event.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[tuple[Listener, bool]]] = {}

    def on(self, event: str, listener: Listener) -> None:
        """Call ``listener`` on every ``event``."""
        self._listeners.setdefault(event, []).append((listener, False))

    def once(self, event: str, listener: Listener) -> None:
        """Call ``listener`` on the next ``event`` only."""
        self._listeners.setdefault(event, []).append((listener, True))

    def off(self, event: str, listener: Listener) -> None:
        """Remove one registration of ``listener`` for ``event``, if any."""
        entries = self._listeners.get(event, [])
        for index, (registered, _) in enumerate(entries):
            if registered == listener:
                del entries[index]
                return

    def has(self, event: str) -> bool:
        """Whether ``event`` has listeners (so a payload need not be built for nobody)."""
        return bool(self._listeners.get(event))

    def emit(self, event: str, *args: Any) -> None:
        """Call the listeners of ``event`` with ``args``."""
        entries = self._listeners.get(event)
        if not entries:
            return
        for entry in list(entries):
            listener, once = entry
            if once:  # this registration (equal to it: the same listener, once), never an ``on``
                with suppress(ValueError):  # an earlier listener may have taken it off
                    entries.remove(entry)
            try:
                listener(*args)
            except Exception:
                _log.exception("listener %r for %r raised", listener, event)

    def clear(self) -> None:
        """Remove every listener."""
        self._listeners.clear()
