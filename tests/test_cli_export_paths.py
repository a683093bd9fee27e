"""Where ``export -o`` may write: not as a session file of the file store it exports, where the
store would read it as a damaged session (every listing warned, every export of the whole store
went to ``.partial`` with exit 1, and ``doctor --repair`` set the backup aside as corrupt)."""

from __future__ import annotations

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
