"""Timestamps: one parser for every form written (the same on every Python), and ``stamp_after``,
the store's cheap stamp, which is ``next_timestamp`` text for text."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from simulacra_session import timestamps
from simulacra_session.timestamps import (
    format_timestamp,
    in_millis,
    next_timestamp,
    parse_timestamp,
    stamp_after,
    to_micros,
)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def at(micros: int) -> str:
    return format_timestamp(EPOCH + timedelta(microseconds=micros))


MOMENT = datetime(2025, 1, 2, 3, 4, 5, 122900, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-02T03:04:05.122900Z", MOMENT),  # ours: microseconds
        ("2025-01-02T03:04:05.123Z", MOMENT.replace(microsecond=123000)),  # the original's milliseconds
        ("2025-01-02T03:04:05.1229Z", MOMENT),  # any fraction length (3.10's fromisoformat refuses it)
        ("2025-01-02T03:04:05.1Z", MOMENT.replace(microsecond=100000)),
        ("2025-01-02T03:04:05.12290099Z", MOMENT),  # beyond microseconds: dropped, not rounded
        ("2025-01-02T03:04:05Z", MOMENT.replace(microsecond=0)),
        ("2025-01-02t03:04:05,1229z", MOMENT),  # RFC 3339's lower case, ISO 8601's decimal comma
        ("2025-01-02 03:04:05.1229", MOMENT),  # no zone: UTC
        ("2025-01-02T05:04:05.1229+02:00", MOMENT),
        ("2025-01-01T23:04:05.1229-04:00", MOMENT),
    ],
)
def test_parse_reads_every_written_form_as_utc(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "",
        "2025-01-02",  # a date alone
        "2025-01-02T03:04Z",  # no seconds
        "2025-01-02T03:04:05.Z",  # a point and no fraction
        "2025-01-02T03:04:05.1229ZZ",
        "2025-01-02T03:04:05+0200",  # the basic offset beside the extended date
        "2025-W01-4T03:04:05Z",  # a week date (3.11+'s fromisoformat reads it; we keep one grammar)
        "2025-02-30T03:04:05Z",  # no such day
        "2025-01-02T24:04:05Z",
        "2025-01-02T03:04:05+24:00",
        "\u0662025-01-02T03:04:05Z",  # a digit, but not an ASCII one
    ],
)
def test_parse_refuses_anything_else_naming_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="not an ISO 8601 timestamp") as caught:
        parse_timestamp(text)
    assert repr(text) in str(caught.value)


def test_instants_order_across_precisions() -> None:
    """The original library's milliseconds and our microseconds compare as instants."""
    texts = ["2025-01-02T03:04:05.123Z", "2025-01-02T03:04:05.1229Z", "2025-01-02T03:04:05.122950Z"]
    assert sorted(texts, key=to_micros) == [texts[1], texts[2], texts[0]]


def test_matches_next_timestamp_on_a_frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    for _ in range(2000):
        now_ns = rng.randrange(10**18, 4 * 10**18)
        frozen = EPOCH + timedelta(microseconds=now_ns // 1000)
        previous_micros = now_ns // 1000 + rng.randrange(-(10**7), 3)  # mostly behind, some ahead
        previous = at(previous_micros)

        class Frozen(datetime):
            moment = frozen

            @classmethod
            def now(cls, tz: object = None) -> Frozen:  # type: ignore[override]
                return cls.moment  # type: ignore[return-value]

        monkeypatch.setattr(timestamps.time, "time_ns", lambda now_ns=now_ns: now_ns)
        monkeypatch.setattr(timestamps, "datetime", Frozen)
        expected = next_timestamp(previous)
        text, micros = stamp_after(previous, (previous, previous_micros))
        monkeypatch.undo()
        assert text == expected
        assert micros == to_micros(text) > previous_micros


def test_to_micros_reads_offsets_and_milliseconds() -> None:
    assert to_micros("1970-01-01T00:00:01.5Z") == 1_500_000
    assert to_micros("1970-01-01T01:00:00+01:00") == 0
    with pytest.raises(ValueError, match="not an ISO 8601"):
        to_micros("yesterday")


def test_stamp_after_parses_only_what_it_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's last stamp (text and instant) spares the next one a parse while the stored
    ``updated_at`` is still that text; any other text is parsed; a stamp ahead of the clock
    is followed by the next microsecond; a value that is no string takes the general path."""
    ahead = "2999-01-01T00:00:00.000000Z"
    assert timestamps.stamp_after(ahead, None) == (at(to_micros(ahead) + 1), to_micros(ahead) + 1)
    past = "2020-01-01T00:00:00.000000Z"
    parsed: list[str] = []
    real = timestamps.to_micros
    monkeypatch.setattr(timestamps, "to_micros", lambda value: parsed.append(value) or real(value))
    known = (past, real(past))
    text, micros = timestamps.stamp_after(past, known)
    assert parsed == []  # known, and the clock is past it: nothing parsed
    assert micros == real(text) > known[1]
    text, micros = timestamps.stamp_after(past, ("2019-01-01T00:00:00.000000Z", 1))
    assert parsed == [past]  # another text known: the stored one is parsed
    assert micros == real(text) > known[1]
    text, micros = timestamps.stamp_after(None, known)  # no stored stamp: now
    assert micros == real(text)
    assert abs(micros - real(next_timestamp(None))) < 60_000_000


@pytest.mark.parametrize("year", [1, 999, 1000, 2026, 9999])
def test_every_year_is_written_as_it_is_read(year: int) -> None:
    """A year before 1000 is written with four digits (``strftime`` does not pad it on Linux),
    so what is written parses back to the same instant and sorts as a string among others."""
    moment = datetime(year, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    text = format_timestamp(moment)
    assert text == f"{year:04d}-01-02T03:04:05.123456Z"
    assert parse_timestamp(text) == moment
    assert in_millis(text) == f"{year:04d}-01-02T03:04:05.124Z"


def test_the_last_instant_rounds_to_the_last_millisecond_there_is() -> None:
    """Rounded up, a stamp in the last millisecond of year 9999 has no millisecond after it:
    it is written as that last one (it raised ``OverflowError``, so a restore or an import of
    such a session into a ``.json`` store failed naming nothing)."""
    assert in_millis("9999-12-31T23:59:59.9995Z") == "9999-12-31T23:59:59.999Z"
    assert in_millis("9999-12-31T23:59:59.999999Z") == "9999-12-31T23:59:59.999Z"
    assert in_millis("9999-12-31T23:59:59.998001Z") == "9999-12-31T23:59:59.999Z"
