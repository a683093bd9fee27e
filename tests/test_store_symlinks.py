"""Nothing outside the root, ever: a symlink wherever the file store keeps a file or a
directory is refused with ``UnsafePathError`` naming it (or, for a listing, skipped), left
where it is, and nothing outside the root is read, written, linked or removed."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import simulacra_session.stores.file.index as file_index
from simulacra_session import UnsafePathError
from simulacra_session.stores.file import FileSessionStore
from simulacra_session.stores.file.residue import sweep
from simulacra_session.testing import msg

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="symlinks need a privilege on Windows")

Snapshot = dict[str, tuple[bytes, int, int, int]]


def snapshot(directory: Path) -> Snapshot:
    """Every file under ``directory``: bytes, mode, mtime and inode."""
    return {
        str(path.relative_to(directory)): (
            path.read_bytes(),
            *(lambda s: (s.st_mode, s.st_mtime_ns, s.st_ino))(path.stat()),
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the root, holding files under every name the store might use."""
    directory = tmp_path / "outside"
    directory.mkdir()
    for name in ("s.jsonl", "s.json", "c.jsonl", "c.json", "victim"):
        (directory / name).write_bytes(b"not the store's: " + name.encode())
    (directory / "corrupt").write_bytes(b"{ not json")
    return directory


def run(call: Awaitable[Any]) -> Any:
    return asyncio.run(call)  # type: ignore[arg-type]


def refused(path: Path, call: Callable[[], Awaitable[Any]]) -> None:
    with pytest.raises(UnsafePathError) as caught:
        run(call())
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    assert path.is_symlink(), "the symlink was not left alone"


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
@pytest.mark.parametrize("target", ["s.jsonl", "s.json", "corrupt"])
def test_session_file(tmp_path: Path, outside: Path, file_format: str, target: str) -> None:
    """A session file in either format (even one pointing at something unreadable, which a
    save would otherwise set aside) is refused by every operation on its session."""
    root = tmp_path / "root"
    root.mkdir()
    before = snapshot(outside)
    link = root / ("s." + file_format)
    os.symlink(outside / target, link)
    store = FileSessionStore(root, format=file_format)  # type: ignore[arg-type]
    other = FileSessionStore(root, format="json" if file_format == "jsonl" else "jsonl")
    for each in (store, other):
        refused(link, lambda each=each: each.load("s"))
        refused(link, lambda each=each: each.save("s", [msg("x")]))
        refused(link, lambda each=each: each.append("s", [msg("x")]))
        refused(link, lambda each=each: each.delete("s"))
        assert run(each.list()) == []  # skipped, with a warning
    run(store.save("t", [msg("t")]))
    assert [m.id for m in run(store.list())] == ["t"]
    assert sweep(root) == []
    assert snapshot(outside) == before
    assert link.is_symlink()


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_delete_with_a_symlink_at_the_other_name(tmp_path: Path, outside: Path, file_format: str) -> None:
    """A session kept in a real file, a symlink at its other format's name: ``delete`` refuses
    before it removes anything (it locks every name first), whichever name comes first."""
    root = tmp_path / "root"
    store = FileSessionStore(root, format=file_format)  # type: ignore[arg-type]
    run(store.save("s", [msg("keep me")]))
    kept = root / f"s.{file_format}"
    data = kept.read_bytes()
    before = snapshot(outside)
    other = "json" if file_format == "jsonl" else "jsonl"
    link = root / f"s.{other}"
    os.symlink(outside / f"s.{other}", link)
    refused(link, lambda: store.delete("s"))
    assert kept.read_bytes() == data, "the session's file was removed"
    assert snapshot(outside) == before


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_fork_index_directory(tmp_path: Path, outside: Path, file_format: str) -> None:
    """The attack the issue found: ``{parent}-forks`` a symlink to another directory. A fork
    saved under it is refused before it is written; forks() refuses; deleting the fork or the
    parent leaves the symlink (with a warning) and the other directory as they are."""
    root = tmp_path / "root"
    store = FileSessionStore(root, format=file_format)  # type: ignore[arg-type]
    run(store.save("p", [msg("p")]))
    run(store.save("c", [msg("c")], {"parent_id": "p"}))
    link = root / "p-forks"
    for entry in link.iterdir():
        entry.unlink()
    link.rmdir()
    before = snapshot(outside)
    os.symlink(outside, link)
    refused(link, lambda: store.save("c", [msg("c2")], {"parent_id": "p"}))
    refused(link, lambda: store.save("d", [msg("d")], {"parent_id": "p"}))
    assert run(store.load("d")) is None, "a refused fork was written"
    assert run(store.load("c")).messages == [msg("c")]  # type: ignore[union-attr]
    refused(link, lambda: store.forks("p"))
    assert run(store.delete("c")) is True
    assert run(store.delete("p")) is True
    assert sweep(root) == []
    assert snapshot(outside) == before
    assert link.is_symlink()


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_fork_index_entry(tmp_path: Path, outside: Path, file_format: str) -> None:
    """An entry of the index (a hard link the store makes) replaced by a symlink."""
    root = tmp_path / "root"
    store = FileSessionStore(root, format=file_format)  # type: ignore[arg-type]
    run(store.save("p", [msg("p")]))
    run(store.save("c", [msg("c")], {"parent_id": "p"}))
    entry = root / "p-forks" / f"c.{file_format}"
    entry.unlink()
    before = snapshot(outside)
    os.symlink(outside / f"c.{file_format}", entry)
    refused(entry, lambda: store.save("c", [msg("c2")], {"parent_id": "p"}))
    assert [m.id for m in run(store.forks("p"))] == ["c"]  # read from c's own file, not the entry
    assert run(store.delete("c")) is True
    assert entry.is_symlink()
    assert run(store.delete("p")) is True  # its index, entries and all: the link itself goes
    assert snapshot(outside) == before


def test_temp_files(tmp_path: Path, outside: Path) -> None:
    """A symlink at a session's temp file name: its save is refused; sweeps leave it."""
    root = tmp_path / "root"
    store = FileSessionStore(root)
    run(store.save("s", [msg("s")]))
    run(store.save("p", [msg("p")]))
    before = snapshot(outside)
    temp = root / ".s.jsonl.tmp"
    os.symlink(outside / "s.jsonl", temp)
    link_temp = root / "p-forks" / ".c.jsonl.0123456789abcdef.tmp"
    (root / "p-forks").mkdir()
    os.symlink(outside / "c.jsonl", link_temp)
    fresh = FileSessionStore(root)
    assert run(fresh.load("p")) is not None  # its first use sweeps its index: the link stays
    refused(temp, lambda: fresh.save("s", [msg("s2")]))
    assert run(fresh.load("s")).messages == [msg("s")]  # type: ignore[union-attr]
    assert sweep(root) == []
    assert temp.is_symlink()
    assert link_temp.is_symlink()
    assert snapshot(outside) == before


def test_no_hard_links_marker(tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A symlink at ``.no-hard-links``: the store takes the marker as set (forks() scans)
    and never writes through it; written where hard links fail, it is refused."""
    root = tmp_path / "root"
    root.mkdir()
    before = snapshot(outside)
    marker = root / ".no-hard-links"
    os.symlink(outside / "victim", marker)
    store = FileSessionStore(root)
    run(store.save("p", [msg("p")]))
    run(store.save("c", [msg("c")], {"parent_id": "p"}))
    assert not (root / "p-forks").exists()
    assert [m.id for m in run(store.forks("p"))] == ["c"]
    assert run(store.delete("c")) is True
    monkeypatch.setattr(file_index, "link_fork", lambda *args: False)
    other = tmp_path / "other"
    other.mkdir()
    os.symlink(outside / "victim", other / "..no-hard-links.tmp")
    refused(
        other / "..no-hard-links.tmp",
        lambda: FileSessionStore(other).save("c", [msg("c")], {"parent_id": "p"}),
    )
    assert snapshot(outside) == before
    assert marker.is_symlink()
