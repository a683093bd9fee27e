"""A temporary file under ``$TMPDIR`` that cannot be written (a full disk; here a file size
limit, ``ulimit -f``, which fails the same write with ``EFBIG``) is named as the culprit: never
the store, which an error naming no file (a database driver's socket error) is taken for.

The command writes one in two places: ``export`` of the whole store (the sessions wait there
for the header to count those it could read) and ``import -`` from a pipe without
``--on-conflict`` (stdin is read twice: checked, then written)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli_runs import run_cli
from session_samples import message
from simulacra_session import FileSessionStore

resource = pytest.importorskip("resource")  # POSIX only
_LIMIT = 4096  # bytes a file may grow to: the sessions below take more


def _limited() -> None:
    """In the child before it runs Python: files stop at ``_LIMIT`` bytes (``SIGXFSZ`` is
    ignored by Python, so a write beyond it fails with ``EFBIG``)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (_LIMIT, _LIMIT))


def _run_limited(tmp: Path, *args: str, stdin: bytes = b"") -> tuple[int, str]:
    env = {key: value for key, value in os.environ.items() if key != "SIMULACRA_SESSION_STORE"}
    env["TMPDIR"] = str(tmp)
    done = subprocess.run(
        [sys.executable, "-m", "simulacra_session", *args],
        input=stdin,
        capture_output=True,
        env=env,
        preexec_fn=_limited,
        timeout=300,
        check=False,
    )
    return done.returncode, done.stderr.decode()


def _big_store(root: Path) -> FileSessionStore:
    store = FileSessionStore(root)

    async def fill() -> None:
        for number in range(4):
            await store.save(f"s{number}", [message("user", "x" * 2000)])

    asyncio.run(fill())
    return store


def test_an_export_whose_temp_file_fails_names_it_not_the_store(tmp_path: Path) -> None:
    _big_store(tmp_path / "s")
    (tmp_path / "tmp").mkdir()
    status, err = _run_limited(tmp_path / "tmp", "--store", str(tmp_path / "s"), "export")
    assert (status, err) == (
        2,
        f"simulacra-session: a temporary file in {tmp_path / 'tmp'} ($TMPDIR): File too large\n",
    )


def test_an_import_from_a_pipe_whose_temp_file_fails_names_it_not_the_store(tmp_path: Path) -> None:
    # the export to import, made in this process (no file size limit: only the import has one)
    exported = run_cli("--store", str(_big_store(tmp_path / "s").root), "export")
    assert exported.status == 0, exported.err
    export = exported.out.encode()
    (tmp_path / "tmp").mkdir()
    status, err = _run_limited(tmp_path / "tmp", "--store", str(tmp_path / "t"), "import", "-", stdin=export)
    assert (status, err) == (
        2,
        f"simulacra-session: a temporary file in {tmp_path / 'tmp'} ($TMPDIR): File too large\n",
    )
    assert not list((tmp_path / "t").glob("*.jsonl")), "nothing is imported"


def test_a_bench_whose_floor_file_fails_names_it_and_leaves_nothing(tmp_path: Path) -> None:
    """``bench`` writes in a directory of its own in ``$TMPDIR``, its floor's file first: the
    error was ``[Errno 27] File too large``, naming nothing."""
    (tmp_path / "tmp").mkdir()
    options = ["--store", "memory", "--lengths", "1", "--rounds", "1"]
    status, err = _run_limited(tmp_path / "tmp", "bench", *options)
    assert status == 2
    root = re.escape(str(tmp_path / "tmp" / "simulacra-bench-"))
    assert re.fullmatch(rf"simulacra-session: {root}[0-9a-f]{{16}}/\.floor\.jsonl: File too large\n", err)
    assert list((tmp_path / "tmp").iterdir()) == []
