"""ISO 8601 UTC timestamps as stored in session metadata.

We write microseconds (``2026-01-02T03:04:05.123456Z``); files from the original library
carry milliseconds, so ordering always compares parsed instants, never strings.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "format_timestamp",
    "next_timestamp",
    "parse_timestamp",
    "stamp_after",
    "to_micros",
]

_ONE_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z`` or an offset) into an aware UTC datetime.

    Raises ``ValueError`` naming the value when it is not a timestamp.
    """
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as UTC with microseconds and a ``Z`` suffix."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def next_timestamp(previous: str | None = None) -> str:
    """Now, or one microsecond after ``previous`` when the clock has not moved past it.

    Stores stamp each save with this so a session's ``updated_at`` strictly increases even
    when two saves land in the same clock tick or the wall clock steps back.
    """
    now = datetime.now(timezone.utc)
    if previous is not None:
        last = parse_timestamp(previous)
        if now <= last:
            now = last + _ONE_MICROSECOND
    return format_timestamp(now)


def to_micros(value: str) -> int:
    """Microseconds since the epoch of a timestamp (``ValueError`` as for ``parse_timestamp``)."""
    return (parse_timestamp(value) - _EPOCH) // _ONE_MICROSECOND


def stamp_after(previous: Any, known: tuple[str, int] | None) -> tuple[str, int]:
    """``next_timestamp(previous)`` and its instant in microseconds, at a fraction of the cost,
    for a store stamping every auto-save.

    ``known`` is what the store kept of its last stamp (text and instant), so nothing is
    parsed while ``previous`` is still that text; the clock is read as ``datetime.now``
    reads it, and each second's text is formatted once. ``previous`` is a stored value, so
    maybe not a string: then the general path's error or ``None`` handling applies.
    """
    global _second
    if type(previous) is str:
        last = known[1] if known is not None and known[0] == previous else to_micros(previous)
        now = time.time_ns() // 1000  # datetime.now floors the same clock to microseconds
        if now > last:
            seconds, micros = divmod(now, 1_000_000)
            cached, prefix = _second
            if cached != seconds:
                prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
                _second = (seconds, prefix)
            return f"{prefix}.{micros:06d}Z", now
    text = next_timestamp(previous)  # the clock has not moved past it, or no text: the general path
    return text, to_micros(text)
