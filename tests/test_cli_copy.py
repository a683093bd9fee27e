"""``copy``: a store is never copied onto itself, however its directory is spelled; and the
summary of ``--on-conflict skip`` tells the sessions already there from those passed over (a
fork that would inherit another conversation's history), each counted once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from cli_runs import run_cli
from session_samples import message
from simulacra_session import FileSessionStore


def _fill(root: Path) -> None:
    asyncio.run(FileSessionStore(root).save("one", [message("user", "hello")]))


@pytest.mark.parametrize(
    "spelling", ["{s}/", "{s}/.", "{parent}/./s", "{parent}/s/../s", "link", "file:{s}?format=json"]
)
def test_copying_a_store_onto_itself_is_refused_however_spelled(tmp_path: Path, spelling: str) -> None:
    source = tmp_path / "s"
    _fill(source)
    (tmp_path / "link").symlink_to(source, target_is_directory=True)
    target = spelling.format(s=source, parent=tmp_path) if spelling != "link" else str(tmp_path / "link")
    before = sorted(os.listdir(source))
    line = run_cli("copy", str(source), target, "--on-conflict", "skip").error_line()
    assert (
        line == f"simulacra-session: {source}: copying a store onto itself ({target} is the same directory)"
    )
    assert sorted(os.listdir(source)) == before


def test_copying_into_a_new_directory_beside_it_still_works(tmp_path: Path) -> None:
    _fill(tmp_path / "s")
    done = run_cli("copy", str(tmp_path / "s"), str(tmp_path / "s2"), "--json")
    assert done.json() == {"written": 1, "replaced": 0, "skipped": 0, "passed_over": 0}


async def _diverged(tmp_path: Path) -> None:
    """A source whose ``main`` has two forks (one a fork of the other) and a session apart; a
    target holding another conversation under the id ``main``."""
    source = FileSessionStore(tmp_path / "a")
    await source.save("main", [message("user", "A plan"), message("assistant", "A reply")])
    await source.save("fork", [message("user", "fork own")], {"parent_id": "main", "fork_message_count": 2})
    await source.save("deeper", [message("user", "deeper")], {"parent_id": "fork", "fork_message_count": 3})
    await source.save("apart", [message("user", "apart")])
    await FileSessionStore(tmp_path / "b").save("main", [message("user", "B other")])


def test_skip_counts_forks_passed_over_apart_from_sessions_already_there(tmp_path: Path) -> None:
    asyncio.run(_diverged(tmp_path))
    done = run_cli("copy", str(tmp_path / "a"), str(tmp_path / "b"), "--on-conflict", "skip")
    assert done.status == 0, done.err
    assert done.out == "copied 1 session(s), skipped 1 already there, passed over 2 (see the warnings)\n"
    assert done.err.count("simulacra-session: warning: skipping session") == 2
    again = run_cli("copy", str(tmp_path / "a"), str(tmp_path / "b"), "--on-conflict", "skip", "--json")
    assert again.json() == {"written": 0, "replaced": 0, "skipped": 4, "passed_over": 2}
