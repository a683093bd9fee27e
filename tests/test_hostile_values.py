"""Stored values a hand edit, another tool or damage can leave that Python cannot hold: a
timestamp whose offset moves it out of the years a datetime holds, a count of thousands of
digits, a stamp with no instant after it. Each is damage named where it is read, or a write
that goes on, never a bare ``OverflowError`` or ``ValueError`` breaking the whole store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cli_runs import run_cli
from simulacra_session import CorruptSessionError, FileSessionStore, InvalidMetadataError
from simulacra_session.timestamps import next_timestamp, parse_timestamp

HUGE = 10**5000  # more digits than CPython turns into text
_HUGE_TEXT = "1" + "0" * 5000  # HUGE as JSON writes it (json.dumps cannot)


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_out_of_the_years_a_datetime_holds_is_not_one(stamp: str) -> None:
    with pytest.raises(ValueError, match="not an ISO 8601 timestamp"):
        parse_timestamp(stamp)


def _marked(value: object) -> object:
    """``value`` with ``HUGE`` marked where JSON text must hold its digits."""
    if value is HUGE:
        return "HUGE"
    if isinstance(value, list):
        return [_marked(item) for item in value]
    if isinstance(value, dict):
        return {key: _marked(item) for key, item in value.items()}
    return value


def _document(root: Path, name: str, **metadata: object) -> None:
    stamps = {"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
    given = {key: _marked(value) for key, value in metadata.items()}
    text = json.dumps({"metadata": {**stamps, "message_count": 0, **given}, "messages": []})
    (root / f"{name}.json").write_text(text.replace('"HUGE"', _HUGE_TEXT))


@pytest.mark.parametrize(
    "damage",
    [
        {"created_at": "0001-01-01T00:00:00+01:00"},
        {"message_count": HUGE},
        {"fork_message_count": HUGE},
        {"message_count": [HUGE]},
        {"checkpoint_state": {"a": HUGE}},
    ],
    ids=["stamp before year 1", "huge count", "huge fork count", "huge count in a list", "huge in a state"],
)
def test_one_session_holding_such_a_value_is_named_and_skipped(
    tmp_path: Path, damage: dict[str, object]
) -> None:
    """It made ``list()`` (so ``list``, ``tree``, ``doctor``, ``export``) fail for the whole
    store with ``OverflowError``, or with CPython's digit limit, naming nothing."""
    store = FileSessionStore(tmp_path)
    asyncio.run(store.save("healthy", [{"role": "user", "content": "hi"}]))
    _document(tmp_path, "bad", parent_id="healthy", **damage)
    assert [item.id for item in asyncio.run(store.list())] == ["healthy"]
    with pytest.raises(CorruptSessionError, match=r"bad\.json"):
        asyncio.run(store.load("bad"))
    for command in (["list"], ["tree"], ["doctor"]):
        done = run_cli("--store", str(tmp_path), *command)
        assert done.status in (0, 1), (command, done.err)
        assert "bad.json" in done.err + done.out, command


@pytest.mark.parametrize(
    "metadata",
    [{"fork_message_count": HUGE}, {"fork_message_count": [HUGE]}, {"checkpoint_state": {"a": HUGE}}],
)
def test_a_count_no_session_holds_is_refused_on_save(tmp_path: Path, metadata: dict[str, object]) -> None:
    store = FileSessionStore(tmp_path)
    with pytest.raises(InvalidMetadataError, match=next(iter(metadata))):
        asyncio.run(store.save("f", [], {"parent_id": "p", **metadata}))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("previous", ["9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999Z"])
@pytest.mark.parametrize("millis", [False, True])
def test_a_stamp_with_no_instant_after_it_is_followed_by_itself(previous: str, millis: bool) -> None:
    """Every later write of a session stamped so raised ``OverflowError``: it could never be
    written again. Its stamps stay at the last instant instead."""
    stamped = next_timestamp(previous, millis=millis)
    assert stamped.startswith("9999-12-31T23:59:59.999")
    assert parse_timestamp(stamped) >= parse_timestamp(previous.replace("999999", "999000"))


@pytest.mark.parametrize("extension", ["jsonl", "json"])
def test_a_session_stamped_at_the_last_instant_takes_writes(tmp_path: Path, extension: str) -> None:
    last = "9999-12-31T23:59:59.999999Z"
    message = {"role": "user", "content": "hi"}
    metadata = {"id": "s", "created_at": last, "updated_at": last, "message_count": 1}
    (tmp_path / "s.json").write_text(json.dumps({"metadata": metadata, "messages": [message]}))
    store = FileSessionStore(tmp_path, format=extension)  # type: ignore[arg-type]
    asyncio.run(store.append("s", [message]))
    asyncio.run(store.save("s", [message, message, message]))
    loaded = asyncio.run(store.load("s"))
    assert loaded is not None
    assert (len(loaded.messages), loaded.metadata.updated_at[:23]) == (3, last[:23])


def test_a_journal_whose_count_is_huge_is_damage_named(tmp_path: Path) -> None:
    """Its check ("N messages, metadata says M") wrote the count out, failing with CPython's
    digit limit instead of naming the file."""
    stamps = '"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"'
    header = f'["simulacra-session",1,{{{stamps},"message_count":{_HUGE_TEXT}}}]\n'
    (tmp_path / "s.jsonl").write_text(header + '{"a":1}\n')
    with pytest.raises(CorruptSessionError, match="metadata says <an int of 16610 bits>"):
        asyncio.run(FileSessionStore(tmp_path).load("s"))
