"""``parse_journal`` and ``tail_metadata`` of version 1 journals (no checksums, still read)
against the readings they replaced (split into lines; then join and one ``loads``).

The offsets-and-``loads_lines`` reading must give the same journal, or the same error, for
every input: journals as version 1 wrote them, each of their torn tails, and damaged ones;
and ``tail_metadata`` the same metadata from any end of any of them. Version 2 (checksums)
is tested in ``test_journal_checksums``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulacra_session import CorruptSessionError, FileSessionStore
from simulacra_session._backend import loads
from simulacra_session.stores.file import journal as _journal

HEADER = b'["simulacra-session",'
COMMIT = b'["metadata",'


def to_v1(data: bytes) -> bytes:
    """A version 2 journal as version 1 wrote it: the same lines, without their checksums."""
    lines = []
    for line in data.split(b"\n"):
        if line.startswith(b'["simulacra-session",2,'):
            line = b'["simulacra-session",1,' + line[len(HEADER) + 2 : -12] + b"]"
        elif line.startswith(COMMIT):
            line = line[:-23] + b"]"
        lines.append(line)
    return b"\n".join(lines)


def reference(data: bytes, path: str) -> _journal.Journal:
    """The former ``parse_journal``, line for line (less its warning), the header's version
    now checked first whatever follows it."""
    _journal.check_version(data, path)
    lines = data.split(b"\n")
    end = len(data) - len(lines[-1])
    index = len(lines) - 2
    metadata: dict[str, Any] | None = None
    while index >= 0:
        line = lines[index]
        end -= len(line) + 1
        metadata = _journal._commit_record(line, 1)
        if metadata is not None:
            end += len(line) + 1
            break
        index -= 1
    if metadata is None or not (index == 0 or lines[0].startswith(HEADER)):
        raise CorruptSessionError(f"corrupt session file {path}: no journal header")
    torn = len(data) - end
    body = lines[1:index]
    message_lines = [line for line in body if not line.startswith(COMMIT)]
    superseded = sum(len(line) + 1 for line in body if line.startswith(COMMIT))
    if index > 0:
        superseded += len(lines[0]) + 1
    last_commit = len(lines[index]) + 1
    try:
        parsed = loads(b"[" + b",".join(message_lines) + b"]")
    except ValueError as error:
        raise CorruptSessionError(f"corrupt session file {path}: {error}") from None
    assert isinstance(parsed, list)
    messages = [m[1] if isinstance(m, list) and len(m) == 2 and m[0] == "message" else m for m in parsed]
    count = metadata.get("message_count")
    if count != len(messages):
        raise CorruptSessionError(
            f"corrupt session file {path}: {len(messages)} messages, metadata says {count!r}"
        )
    return _journal.Journal(metadata, messages, end, torn, superseded, last_commit, 1)


def outcome(parse: Any, data: bytes) -> Any:
    try:
        return parse(data, "p.jsonl")
    except CorruptSessionError as error:
        return ("corrupt", str(error))


def same(data: bytes) -> None:
    assert outcome(_journal.parse_journal, data) == outcome(reference, data), data


def msg(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A journal with appends, a metadata-only append and messages that are not objects."""
    root = tmp_path_factory.mktemp("journal")
    store = FileSessionStore(root, fsync=False)

    async def write() -> None:
        await store.save("s", [msg("one"), ["message", 1], "two"], {"label": "a"})  # type: ignore[list-item]
        await store.append("s", [msg("three é🙂")], {"label": "b"})
        await store.append("s", [], {"label": "c"})
        await store.append("s", [["metadata", {"x": 1}], None])  # type: ignore[list-item]

    asyncio.run(write())
    return to_v1((root / "s.jsonl").read_bytes())


def test_version_1_as_it_was_written(journal: bytes) -> None:
    same(journal)
    parsed = _journal.parse_journal(journal, "p")
    assert parsed.messages == [
        msg("one"),
        ["message", 1],
        "two",
        msg("three é🙂"),
        ["metadata", {"x": 1}],
        None,
    ]
    assert parsed.superseded > 0
    assert parsed.torn == 0


def test_every_torn_tail(journal: bytes) -> None:
    for cut in range(len(journal) + 1):
        same(journal[:cut])


@pytest.mark.parametrize(
    "edit",
    [
        lambda lines: [lines[0], b"1,2", *lines[2:]],  # two values on one line: read as before
        lambda lines: [lines[0], b'"a', b'b"', *lines[3:]],  # one string over two lines
        lambda lines: [lines[0], b"", *lines[2:]],  # an empty line
        lambda lines: [lines[0], b"[" * 128 + b"]" * 128, *lines[2:]],  # nested too deep in the list
        lambda lines: [lines[0], b'[ "message", 7]', *lines[2:]],  # unwrapped by value, not prefix
        lambda lines: [*lines[:3], b'["metadata",{', *lines[3:]],  # a damaged superseded commit
        lambda lines: [*lines[:3], b'["metadata",\xff]', *lines[3:]],  # invalid UTF-8 in one
        lambda lines: [lines[0], b"\xff", *lines[2:]],  # invalid UTF-8 in a message
        lambda lines: [b'["simulacra-session",3,{}]', *lines[1:]],  # a later version, commits after
        lambda lines: [b'["simulacra-session",3', *lines[1:]],  # a header cut before its version ends
        lambda lines: [b"{}", *lines[1:]],  # no header
        lambda lines: lines[-2:],  # a commit record and nothing before it
        lambda lines: [lines[0]],  # the header alone, without its newline
    ],
)
def test_damaged_journals(journal: bytes, edit: Any) -> None:
    data = b"\n".join(edit(journal.split(b"\n")))
    same(data)
    same(data + b"\n")


@given(st.data())
def test_random_damage(journal: bytes, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(journal)))
    cut = data.draw(st.integers(0, 3))
    insert = data.draw(st.sampled_from([b"", b"\n", b",", b"1", b'"', b"]", b"\xff", b"\n\n", b",1"]))
    same(journal[:at] + insert + journal[at + cut :])


def test_a_long_journal_of_auto_saves(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, fsync=False)

    async def write() -> None:
        await store.save("s", [msg("0")])
        for index in range(1, 60):
            await store.append("s", [msg(str(index))])

    asyncio.run(write())
    data = to_v1((tmp_path / "s.jsonl").read_bytes())
    same(data)
    assert len(_journal.parse_journal(data, "p").messages) == 60


def reference_tail(tail: bytes, starts_file: bool) -> dict[str, Any] | None:
    """The former ``tail_metadata``: every line split out, then looked at from the last (a
    header with message lines after it and a ``message_count`` other than 0 is no state)."""
    lines = tail.split(b"\n")
    first = 0 if starts_file else 1
    for index in range(len(lines) - 2, first - 1, -1):
        metadata = _journal._commit_record(lines[index], 1)
        if metadata is not None:
            after = index < len(lines) - 2
            header = lines[index].startswith(b'["simulacra-session",')
            return None if header and after and metadata.get("message_count") != 0 else metadata
    return None


def same_tails(data: bytes) -> None:
    for start in range(len(data) + 1):
        tail = data[start:]
        assert _journal.tail_metadata(tail, start == 0, 1) == reference_tail(tail, start == 0), (data, start)


def test_tail_metadata_from_every_end(journal: bytes) -> None:
    for cut in range(0, len(journal) + 1, 7):
        same_tails(journal[:cut])
    same_tails(journal)


@given(st.data())
def test_tail_metadata_of_random_damage(journal: bytes, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(journal)))
    insert = data.draw(st.sampled_from([b"", b"\n", b"\n\n", b"]", b"\xff", b'["metadata",{}]\n']))
    damaged = journal[:at] + insert + journal[at + data.draw(st.integers(0, 3)) :]
    start = data.draw(st.integers(0, len(damaged)))
    tail = damaged[start:]
    assert _journal.tail_metadata(tail, start == 0, 1) == reference_tail(tail, start == 0)
