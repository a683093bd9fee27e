"""The commands that change a store (``rename``, ``delete``, ``import``, ``copy``, ``compact``,
``doctor --repair``), ``doctor`` and ``bench``, run in a real process whose stdout cannot be
written: closed (``>&-``) or full (``>/dev/full``, buffered or not). Each fails as ``list``
does (``test_cli_closed``): exit 2, one stderr line naming stdout, nothing else: no traceback,
no "Exception ignored"; on a store holding an unreadable session, a whole-store ``copy`` or
``compact`` warns of it first, on the line before.

What the store holds then is the command's whole work, committed (read back here, in another
process): every one of them prints its report only once its work is done (its warnings and
progress go to stderr, its question too), so the work is done, not half done, nor undone, as
any command's is whose last output could not be written (``cli._stdout_flushed``: exit 0
becomes 2 naming stdout). Exit 2 says the report was lost, not that nothing was done.
``bench`` prints its first line before it measures anything: it fails before any write."""

from __future__ import annotations

import os
import re
import select
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from cli_runs import redirected, run_cli, run_redirected, store_of, store_snapshot, torn_store
from session_samples import Snapshot, superseded_records

_FULL = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")


class _Stdout(NamedTuple):
    """A stdout that cannot be written: its shell redirection, whether Python buffers it (as
    it does unless ``PYTHONUNBUFFERED`` is set; a closed one is Python's ``None`` either way),
    and the error a write gets."""

    redirect: str
    buffered: bool
    strerror: str


_CLOSED = _Stdout(">&-", False, "Bad file descriptor")
_STDOUTS = [
    pytest.param(_CLOSED, id="closed"),
    pytest.param(_Stdout(">/dev/full", True, "No space left on device"), id="full", marks=_FULL),
    pytest.param(_Stdout(">/dev/full", False, "No space left on device"), id="full-unbuffered", marks=_FULL),
]
_EACH_STDOUT = pytest.mark.parametrize("stdout", _STDOUTS)


def _each_stdout(*values: object, then: Sequence[Any] = ()) -> list[Any]:
    """Parameters: each stdout of ``_STDOUTS`` with ``values`` (a file store's case), then the
    cases ``then`` (a database's, with a closed stdout: what fails is the same print)."""
    cases = [pytest.param(case.values[0], *values, id=case.id, marks=case.marks) for case in _STDOUTS]
    return [*cases, *then]


def _fails_naming_stdout(stdout: _Stdout, *args: str, stdin: Path | None = None) -> None:
    """``simulacra-session ARGS`` (reading ``stdin`` if given) exits 2, printing one line
    naming stdout and nothing else."""
    redirect = stdout.redirect if stdin is None else f"<{shlex.quote(str(stdin))} {stdout.redirect}"
    assert run_redirected(redirect, *args, buffered=stdout.buffered) == (
        2,
        b"",
        f"simulacra-session: stdout: {stdout.strerror}\n",
    )


def _by_id(url: str) -> dict[str, Snapshot]:
    """The store's sessions (``store_snapshot``) by id."""
    return {entry[0]: entry for entry in store_snapshot(url)}


def _healthy(url: str) -> None:
    """``doctor`` finds nothing wrong in the store: no temp file left, no torn write, no
    session half written (a fork index, a fork's inherited history)."""
    assert run_cli("--store", url, "doctor", "--json").json() == {"ok": True, "problems": []}


@pytest.mark.parametrize(
    ("stdout", "kind"), _each_stdout("jsonl", then=[pytest.param(_CLOSED, "sqlite", id="sqlite")])
)
def test_a_rename_is_done_though_its_report_is_lost(tmp_path: Path, stdout: _Stdout, kind: str) -> None:
    """The label is set, and nothing else changed: the rename is saved before "renamed ..."
    is printed (run again, it sets the same label)."""
    with store_of(kind, tmp_path) as url:
        before = _by_id(url)
        _fails_naming_stdout(stdout, "--store", url, "rename", "plain", "Renamed")
        after = _by_id(url)
        plain, was = after.pop("plain"), before.pop("plain")
        assert plain[3] == {**was[3], "label": "Renamed"}
        assert plain[4] == was[4]  # its messages
        assert after == before
        _healthy(url)


@pytest.mark.parametrize(
    ("stdout", "kind"), _each_stdout("jsonl", then=[pytest.param(_CLOSED, "sqlite", id="sqlite")])
)
def test_a_delete_is_done_though_its_report_is_lost(tmp_path: Path, stdout: _Stdout, kind: str) -> None:
    """``root`` is gone and its forks keep the history they inherited (written into them
    before it went): the delete is whole before "deleted ..." is printed."""
    with store_of(kind, tmp_path) as url:
        histories = {entry[0]: entry[4] for entry in store_snapshot(url)}
        _fails_naming_stdout(stdout, "--store", url, "delete", "root", "--yes")
        assert {entry[0]: entry[4] for entry in store_snapshot(url)} == {
            session_id: messages for session_id, messages in histories.items() if session_id != "root"
        }
        _healthy(url)


def _exported(url: str, path: Path) -> Path:
    """``path``, an export of the whole store ``url`` (written in this process)."""
    assert run_cli("--store", url, "export", "-o", str(path)).status == 0
    return path


@pytest.mark.parametrize(
    ("stdout", "kind", "how"),
    _each_stdout(
        "jsonl", ["FILE"], then=[pytest.param(_CLOSED, "sqlite", ["-", "--json"], id="sqlite-stdin-json")]
    ),
)
def test_an_import_is_done_though_its_report_is_lost(
    tmp_path: Path, stdout: _Stdout, kind: str, how: list[str]
) -> None:
    """Every session is imported as it was, before "imported ..." (or its JSON) is printed:
    run again, the import finds them all there (a conflict: nothing written)."""
    with store_of("jsonl", tmp_path, "source") as source, store_of(kind, tmp_path, filled=False) as url:
        export = _exported(source, tmp_path / "export.jsonl")
        args = [str(export) if arg == "FILE" else arg for arg in how]
        _fails_naming_stdout(stdout, "--store", url, "import", *args, stdin=export if "-" in how else None)
        assert store_snapshot(url) == store_snapshot(source)
        _healthy(url)
        again = run_cli("--store", url, "import", str(export))
        assert "5 session(s) already in" in again.error_line()


@pytest.mark.parametrize(
    ("stdout", "kind", "report"),
    _each_stdout("jsonl", [], then=[pytest.param(_CLOSED, "sqlite", ["--json"], id="sqlite-json")]),
)
def test_a_copy_is_done_though_its_report_is_lost(
    tmp_path: Path, stdout: _Stdout, kind: str, report: list[str]
) -> None:
    """Every session is copied as it was, and the target made, before "copied ..." (or its
    JSON) is printed; the source is as it was."""
    with store_of("jsonl", tmp_path, "source") as source, store_of(kind, tmp_path, filled=False) as url:
        original = store_snapshot(source)
        _fails_naming_stdout(stdout, "copy", source, url, *report)
        assert store_snapshot(url) == original
        assert store_snapshot(source) == original
        _healthy(url)


@_EACH_STDOUT
def test_a_compaction_is_done_though_its_report_is_lost(tmp_path: Path, stdout: _Stdout) -> None:
    """The journal is rewritten without its superseded records, holding what it held, before
    "compacted ..." is printed (``doctor`` no longer finds it compactable)."""
    with store_of("jsonl", tmp_path) as url:
        journal = Path(url) / "plain.jsonl"
        superseded_records(journal, 50)
        before = store_snapshot(url)
        _fails_naming_stdout(stdout, "--store", url, "compact")
        assert len(journal.read_bytes().splitlines()) == 5  # header, 3 messages, commit record
        assert store_snapshot(url) == before
        _healthy(url)


def test_nothing_to_compact_in_a_database_fails_naming_stdout(tmp_path: Path) -> None:
    """The one line ``compact`` prints for a store without journals is an output as any."""
    with store_of("sqlite", tmp_path) as url:
        before = store_snapshot(url)
        _fails_naming_stdout(_CLOSED, "--store", url, "compact")
        assert store_snapshot(url) == before


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root``, by its path there, with what it holds."""
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}


@_EACH_STDOUT
def test_a_check_changes_nothing_though_its_report_is_lost(tmp_path: Path, stdout: _Stdout) -> None:
    """``doctor`` without ``--repair`` writes nothing; it would exit 1 (a problem left), but its
    report is lost: exit 2, and the problem is still there for the next run to report."""
    torn_store(tmp_path / "s")
    before = _files(tmp_path / "s")
    _fails_naming_stdout(stdout, "--store", str(tmp_path / "s"), "doctor")
    assert _files(tmp_path / "s") == before
    assert run_cli("--store", str(tmp_path / "s"), "doctor", "--json").json()["problems"][0]["kind"] == (
        "unreadable"
    )


@_EACH_STDOUT
def test_a_repair_is_done_though_its_report_is_lost(tmp_path: Path, stdout: _Stdout) -> None:
    """The torn file is set aside (nothing deleted) and ``ok`` left as it was, before the
    report is printed: the next run finds the file set aside, nothing to repair."""
    root = tmp_path / "s"
    torn_store(root)
    before = _files(root)
    _fails_naming_stdout(stdout, "--store", str(root), "doctor", "--repair", "--json")
    after = _files(root)
    assert after.pop("ok.jsonl") == before["ok.jsonl"]
    [(name, data)] = after.items()
    assert name.startswith("torn.jsonl.corrupt-")
    assert data == before["torn.jsonl"]
    found = run_cli("--store", str(root), "doctor", "--json").json()["problems"]
    assert [(problem["kind"], problem["repaired"]) for problem in found] == [("set_aside", False)]


def _whole_store(command: str, root: Path, target: Path) -> list[str]:
    """The arguments of ``command`` (``copy`` to ``target``, or ``compact``) on all ``root``."""
    return ["copy", str(root), str(target)] if command == "copy" else ["--store", str(root), "compact"]


@pytest.mark.parametrize("command", ["copy", "compact"])
@_EACH_STDOUT
def test_a_whole_store_copy_or_compaction_past_an_unreadable_session_is_done_though_its_report_is_lost(
    tmp_path: Path, stdout: _Stdout, command: str
) -> None:
    """``ok`` (its journal holding superseded records) is copied, or compacted, ``torn`` left
    as it is: named on stderr as the listing skips it, before the report ("left out 1
    unreadable") is printed, which fails: the warning, then the line naming stdout, and exit 2,
    not the 1 of a damaged store's run whose report is printed."""
    root, target, torn = tmp_path / "s", tmp_path / "d", tmp_path / "s" / "torn.jsonl"
    torn_store(root)
    superseded_records(root / "ok.jsonl", 50)
    before, readable = _files(root), store_snapshot(str(root))
    assert [entry[0] for entry in readable] == ["ok"]
    status, out, err = run_redirected(
        stdout.redirect, *_whole_store(command, root, target), buffered=stdout.buffered
    )
    warning = f"simulacra-session: warning: skipping session file {torn}: corrupt session file {torn}: "
    assert (status, out) == (2, b"")
    failed = f"simulacra-session: stdout: {stdout.strerror}"
    assert re.fullmatch(f"{re.escape(warning)}.*\n{re.escape(failed)}\n", err), err
    after = _files(root)
    assert after.pop("torn.jsonl") == before.pop("torn.jsonl")
    if command == "copy":
        assert after == before  # the source, as it was
        assert store_snapshot(str(target)) == readable
        _healthy(str(target))  # nothing of torn's there
    else:
        assert list(after) == ["ok.jsonl"]  # no temp file left
        assert len(after["ok.jsonl"].splitlines()) == 3  # header, its message, commit record
        assert store_snapshot(str(root)) == readable


_BENCH = ["bench", "--no-fsync", "--lengths", "1", "--rounds", "1"]


@_EACH_STDOUT
def test_a_bench_fails_before_it_measures_and_leaves_no_directory(
    tmp_path: Path, stdout: _Stdout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its first line (the backend, the store, the directory) is printed before anything is
    measured: the directory made for it in ``$TMPDIR`` is removed, nothing else written."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    _fails_naming_stdout(stdout, *_BENCH, "--store", "memory")
    assert list(temp.iterdir()) == []


def test_a_bench_in_a_given_directory_fails_before_it_writes_there(tmp_path: Path) -> None:
    """``--root DIR`` is made (and kept, as always), but nothing is written in it: a file
    store measured there would have left its directory (``n1``)."""
    root = tmp_path / "bench"
    _fails_naming_stdout(_CLOSED, *_BENCH, "--store", "file", "--root", str(root))
    assert list(root.iterdir()) == []


def _answering(stdout: _Stdout, answer: bytes, *args: str) -> tuple[int, bytes]:
    """``simulacra-session ARGS`` on a terminal (stdin and stderr, a pseudo-terminal) typing
    ``answer`` once asked, its stdout redirected: its exit status and what the terminal showed."""
    import pty  # POSIX only: its import fails elsewhere, where the test is skipped

    leader, follower = pty.openpty()
    command, env = redirected(stdout.redirect, *args, buffered=stdout.buffered)
    try:
        with subprocess.Popen(command, stdin=follower, stderr=follower, env=env) as process:
            os.close(follower)
            shown, answered = b"", False
            while True:
                if not select.select([leader], [], [], 120)[0]:
                    process.kill()
                    pytest.fail(f"no question nor end after 120 s: {shown!r}")
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # EIO: the command exited, the terminal hung up
                    break
                if not chunk:
                    break
                shown += chunk
                if not answered and shown.endswith(b"[y/N] "):
                    os.write(leader, answer)
                    answered = True
        return process.wait(), shown
    finally:
        os.close(leader)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")
@_EACH_STDOUT
def test_a_delete_confirmed_on_a_terminal_is_done_though_its_report_is_lost(
    tmp_path: Path, stdout: _Stdout
) -> None:
    """The question and its answer are the terminal's (stderr, stdin), never stdout's: "y"
    deletes the session, whose report is lost (exit 2); "n" writes nothing to stdout: exit 1,
    as it always does, the session kept."""
    with store_of("jsonl", tmp_path) as url:
        status, shown = _answering(stdout, b"n\n", "--store", url, "delete", "plain")
        assert (status, shown.splitlines()[-1]) == (1, b"not deleted")
        assert "plain" in _by_id(url)
        status, shown = _answering(stdout, b"y\n", "--store", url, "delete", "plain")
        assert status == 2
        assert shown.splitlines()[-1] == f"simulacra-session: stdout: {stdout.strerror}".encode()
        assert "plain" not in _by_id(url)
        _healthy(url)
