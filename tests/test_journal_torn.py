"""A journal's torn tail (``stores.file.torn``): an append a crash cut short is cut off by the
next write, with no copy kept (it was never committed); damage after the committed state,
whatever it looks like, is kept in a copy first. Both load as the state before, reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import CorruptSessionError, FileSessionStore
from simulacra_session.stores.file import journal, records
from simulacra_session.stores.file.check import check_files
from simulacra_session.stores.file.torn import cut_short
from simulacra_session.testing import msg, texts
from test_journal_parse import to_v1

#: Messages whose lines use the whole of JSON: escapes, non-ASCII, a lone surrogate, numbers,
#: literals, nesting, and messages that are not objects.
ODD: list[Any] = [
    {
        "role": "user",
        "content": 'a "quote"\\ \n\t\u0001 é 😀 \ud83d',
        "n": -12.5e-7,
        "x": [True, False, None, 0, {}],
    },
    ["message", {"a": []}],
    None,
    "text",
    12,
    {"role": "assistant", "content": [{"type": "text", "text": "ok " * 30}], "big": 10**30},
]


@pytest.fixture
def small_seals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seal records after every 200 bytes of message lines, so a small append holds some."""
    monkeypatch.setattr(records, "SEAL_EVERY", 200)


def journals(root: Path) -> tuple[bytes, bytes]:
    """A journal as saved, then with an append (label "after") whose lines have seal records."""
    store = FileSessionStore(root, fsync=False)
    asyncio.run(store.save("s", [msg("one"), msg("two")], {"label": "before"}))
    saved = (root / "s.jsonl").read_bytes()
    asyncio.run(store.append("s", [*ODD, msg("three"), *ODD], {"label": "after"}))
    return saved, (root / "s.jsonl").read_bytes()


def test_every_prefix_of_an_append_is_an_append_cut_short(tmp_path: Path, small_seals: None) -> None:
    saved, appended = journals(tmp_path)
    assert appended.count(records.SEAL_PREFIX) >= 2
    end = len(saved)
    for cut in range(end + 1, len(appended)):
        torn = appended[:cut]
        assert cut_short(torn, end), cut
        parsed = journal.parse_journal(torn, "p")
        assert (parsed.committed_end, len(parsed.messages)) == (end, 2), cut
        assert "cut short" in str(parsed.damage), cut
    assert not cut_short(appended, end)  # a whole append: its commit record ended it


def _line_end(data: bytes, after: int, line: int) -> int:
    """Where the ``line``-th line after offset ``after`` ends (its newline included)."""
    for _ in range(line):
        after = data.index(b"\n", after) + 1
    return after


def _broken_line(saved: bytes, appended: bytes) -> bytes:
    at = appended.index(b":", len(saved))  # the first message line's first colon, set to ";"
    return appended[:at] + b";" + appended[at + 1 : _line_end(appended, len(saved), 3) + 20]


def _seal_changed(saved: bytes, appended: bytes) -> bytes:
    at = appended.index(records.SEAL_PREFIX) + len(records.SEAL_PREFIX) + 1  # its lines' checksum
    changed = b"%x" % (int(appended[at : at + 1], 16) ^ 1)
    return appended[:at] + changed + appended[at + 1 : appended.index(b"\n", at) + 40]


def _message_changed(saved: bytes, appended: bytes) -> bytes:
    at = appended.index(b"three", len(saved))  # well-formed still: its commit record tells
    return appended[:at] + b"thrEe" + appended[at + 5 :]


#: Each case: how the damaged file is made from the journal saved and appended to, and
#: whether a write keeps a copy of it (damage), or not (an append cut short).
CASES: dict[str, tuple[Callable[[bytes, bytes], bytes], bool]] = {
    "cut in a line": (lambda saved, appended: appended[: len(saved) + 150], False),
    "cut after a seal": (
        lambda saved, appended: appended[: appended.index(b"\n", appended.index(records.SEAL_PREFIX)) + 1],
        False,
    ),
    "cut in the commit record": (lambda saved, appended: appended[:-5], False),
    "cut before its last newline": (lambda saved, appended: appended[:-1], False),
    "a byte in a whole line broken": (_broken_line, True),
    "a message changed under its commit record": (_message_changed, True),
    "a seal record that does not verify": (_seal_changed, True),
    "a commit record that does not verify": (
        lambda saved, appended: appended.replace(b'"after"', b'"aftEr"'),
        True,
    ),
    # a power cut: the file's new size on disk, not all of its data (zeros to the end)
    "zeros": (lambda saved, appended: saved + bytes(4096), False),
    "zeros after an append cut short": (
        lambda saved, appended: appended[: len(saved) + 150] + bytes(64),
        False,
    ),
    "zeros, then bytes": (lambda saved, appended: saved + bytes(64) + appended[len(saved) + 64 :], True),
    "zeros after damage": (lambda saved, appended: saved + b'{"role": "user"}\n' + bytes(64), True),
    "a line that is no message": (lambda saved, appended: saved + b'[1,2]\n{"role":"us', True),
    "a line with spaces": (lambda saved, appended: saved + b'{"role": "user"}\n', True),
    "bytes after a whole value": (lambda saved, appended: saved + b'{"role":"user"}x', True),
    "a torn header": (lambda saved, appended: saved + saved[:30], True),
}


@pytest.mark.parametrize("write", ["append", "truncate", "save", "repair"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_write_keeps_a_copy_of_damage_not_of_an_append_cut_short(
    tmp_path: Path, small_seals: None, case: str, write: str
) -> None:
    make, kept = CASES[case]
    saved, appended = journals(tmp_path / "source")
    damaged = make(saved, appended)
    assert damaged not in (saved, appended)
    root = tmp_path / "store"
    root.mkdir()
    path = root / "s.jsonl"
    path.write_bytes(damaged)
    store = FileSessionStore(root, fsync=False)
    stored = asyncio.run(store.load("s"))
    assert stored is not None
    assert texts(stored.messages) == ["one", "two"]  # the state before
    assert stored.damage is not None
    assert stored.damage.offset == len(saved)
    assert ("cut short" in str(stored.damage)) is not kept
    expected = ["one", "two", "four"]
    if write == "append":
        asyncio.run(store.append("s", [msg("four")]))
    elif write == "truncate":
        asyncio.run(store.truncate("s", 1))
        expected = ["one"]
    elif write == "save":
        asyncio.run(store.save("s", [msg("one"), msg("two"), msg("four")]))
    else:
        [problem] = asyncio.run(check_files(store, repair=True))
        assert (problem.kind, problem.repaired) == ("torn_tail", True)
        assert ("damage" if kept else "an append cut short") in problem.detail
        assert path.read_bytes() == saved
        expected = ["one", "two"]
    copies = list(root.glob("s.jsonl.corrupt-*"))
    assert [copy.read_bytes() for copy in copies] == ([damaged] if kept else [])
    loaded = asyncio.run(FileSessionStore(root).load("s"))
    assert loaded is not None
    assert (texts(loaded.messages), loaded.damage) == (expected, None)


def test_a_version_1_journal_cut_short_is_kept_aside(tmp_path: Path) -> None:
    """Version 1 has no checksums to tell an append cut short from damage: a copy is kept."""
    store = FileSessionStore(tmp_path, fsync=False)
    asyncio.run(store.save("s", [msg("one")]))
    path = tmp_path / "s.jsonl"
    torn = to_v1(path.read_bytes()) + b'{"role":"user","con'
    path.write_bytes(torn)
    asyncio.run(FileSessionStore(tmp_path, fsync=False).append("s", [msg("two")]))
    assert [copy.read_bytes() for copy in tmp_path.glob("s.jsonl.corrupt-*")] == [torn]
    assert texts(asyncio.run(FileSessionStore(tmp_path).load("s")).messages) == ["one", "two"]  # type: ignore[union-attr]


@pytest.mark.parametrize("appended", [False, True])
def test_list_shows_a_cut_journal_exactly_when_load_reads_it(tmp_path: Path, appended: bool) -> None:
    """Every cut of a journal's last write: ``list()`` gives the metadata ``load()`` gives, and
    skips (with a warning) the file ``load()`` finds corrupt: a full save whose commit record
    is cut leaves a header whose messages no record commits, which no load reads."""
    root = tmp_path / "s"
    store = FileSessionStore(root)
    asyncio.run(store.save("s", [msg("one"), msg("two")]))
    if appended:
        asyncio.run(store.append("s", [msg("three")]))
    data = (root / "s.jsonl").read_bytes()
    last = data.rfind(b"\n", 0, len(data) - 1) + 1  # the last record's line
    for cut in range(last - 1, len(data)):
        (root / "s.jsonl").write_bytes(data[:cut])
        cut_store = FileSessionStore(root)
        try:
            loaded = asyncio.run(cut_store.load("s"))
        except CorruptSessionError:
            loaded = None
        listed = asyncio.run(cut_store.list())
        assert [meta.message_count for meta in listed] == ([loaded.metadata.message_count] if loaded else [])
