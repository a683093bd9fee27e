"""The file-system contract of the hot path (``atomic_write``, ``link_fork``, ``stamps``),
checked on both backends in one process (the ``hotpath`` fixture), and ``stamps`` of the
two side by side."""

from __future__ import annotations

import errno
import os
import stat
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from simulacra_session import InvalidSessionIdError, UnsafePathError, _pure

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

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
    if os.name == "posix":
        assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.skipif(os.name != "posix", reason="permission bits and umask are POSIX")
@pytest.mark.parametrize("mask", [0o000, 0o077])
def test_atomic_write_mode_is_exact_whatever_the_umask(
    hotpath: ModuleType, tmp_path: Path, mask: int
) -> None:
    umask = os.umask(mask)
    try:
        for mode in (0o600, 0o640, 0o666):
            hotpath.atomic_write(tmp_path / "s.json", b"x", False, mode)
            assert stat.S_IMODE((tmp_path / "s.json").stat().st_mode) == mode
            assert hotpath.link_fork(tmp_path, f"p{mode}", "s", False, ".json", mode | 0o100)
            assert stat.S_IMODE((tmp_path / f"p{mode}-forks").stat().st_mode) == mode | 0o100
    finally:
        os.umask(umask)
    for bad in (0o1000, 0o4700):
        with pytest.raises(ValueError, match="invalid mode"):
            hotpath.atomic_write(tmp_path / "s.json", b"x", False, bad)
        with pytest.raises(ValueError, match="invalid mode"):
            hotpath.link_fork(tmp_path, "p", "s", False, ".json", bad)


@pytest.mark.skipif(not hasattr(fcntl, "flock"), reason="needs flock")
def test_atomic_write_removes_residue_and_waits_for_a_live_writer(
    hotpath: ModuleType, tmp_path: Path
) -> None:
    """A temp file nobody holds locked is residue of a killed writer: the next writer of the
    same name removes it. One a live writer holds is its own: the next writer waits."""
    target = tmp_path / "s.json"
    (tmp_path / ".s.json.tmp").write_bytes(b"residue")
    hotpath.atomic_write(target, b"one")
    assert sorted(os.listdir(tmp_path)) == ["s.json"]
    live = os.open(tmp_path / ".s.json.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(live, fcntl.LOCK_EX)
    done = threading.Event()
    writer = threading.Thread(target=lambda: (hotpath.atomic_write(target, b"two"), done.set()))
    writer.start()
    assert not done.wait(0.2), "a live writer's temp file was taken"
    assert (tmp_path / ".s.json.tmp").exists()
    os.unlink(tmp_path / ".s.json.tmp")  # the live writer renames it away, then lets go
    os.close(live)
    writer.join()
    assert target.read_bytes() == b"two"
    assert sorted(os.listdir(tmp_path)) == ["s.json"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinks_are_refused_and_left_alone(hotpath: ModuleType, tmp_path: Path) -> None:
    """Nothing outside the directory is reached through a symlink at the target, the temp
    name, the child's file, the index directory or an index entry."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "victim.json").write_bytes(b"theirs")
    os.symlink(outside / "victim.json", root / "target.json")
    os.symlink(outside / "victim.json", root / ".temp.json.tmp")
    hotpath.atomic_write(root / "child.json", b"ours")
    os.symlink(outside, root / "p-forks")
    os.symlink(outside / "victim.json", root / "linked.json")
    (root / "q-forks").mkdir()
    os.symlink(outside / "victim.json", root / "q-forks" / "child.json")
    attempts = [
        (lambda: hotpath.atomic_write(root / "target.json", b"x"), root / "target.json"),
        (lambda: hotpath.atomic_write(root / "temp.json", b"x"), root / ".temp.json.tmp"),
        (lambda: hotpath.link_fork(root, "p", "child"), root / "p-forks"),
        (lambda: hotpath.link_fork(root, "r", "linked"), root / "linked.json"),
        (lambda: hotpath.link_fork(root, "q", "child"), root / "q-forks" / "child.json"),
    ]
    for attempt, refused in attempts:
        with pytest.raises(UnsafePathError) as caught:
            attempt()
        assert caught.value.path == str(refused)
        assert os.path.islink(refused)
    assert sorted(os.listdir(outside)) == ["victim.json"]
    assert (outside / "victim.json").read_bytes() == b"theirs"
    assert sorted(os.listdir(root)) == [
        ".temp.json.tmp",
        "child.json",
        "linked.json",
        "p-forks",
        "q-forks",
        "target.json",
    ]


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


@pytest.mark.skipif(os.name == "nt", reason="Windows reports these with its own error codes")
@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("", FileNotFoundError),
        ("f/", IsADirectoryError),
        ("f/.", IsADirectoryError),
        (".", IsADirectoryError),
        ("..", IsADirectoryError),
    ],
)
def test_atomic_write_refuses_a_path_naming_no_file(
    hotpath: ModuleType, tmp_path: Path, name: str, refused: type[OSError]
) -> None:
    """A path that names no file is refused with the path itself and nothing is written:
    ``ENOENT`` when empty, ``EISDIR`` when it names a directory (a trailing slash, ``.``,
    ``..``), as ``open`` says of most such paths; the compiled twin used to write ``f`` for
    ``f/``."""
    target = os.path.join(tmp_path, name) if name else ""
    with pytest.raises(refused) as raised:
        hotpath.atomic_write(target, b"x", fsync=False)
    assert (raised.value.errno, raised.value.filename) == (
        errno.ENOENT if name == "" else errno.EISDIR,
        target,
    )
    assert list(tmp_path.iterdir()) == []


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
    """Each name's ``os.lstat`` stamp, ``None`` when absent; errors name the whole path."""
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
    info = {name: os.lstat(tmp_path / name) for name in ("a.jsonl", "sub/b.json", "sub", "link", "dangling")}
    stamp = {name: (st.st_ino, st.st_size, st.st_mtime_ns) for name, st in info.items()}
    expected = [stamp["a.jsonl"], None, stamp["sub/b.json"], stamp["sub"]]
    if hasattr(os, "symlink"):
        expected += [stamp["link"], stamp["dangling"]]  # the links themselves, never followed
    assert native[0] == ("ok", expected)
    assert native[1] == ("ok", [])
    assert native[2] == ("NotADirectoryError", (errno.ENOTDIR, str(tmp_path / "a.jsonl/x")))
    assert native[3] == ("FileNotFoundError", (errno.ENOENT, str(tmp_path / "absent")))
    assert native[4] == native[5] == ("ValueError", "embedded null byte")


@pytest.mark.skipif(sys.platform != "linux", reason="a file name that is not UTF-8 (Linux takes any bytes)")
def test_stamps_of_a_name_that_is_not_utf8(hotpath: ModuleType, tmp_path: Path) -> None:
    """A name as ``os.listdir`` gives it (undecodable bytes as lone surrogates) is stat'ed."""
    name = os.fsdecode(b"caf\xe9.json")
    hotpath.atomic_write(str(tmp_path / name), b"{}")
    found = os.lstat(tmp_path / name)
    assert hotpath.stamps(tmp_path, [name]) == [(found.st_ino, found.st_size, found.st_mtime_ns)]
