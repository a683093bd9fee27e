"""ISO 8601 UTC timestamps as stored in session metadata.

We write microseconds (``2026-01-02T03:04:05.123456Z``); files from the original library
carry milliseconds, so ordering always compares parsed instants, never strings. Every
timestamp is read by ``parse_timestamp``, which accepts the same texts on every Python
(3.10's ``datetime.fromisoformat`` alone takes only 3 or 6 fraction digits and no ``Z``).
"""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "format_timestamp",
    "in_millis",
    "next_timestamp",
    "parse_timestamp",
    "stamp_after",
    "to_micros",
]

_ONE_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LAST_MOMENT = datetime.max.replace(tzinfo=timezone.utc)  # year 9999's last microsecond
_LAST_MILLIS = (_LAST_MOMENT - _EPOCH) // timedelta(milliseconds=1)
_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text
_last_millis = -1  # the last millisecond since the epoch that next_timestamp(millis=True) gave
_millis_lock = threading.Lock()  # worker threads of several stores stamp at once
# date, time, fraction, offset: what the original library (milliseconds), this one (microseconds)
# and other ISO 8601 writers put in a session's metadata
_TIMESTAMP = re.compile(
    r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:[.,](\d+))?(?:[Zz]|([+-]\d\d:\d\d))?", re.ASCII
)


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 date and time into an aware UTC datetime.

    Takes a ``T`` (or space) between date and time, a fraction of any length (read to the
    microsecond, the rest dropped), and ``Z``, an offset ``+HH:MM`` or nothing (UTC).
    Raises ``ValueError`` naming the value when it is not such a timestamp.
    """
    match = _TIMESTAMP.fullmatch(value)
    if match is not None:
        date, clock, fraction, offset = match.groups()
        micros = (fraction or "")[:6].ljust(6, "0")
        try:  # the text normalized to the one form fromisoformat reads on every Python
            parsed = datetime.fromisoformat(f"{date}T{clock}.{micros}{offset or '+00:00'}")
            return parsed.astimezone(timezone.utc)
        except (ValueError, OverflowError):  # a day, hour or offset out of range; or an offset
            pass  # moving year 1 or 9999 out of the years a datetime holds
    raise ValueError(f"not an ISO 8601 timestamp: {value!r}")


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as UTC with microseconds and a ``Z`` suffix (a year of four
    digits, zero-padded, as ``parse_timestamp`` reads it: ``strftime`` pads it on no platform
    alike)."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def next_timestamp(previous: str | None = None, *, millis: bool = False) -> str:
    """Now, or one microsecond after ``previous`` when the clock has not moved past it.

    Stores stamp each save with this so a session's ``updated_at`` strictly increases even
    when two saves land in the same clock tick or the wall clock steps back (but after the
    last instant of year 9999, which a hand-edited stamp may hold: that one stays). ``millis``
    stamps as the original library does (``2026-01-02T03:04:05.123Z``): texts of one length,
    which sort as strings in the order of their instants, in whole milliseconds after
    ``previous`` and after every earlier such stamp of this process (so saves of different
    sessions in one process do not tie either).
    """
    if millis:
        return _next_millis(previous)
    now = datetime.now(timezone.utc)
    if previous is not None:
        last = parse_timestamp(previous)
        if now <= last:  # year 9999's last microsecond has none after it: it stays
            now = last + _ONE_MICROSECOND if last < _LAST_MOMENT else last
    return format_timestamp(now)


def _next_millis(previous: str | None) -> str:
    global _last_millis
    after = to_micros(previous) // 1000 + 1 if previous is not None else 0
    with _millis_lock:  # the process's sequence follows the clock, whatever a session's stamp says
        _last_millis = max(time.time_ns() // 1_000_000, _last_millis + 1)
        millis = min(max(_last_millis, after), _LAST_MILLIS)  # none after year 9999's last
    return _millis_text(millis)


def in_millis(value: str) -> str:
    """``value`` as the original library writes stamps (``2026-01-02T03:04:05.123Z``), rounded up
    to a whole millisecond: it sorts as a string among such stamps as its instant does
    (``ValueError`` as for ``parse_timestamp``). The last millisecond of year 9999, which has
    none after it, takes what it holds."""
    return _millis_text(min(-(-to_micros(value) // 1000), _LAST_MILLIS))


def _millis_text(millis: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=millis)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


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
