"""The file-system contract of the hot path (``atomic_write``, ``link_fork``, ``stamps``),
checked on both backends in one process (the ``hotpath`` fixture), and ``stamps`` of the
two side by side."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from simulacra_session import InvalidSessionIdError, _pure

try:
    from simulacra_session import _native
except ImportError:  # pragma: no cover - only without a build
    _native = None  # type: ignore[assignment]

needs_native = pytest.mark.skipif(_native is None, reason="the compiled extension is not built")


def test_atomic_write(hotpath: ModuleType, tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    hotpath.atomic_write(str(target), b"one")
    hotpath.atomic_write(target, b"two", False)
    assert target.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["s.json"]
    mode = stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_atomic_write_failures_leave_nothing(hotpath: ModuleType, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "s.json"
    with pytest.raises(FileNotFoundError) as caught:
        hotpath.atomic_write(missing, b"x")
    assert caught.value.filename == str(missing)
    assert caught.value.errno is not None
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(IsADirectoryError):  # cannot rename a file over a directory
        hotpath.atomic_write(tmp_path / "dir.json", b"x")
    assert sorted(os.listdir(tmp_path)) == ["dir.json"]
    with pytest.raises(TypeError):
        hotpath.atomic_write(tmp_path / "s.json", "text")
    assert sorted(os.listdir(tmp_path)) == ["dir.json"]


def test_link_fork(hotpath: ModuleType, tmp_path: Path) -> None:
    child = tmp_path / "child.json"
    hotpath.atomic_write(child, b"v1")
    assert hotpath.link_fork(tmp_path, "parent", "child") is True
    entry = tmp_path / "parent-forks" / "child.json"
    assert entry.stat().st_ino == child.stat().st_ino
    assert hotpath.link_fork(str(tmp_path), "parent", "child", False) is True  # already linked
    hotpath.atomic_write(child, b"v2")
    assert entry.stat().st_ino != child.stat().st_ino
    assert hotpath.link_fork(tmp_path, "parent", "child") is True
    assert entry.stat().st_ino == child.stat().st_ino
    assert entry.read_bytes() == b"v2"
    assert os.listdir(tmp_path / "parent-forks") == ["child.json"]


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", ".hidden", "x" * 129, "a\n", 7])
def test_link_fork_rejects_bad_ids_before_io(hotpath: ModuleType, tmp_path: Path, bad: Any) -> None:
    with pytest.raises(InvalidSessionIdError):
        hotpath.link_fork(tmp_path, bad, "child")
    with pytest.raises(InvalidSessionIdError):
        hotpath.link_fork(tmp_path, "parent", bad)
    assert os.listdir(tmp_path) == []


def test_link_fork_missing_source(hotpath: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hotpath.link_fork(tmp_path, "parent", "ghost")


def _stamps_outcome(twin: ModuleType, directory: Any, names: list[str]) -> tuple[str, Any]:
    try:
        return ("ok", twin.stamps(directory, names))
    except OSError as error:
        return (type(error).__name__, (error.errno, error.filename))
    except ValueError as error:
        return ("ValueError", str(error))


@needs_native
@pytest.mark.skipif(os.name != "posix", reason="Windows stats each joined path: no directory errors")
def test_stamps_parity(tmp_path: Path) -> None:
    """Each name's ``os.stat`` stamp, ``None`` when absent; errors name the whole path."""
    (tmp_path / "a.jsonl").write_bytes(b"x" * 1234)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_bytes(b"{}")
    names = ["a.jsonl", "absent", "sub/b.json", "sub"]
    if hasattr(os, "symlink"):
        os.symlink("a.jsonl", tmp_path / "link")
        os.symlink("nowhere", tmp_path / "dangling")
        names += ["link", "dangling"]
    cases: list[tuple[Any, list[str]]] = [
        (tmp_path, names),
        (str(tmp_path), []),
        (tmp_path, ["a.jsonl/x"]),  # through a file: not a directory
        (tmp_path / "absent", ["a.jsonl"]),
        (tmp_path, ["nul\0byte"]),
        (str(tmp_path) + "\0", ["a.jsonl"]),
    ]
    native, pure = ([_stamps_outcome(twin, *case) for case in cases] for twin in (_native, _pure))
    assert native == pure
    info = {name: os.stat(tmp_path / name) for name in ("a.jsonl", "sub/b.json", "sub")}
    stamp = {name: (st.st_ino, st.st_size, st.st_mtime_ns) for name, st in info.items()}
    expected = [stamp["a.jsonl"], None, stamp["sub/b.json"], stamp["sub"]]
    if hasattr(os, "symlink"):
        expected += [stamp["a.jsonl"], None]  # a link is followed; a dangling one is absent
    assert native[0] == ("ok", expected)
    assert native[1] == ("ok", [])
    assert native[2] == ("NotADirectoryError", (errno.ENOTDIR, str(tmp_path / "a.jsonl/x")))
    assert native[3] == ("FileNotFoundError", (errno.ENOENT, str(tmp_path / "absent")))
    assert native[4] == native[5] == ("ValueError", "embedded null byte")
