"""``export -o FILE`` where FILE cannot be replaced by a rename: its directory takes no new
file, or it is a mount point (a single file given to a container). FILE is rewritten in place
only once the export is whole: an export that fails, or leaves sessions out, keeps it as it
was (it used to be written in place as the export went, yesterday's backup cut short)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_runs import run_cli, store_of
from simulacra_session import FileSessionStore
from simulacra_session.cli import export_output

OLD = b"yesterday's backup\n" * 500  # longer than today's export: FILE is cut to size


@pytest.fixture
def no_new_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """The export's directory takes no new file: its temp file is refused, as a read-only
    directory would refuse it (which root, running these tests, is not refused)."""
    real = os.open

    def refusing(path: str, flags: int, *args: int, **kwargs: int) -> int:
        if os.path.basename(path).startswith(".backup.") and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing)


def _body(export: bytes) -> bytes:
    """An export without its header line, which says when it was made."""
    return export.split(b"\n", 1)[1]


def _backup(tmp_path: Path) -> Path:
    backup = tmp_path / "out" / "backup.jsonl"
    backup.parent.mkdir()
    backup.write_bytes(OLD)
    backup.chmod(0o640)
    return backup


@pytest.mark.usefixtures("no_new_files")
def test_a_whole_export_rewrites_the_file_in_place(tmp_path: Path) -> None:
    backup = _backup(tmp_path)
    inode = backup.stat().st_ino
    with store_of("jsonl", tmp_path) as url:
        expected = run_cli("--store", url, "export").out.encode()
        exported = run_cli("--store", url, "export", "-o", str(backup))
    assert (exported.status, exported.err.splitlines()[-1]) == (0, f"exported 5 session(s) to {backup}")
    assert _body(backup.read_bytes()) == _body(expected)
    assert (backup.stat().st_ino, oct(backup.stat().st_mode & 0o777)) == (inode, "0o640")
    assert os.listdir(backup.parent) == ["backup.jsonl"]


@pytest.mark.usefixtures("no_new_files")
def test_an_export_that_fails_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    backup = _backup(tmp_path)
    with store_of("jsonl", tmp_path) as url:
        failed = run_cli("--store", url, "export", "root", "mistyped", "-o", str(backup))
    assert "mistyped" in failed.error_line()
    assert backup.read_bytes() == OLD
    assert os.listdir(backup.parent) == ["backup.jsonl"]


@pytest.mark.usefixtures("no_new_files")
def test_an_export_that_left_sessions_out_keeps_the_file_and_says_so(tmp_path: Path) -> None:
    """Beside a file that can be replaced, it would go to ``FILE.partial``; here nothing can."""
    backup = _backup(tmp_path)
    root = tmp_path / "s"
    asyncio.run(FileSessionStore(root).save("fine", [{"role": "user", "content": "a"}]))
    (root / "torn.jsonl").write_bytes(b'{"torn')
    exported = run_cli("--store", str(root), "export", "-o", str(backup))
    assert exported.status == 2
    assert "torn.jsonl" in exported.err.splitlines()[0]  # the warning naming what was left out
    assert exported.err.splitlines()[-1] == (
        f"simulacra-session: {backup}: kept as it was, as the export left sessions out, and its "
        "directory takes no backup.jsonl.partial: export to another directory"
    )
    assert backup.read_bytes() == OLD
    assert os.listdir(backup.parent) == ["backup.jsonl"]


@pytest.mark.usefixtures("no_new_files")
def test_a_new_file_where_its_directory_takes_none_is_an_error_naming_it(tmp_path: Path) -> None:
    backup = tmp_path / "out" / "backup.jsonl"
    backup.parent.mkdir()
    with store_of("jsonl", tmp_path) as url:
        failed = run_cli("--store", url, "export", "-o", str(backup))
    assert failed.error_line() == f"simulacra-session: {backup}: Permission denied"
    assert os.listdir(backup.parent) == []


@pytest.mark.usefixtures("no_new_files")
def test_a_spool_that_fails_names_its_directory_and_leaves_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export is spooled in ``$TMPDIR`` first: a ``$TMPDIR`` that fails is named, not FILE."""
    backup = _backup(tmp_path)
    with store_of("jsonl", tmp_path) as url:
        monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "gone"))
        failed = run_cli("--store", url, "export", "-o", str(backup))
    assert failed.error_line().startswith(f"simulacra-session: {tmp_path / 'gone'}")
    assert backup.read_bytes() == OLD


@contextlib.contextmanager
def _bind_mounted(source: Path, point: Path) -> Iterator[None]:
    """``source`` mounted over ``point``, a file, as ``docker run -v`` gives one file."""
    point.touch()
    done = subprocess.run(["mount", "--bind", str(source), str(point)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"no bind mount here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(point)], check=True)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounts a file: root")
def test_an_export_over_a_mount_point_rewrites_it_in_place(tmp_path: Path) -> None:
    """A rename over a mount point fails (``EBUSY``): the whole export, made durable beside it,
    is copied over it, and the temp file removed. A failed export leaves it as it was."""
    source = tmp_path / "host" / "backup.jsonl"
    source.parent.mkdir()
    source.write_bytes(OLD)
    backup = tmp_path / "container" / "backup.jsonl"
    backup.parent.mkdir()
    with store_of("jsonl", tmp_path) as url, _bind_mounted(source, backup):
        failed = run_cli("--store", url, "export", "mistyped", "-o", str(backup))
        assert "mistyped" in failed.error_line()
        assert backup.read_bytes() == OLD
        expected = run_cli("--store", url, "export").out.encode()
        exported = run_cli("--store", url, "export", "-o", str(backup))
        assert exported.status == 0, exported.err
        assert exported.err.splitlines()[-1] == f"exported 5 session(s) to {backup}"
        assert _body(backup.read_bytes()) == _body(expected)
        assert os.listdir(backup.parent) == ["backup.jsonl"]
    assert _body(source.read_bytes()) == _body(expected)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_rewrite_in_place_waits_for_its_end(signum: signal.Signals) -> None:
    """A Ctrl-C (or SIGTERM) landing while FILE is rewritten in place is raised once it is
    done, never leaving FILE half old and half new."""

    class Stopped(Exception):
        pass

    def stop(number: int, frame: object) -> None:
        raise Stopped(number)

    def held() -> None:
        with export_output._signals_held():
            signal.raise_signal(signum)
            finished.append(True)

    finished: list[bool] = []
    kept = signal.signal(signum, stop)
    try:
        with pytest.raises(Stopped):
            held()
    finally:
        signal.signal(signum, kept)
    assert finished
    assert signal.getsignal(signum) is kept
