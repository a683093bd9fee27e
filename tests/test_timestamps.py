"""``next_timestamp_after``: the store's cheap stamp is ``next_timestamp``, text for text."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from simulacra_session import timestamps
from simulacra_session.timestamps import format_timestamp, next_timestamp, next_timestamp_after, to_micros

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def at(micros: int) -> str:
    return format_timestamp(EPOCH + timedelta(microseconds=micros))


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
        text, micros = next_timestamp_after(previous, previous_micros)
        monkeypatch.undo()
        assert text == expected
        assert micros == to_micros(text) > previous_micros


def test_to_micros_reads_offsets_and_milliseconds() -> None:
    assert to_micros("1970-01-01T00:00:01.5Z") == 1_500_000
    assert to_micros("1970-01-01T01:00:00+01:00") == 0
    with pytest.raises(ValueError, match="not an ISO 8601"):
        to_micros("yesterday")
