"""The ``simulacra-session bench`` command, run for real on a small scale."""

from __future__ import annotations

import io
import re
import sqlite3
from contextlib import closing, redirect_stdout
from pathlib import Path

import pytest

from simulacra_session.cli import main


@pytest.mark.parametrize(
    "options",
    [[], ["--no-fsync", "--format", "json"], ["--store", "memory"], ["--store", "sql", "--url", "sqlite://"]],
)
def test_bench_prints_p50_p99_per_length_beside_the_floor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    status = main(["bench", "--lengths", "0,5", "--rounds", "5", "--root", str(tmp_path), *options])
    assert status == 0
    out = capsys.readouterr().out
    assert re.search(r"floor \(append.*\): p50 +[\d.]+ us +p99 +[\d.]+ us", out)
    rows = re.findall(r"^ +(\d+) +([\d.]+) +([\d.]+) +([\d.]+)x$", out, re.MULTILINE)
    assert [row[0] for row in rows] == ["0", "5"]
    assert all(float(p50) <= float(p99) for _, p50, p99, _ in rows)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--lengths", "-3"], "--lengths must list sizes >= 0, comma-separated, not '-3'"),
        (["--lengths", "abc"], "--lengths must list sizes >= 0, comma-separated, not 'abc'"),
        (["--lengths", ""], "--lengths must list sizes >= 0, comma-separated, not ''"),
        (["--rounds", "0"], "--rounds must be >= 1, not 0"),
        (["--store", "sql"], "--url goes with --store sql, and --store sql needs it"),
        (["--url", "sqlite://"], "--url goes with --store sql, and --store sql needs it"),
        (
            ["--store", "sql", "--url", "user:secret@db"],  # not repeated: it may hold a password
            "--url is no database URL (dialect+driver://user:password@host/db)",
        ),
    ],
)
def test_bench_argument_errors_exit_2_naming_the_option(
    options: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2, an error, as argparse's own: 1 says a problem is left in a store."""
    assert main(["bench", *options]) == 2
    assert capsys.readouterr().err == f"simulacra-session: {said}\n"


def test_bench_prints_to_a_text_only_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """``main`` called with ``sys.stdout`` a ``StringIO`` (no bytes beneath), as ``print`` took."""
    with redirect_stdout(io.StringIO()) as out:
        assert main(["bench", "--store", "memory", "--no-fsync", "--lengths", "1", "--rounds", "1"]) == 0
    assert "p50/floor" in out.getvalue()
    assert capsys.readouterr().err == ""


def test_bench_sql_cleans_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "bench.db"
    url = f"sqlite:///{database}"
    assert main(["bench", "--store", "sql", "--url", url, "--lengths", "3", "--rounds", "3"]) == 0
    assert f"url={url}" in capsys.readouterr().out
    with closing(sqlite3.connect(database)) as db:  # 3.13 warns of a connection left open
        assert db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == []
