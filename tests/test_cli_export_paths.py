"""Where ``export -o`` may write: not as a session file of the file store it exports, where the
store would read it as a damaged session (every listing warned, every export of the whole store
went to ``.partial`` with exit 1, and ``doctor --repair`` set the backup aside as corrupt)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from cli_runs import run_cli, store_of


@pytest.mark.parametrize("name", ["backup.jsonl", "backup.json"])
def test_an_export_into_the_store_as_a_session_file_is_refused(tmp_path: Path, name: str) -> None:
    with store_of("jsonl", tmp_path) as url:
        before = sorted(os.listdir(url))
        refused = run_cli("--store", url, "export", "-o", os.path.join(url, name)).error_line()
        stem = name.split(".")[0]
        assert refused == (
            f"simulacra-session: {os.path.join(url, name)}: in the store {url}, where it would be read "
            f"as session {stem}: write the export elsewhere"
        )
        assert sorted(os.listdir(url)) == before
        assert run_cli("--store", url, "doctor").status == 0
        beside = os.path.join(url, "backup.txt")  # no session's name: the store leaves it alone
        assert run_cli("--store", url, "export", "-o", beside).status == 0
        assert run_cli("--store", url, "export").status == 0


def test_an_export_through_a_symlink_into_the_store_is_refused(tmp_path: Path) -> None:
    with store_of("jsonl", tmp_path) as url:
        link = tmp_path / "latest.jsonl"
        link.symlink_to(Path(url) / "latest.jsonl")
        assert (
            "where it would be read as session latest"
            in run_cli("--store", url, "export", "-o", str(link)).error_line()
        )
        assert not (Path(url) / "latest.jsonl").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="gives a file away: root")
@pytest.mark.parametrize("chown", ["works", "ENOSYS", "EPERM"])
def test_an_export_over_a_file_keeps_its_owner_where_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chown: str
) -> None:
    """The new file is given the owner of the one it replaces; a file system that keeps no
    owners (FUSE without ``chown``: ``ENOSYS``) failed the export naming its temp file."""
    backup = tmp_path / "backup.jsonl"
    backup.write_text("yesterday\n")
    os.chown(backup, 1234, 5678)
    if chown != "works":
        code = getattr(errno, chown)

        def refused(*args: object) -> None:
            raise OSError(code, os.strerror(code), str(args[0]))

        monkeypatch.setattr(os, "chown", refused)
    with store_of("jsonl", tmp_path) as url:
        assert run_cli("--store", url, "export", "-o", str(backup)).status == 0
    assert backup.read_text().startswith('{"format":"simulacra-session-export"')
    owner = (backup.stat().st_uid, backup.stat().st_gid)
    assert owner == ((1234, 5678) if chown == "works" else (0, os.getegid()))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
