"""The command started without a standard stream (``>&-``, ``2>&-``, ``<&-``; a daemon's or a
cron job's closed descriptors): output that cannot be written fails it naming ``stdout`` (exit
2), never a silent exit 0 or an ``AttributeError``; stdin that cannot be read names ``stdin``;
without stderr, the warnings and errors are dropped but the command runs, and exits, as it
would with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runs import run_redirected as _run
from cli_runs import store_of, torn_store

_FULL = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
_BUFFERED = pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])


@pytest.mark.parametrize(
    "command", [["list"], ["list", "--json"], ["show", "plain"], ["tree"], ["export"], ["export", "plain"]]
)
def test_output_to_a_closed_stdout_fails_naming_stdout(tmp_path: Path, command: list[str]) -> None:
    with store_of("jsonl", tmp_path) as url:
        assert _run(">&-", "--store", url, *command) == (
            2,
            b"",
            "simulacra-session: stdout: Bad file descriptor\n",
        )


def test_an_import_from_a_closed_stdin_fails_naming_stdin(tmp_path: Path) -> None:
    for conflict in ("error", "skip"):
        status, _, err = _run("<&-", "--store", str(tmp_path / "s"), "import", "-", "--on-conflict", conflict)
        assert (status, err) == (2, "simulacra-session: stdin: Bad file descriptor\n")


def test_without_stderr_the_command_runs_and_exits_as_it_would(tmp_path: Path) -> None:
    """An export of a store with a session it cannot read still writes the others (exit 1): it
    wrote nothing, failing on the warning it could not print. An error is still exit 2."""
    torn_store(tmp_path / "s")
    status, out, err = _run("2>&-", "--store", str(tmp_path / "s"), "export")
    assert (status, err) == (1, "")
    header, *sessions = out.splitlines()
    assert json.loads(header)["sessions"] == 1
    assert [json.loads(line)["id"] for line in sessions] == ["ok"]
    assert _run("2>&-", "--store", str(tmp_path / "s"), "show", "nobody")[0] == 2


@pytest.mark.parametrize("command", [["--help"], ["--version"], ["export", "--help"], ["copy", "-h"]])
def test_help_and_version_to_a_closed_or_full_stdout_fail_naming_stdout(command: list[str]) -> None:
    """As any output that cannot be written: argparse drops a failed write of its own."""
    assert _run(">&-", *command) == (2, b"", "simulacra-session: stdout: Bad file descriptor\n")
    if Path("/dev/full").exists():
        for buffered in (True, False):
            assert _run(">/dev/full", *command, buffered=buffered) == (
                2,
                b"",
                "simulacra-session: stdout: No space left on device\n",
            )


@_FULL
@_BUFFERED
@pytest.mark.parametrize("command", [["list"], ["list", "--json"], ["show", "plain"], ["tree"], ["export"]])
def test_output_to_a_full_stdout_fails_naming_stdout(
    tmp_path: Path, command: list[str], buffered: bool
) -> None:
    """Exit 2 naming stdout, as from a closed one: with stdout buffered (as users run it), what
    it could not take was written again at Python's exit, which failed too: exit 120 and an
    "Exception ignored" traceback."""
    with store_of("jsonl", tmp_path) as url:
        assert _run(">/dev/full", "--store", url, *command, buffered=buffered) == (
            2,
            b"",
            "simulacra-session: stdout: No space left on device\n",
        )


@_FULL
@_BUFFERED
def test_a_full_stderr_drops_warnings_and_errors_as_a_closed_one(tmp_path: Path, buffered: bool) -> None:
    """As without stderr: the command runs, and exits, as it would (a whole-store export with a
    session it cannot read: 1; an error: 2). The warning written from within the store's
    listing failed the listing, blamed on the store, and the error's own line failed too."""
    torn_store(tmp_path / "s")
    status, out, err = _run("2>/dev/full", "--store", str(tmp_path / "s"), "export", buffered=buffered)
    assert (status, err) == (1, "")
    assert [json.loads(line)["id"] for line in out.splitlines()[1:]] == ["ok"]
    store = str(tmp_path / "s")
    assert _run("2>/dev/full", "--store", store, "show", "nobody", buffered=buffered) == (2, b"", "")
    out_file = tmp_path / "backup.jsonl"  # its last line, "exported N session(s) to FILE", lost
    assert _run("2>/dev/full", "--store", store, "export", "ok", "-o", str(out_file), buffered=buffered) == (
        0,
        b"",
        "",
    )
    assert json.loads(out_file.read_text().splitlines()[1])["id"] == "ok"
