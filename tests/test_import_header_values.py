"""An export whose header gives an int too long to write out (over the 4300 digits CPython
formats) as its ``version`` or its ``sessions`` count is refused as damage naming the file,
the value given by its size, never written out; the store is left untouched. Before,
``import_sessions`` raised CPython's bare ``ValueError`` ("Exceeds the limit (4300 digits) for
integer string conversion") formatting the error, which the CLI printed naming no file."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from cli_runs import run_cli
from simulacra_session import CorruptSessionError, InMemorySessionStore
from simulacra_session.transfer import EXPORT_FORMAT, import_sessions

HUGE = b"1" + b"0" * 5000
HEADERS = {
    "version": b'{"format":"%b","version":%b}',
    "sessions": b'{"format":"%b","version":1,"sessions":%b}',
    "negative sessions": b'{"format":"%b","version":1,"sessions":-%b}',
}
SAID = {
    "version": "export version <an int of 16610 bits>; this release reads version 1",
    "sessions": "its header's session count <an int of 16610 bits> is no count",
    "negative sessions": "its header's session count <an int of 16610 bits> is no count",
}
STAMP = "2026-01-01T00:00:00Z"
METADATA = {"created_at": STAMP, "updated_at": STAMP, "message_count": 0}
RECORD = json.dumps({"id": "a", "metadata": METADATA, "messages": []}).encode() + b"\n"


def _export(tmp_path: Path, key: str, value: bytes = HUGE) -> Path:
    path = tmp_path / f"{key.replace(' ', '-')}.export"
    path.write_bytes(HEADERS[key] % (EXPORT_FORMAT.encode(), value) + b"\n" + RECORD)
    return path


@pytest.mark.parametrize("key", HEADERS)
async def test_a_huge_int_in_the_header_is_out_of_range_naming_the_file(key: str, tmp_path: Path) -> None:
    path = _export(tmp_path, key)
    store = InMemorySessionStore()
    with pytest.raises(CorruptSessionError, match=re.escape(f"{path}: {SAID[key]}")):
        await import_sessions(store, path)
    named = io.BytesIO(path.read_bytes())
    named.name = "exports/named.export"  # a stream's name, as an open file's
    with pytest.raises(CorruptSessionError, match=re.escape(f"exports/named.export: {SAID[key]}")):
        await import_sessions(store, named)
    with pytest.raises(CorruptSessionError, match=re.escape(f"<stream>: {SAID[key]}")):
        await import_sessions(store, io.BytesIO(path.read_bytes()))
    assert await store.list() == []


async def test_a_count_beyond_any_session_count_is_no_count(tmp_path: Path) -> None:
    """A count that formats but no store could hold (2**63) is refused with the others; one
    that could is checked against the lines as before."""
    said = f"its header's session count {2**63} is no count"
    with pytest.raises(CorruptSessionError, match=re.escape(said)):
        await import_sessions(InMemorySessionStore(), _export(tmp_path, "sessions", b"%d" % 2**63))
    fits = _export(tmp_path, "sessions", b"%d" % (2**63 - 1))
    with pytest.raises(
        CorruptSessionError, match=re.escape(f"1 sessions where its header announces {2**63 - 1}")
    ):
        await import_sessions(InMemorySessionStore(), fits)


@pytest.mark.parametrize("key", HEADERS)
def test_the_command_names_the_file(key: str, tmp_path: Path) -> None:
    path = _export(tmp_path, key)
    line = run_cli("--store", str(tmp_path / "store"), "import", str(path)).error_line()
    assert str(path) in line
    assert SAID[key] in line
    assert "4300" not in line
