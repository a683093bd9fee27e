"""The installed command's errors (one line naming the id, path or URL at fault, exit 2, never a
traceback), ``--version``, ``python -m``, ``doctor``'s exit status and output, and the
progress bar that only a terminal gets."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cli_runs import KINDS, run_cli, store_of
from session_samples import message
from simulacra_session import __version__
from simulacra_session.cli.urls import open_store


@pytest.mark.parametrize("runner", ["module", "script"])
def test_version_and_help(runner: str) -> None:
    shown = run_cli("--version", runner=runner)
    assert (shown.status, shown.out.strip()) == (0, f"simulacra-session {__version__}")
    helped = run_cli("--help", runner=runner)
    assert helped.status == 0
    for command in (
        "list",
        "show",
        "tree",
        "export",
        "import",
        "copy",
        "rename",
        "delete",
        "doctor",
        "bench",
    ):
        assert command in helped.out


def test_errors_name_what_is_at_fault(tmp_path: Path) -> None:
    with store_of("jsonl", tmp_path) as url:
        assert "invalid session id 'no way'" in run_cli("--store", url, "show", "no way").error_line()
        assert run_cli("--store", url, "show", "nobody").error_line().endswith("session not found: nobody")
        assert "session not found: nobody" in run_cli("--store", url, "rename", "nobody", "x").error_line()
        assert "session not found: nobody" in run_cli("--store", url, "export", "nobody").error_line()
        assert "session not found: nobody" in run_cli("--store", url, "tree", "nobody").error_line()
    missing = tmp_path / "nowhere"
    assert f"{missing}: no such directory" in run_cli("--store", str(missing), "list").error_line()
    assert "redis://h/0: not a store URL" in run_cli("--store", "redis://h/0", "list").error_line()
    assert (
        "format must be jsonl or json"
        in run_cli("--store", f"file:{tmp_path}?format=xml", "list").error_line()
    )
    unknown = run_cli("--store", f"file:{tmp_path}?colour=red", "list").error_line()
    assert "unknown option(s) colour" in unknown
    no_driver = run_cli("--store", "postgresql+pg8000://u:secret@localhost/db", "list").error_line()
    assert (
        "postgresql+pg8000://u:***@localhost/db: the database driver 'pg8000' is not installed" in no_driver
    )
    assert "secret" not in no_driver
    refused = run_cli("--store", "postgresql+psycopg://u:secret@127.0.0.1:1/db", "list").error_line()
    assert refused.startswith("simulacra-session: postgresql+psycopg://u:***@127.0.0.1:1/db: ")
    assert "secret" not in refused
    assert "Traceback" not in refused
    export = tmp_path / "not-an-export.jsonl"
    export.write_text('{"hello": 1}\n')
    into = str(tmp_path / "into")
    damaged = run_cli("--store", into, "import", str(export)).error_line()
    assert f"{export}: not a simulacra-session export" in damaged
    assert (
        f"{tmp_path / 'absent.jsonl'}: No such file"
        in run_cli("--store", into, "import", str(tmp_path / "absent.jsonl")).error_line()
    )
    if os.path.exists("/proc/self/mem"):  # Linux: a file that fails to read, named (not the store)
        failing = run_cli("--store", into, "import", "/proc/self/mem").error_line()
        assert failing == "simulacra-session: /proc/self/mem: Input/output error"


@pytest.mark.parametrize("on_conflict", ["error", "skip"])
def test_an_import_of_no_export_makes_no_database(tmp_path: Path, on_conflict: str) -> None:
    """A missing file, or one that is no export, is found before the store is touched: the
    import made the SQLite database (and its tables) before failing."""
    database = tmp_path / "new.db"
    (tmp_path / "notes.txt").write_text("shopping list\n")
    for source, said in (("absent.jsonl", "No such file"), ("notes.txt", "not a simulacra-session export")):
        path = str(tmp_path / source)
        failed = run_cli("--store", f"sqlite:///{database}", "import", path, "--on-conflict", on_conflict)
        assert f"{path}: {said}" in failed.error_line()
        assert not database.exists()


def test_the_store_comes_from_the_environment_else_sessions(tmp_path: Path) -> None:
    """``main`` reads the variable and the working directory when it runs, as a process does
    when it starts (in this process: a child costs an interpreter start for the same code)."""
    with store_of("jsonl", tmp_path, "env-store") as url:
        done = run_cli("list", "--json", env={"SIMULACRA_SESSION_STORE": url})
        assert done.status == 0
        assert '"id":"plain"' in done.out
        done = run_cli("list", "--json", cwd=tmp_path)  # the variable unset, as run_cli leaves it
        assert done.err.startswith("simulacra-session: ./sessions: no such directory")


@pytest.mark.parametrize("kind", KINDS)
def test_doctor_exit_status_and_json(kind: str, tmp_path: Path) -> None:
    with store_of(kind, tmp_path) as url:
        clean = run_cli("--store", url, "doctor")
        assert (clean.status, clean.out.strip()) == (0, "no problems found")
        assert run_cli("--store", url, "doctor", "--json").json() == {"ok": True, "problems": []}
        _orphan(url)
        found = run_cli("--store", url, "doctor", "--json")
        assert found.status == 1
        problem = found.json()["problems"][0]
        assert problem == {
            "kind": "missing_parent",
            "session_id": "orphan",
            "path": None,
            "detail": "session orphan inherits from session gone, which is gone",
            "repaired": False,
        }
        human = run_cli("--store", url, "doctor")
        assert human.status == 1
        assert "missing_parent" in human.out
        assert "1 problem(s), 1 left" in human.out
        repaired = run_cli("--store", url, "doctor", "--repair", "--json")
        assert repaired.status == 0
        assert repaired.json()["problems"][0]["repaired"] is True
        assert run_cli("--store", url, "doctor").status == 0


def _orphan(url: str) -> None:
    """A fork whose parent is gone, written by the library (as another process might)."""

    async def write() -> None:
        opened = open_store(url, create=True)
        try:
            given = {"parent_id": "gone", "fork_message_count": 0}
            await opened.store.save("orphan", [message("user", "alone")], given)
        finally:
            await opened.close()

    asyncio.run(write())


def test_doctor_repairs_a_torn_journal_from_the_command(tmp_path: Path) -> None:
    with store_of("jsonl", tmp_path) as url:
        journal = Path(url) / "plain.jsonl"
        with journal.open("ab") as out:
            out.write(b'{"role":"user","con')
        found = run_cli("--store", url, "doctor", "--json")
        assert found.status == 1
        assert [p["kind"] for p in found.json()["problems"]] == ["torn_tail"]
        assert found.json()["problems"][0]["path"] == str(journal)
        assert found.err == ""  # the report says it: no warnings besides
        assert run_cli("--store", url, "doctor", "--repair").status == 0
        assert journal.read_bytes().endswith(b'"]\n')  # its last commit record


def test_doctor_repair_reports_what_it_set_aside_as_left(tmp_path: Path) -> None:
    """A damaged journal moved aside by ``--repair``: the repair's report and a check run right
    after it agree that the file set aside is left (exit 1 both), and the damaged bytes are kept."""
    with store_of("jsonl", tmp_path) as url:
        journal = Path(url) / "plain.jsonl"
        damaged = bytearray(journal.read_bytes())
        damaged[len(damaged) // 2] ^= 1
        journal.write_bytes(bytes(damaged))
        repaired = run_cli("--store", url, "doctor", "--repair", "--json")
        assert repaired.status == 1
        problems = {(p["kind"], p["repaired"]) for p in repaired.json()["problems"]}
        assert problems == {("unreadable", True), ("set_aside", False)}
        checked = run_cli("--store", url, "doctor", "--json")
        assert checked.status == 1
        left = [p for p in repaired.json()["problems"] if not p["repaired"]]
        assert checked.json()["problems"] == left
        assert Path(left[0]["path"]).read_bytes() == bytes(damaged)


def test_a_failed_export_leaves_the_file_there_as_it_was(tmp_path: Path) -> None:
    """An export that fails (an id mistyped) neither truncates nor replaces the output file it
    names, and leaves no temp file beside it; one that succeeds replaces it, keeping its mode."""
    with store_of("jsonl", tmp_path) as url:
        backup = tmp_path / "backup.jsonl"
        assert run_cli("--store", url, "export", "-o", str(backup)).status == 0
        good = backup.read_bytes()
        assert backup.stat().st_mode & 0o777 == 0o600  # private, as the sessions are
        failed = run_cli("--store", url, "export", "plain", "typo", "-o", str(backup))
        assert failed.status == 2
        assert "session not found: typo" in failed.error_line()
        assert backup.read_bytes() == good
        assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
        backup.chmod(0o640)
        assert run_cli("--store", url, "export", "plain", "-o", str(backup)).status == 0
        assert backup.read_bytes() != good
        assert backup.stat().st_mode & 0o777 == 0o640


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_an_import_reads_an_export_from_a_fifo(tmp_path: Path) -> None:
    """``import <(zcat backup.jsonl.gz)`` (a pipe by its path, as a FIFO is): the export is read
    twice, to check it before writing, so it is spooled, as stdin is. It failed, naming the
    store: "STORE: File or stream is not seekable"."""
    with store_of("jsonl", tmp_path) as url:
        export = tmp_path / "export.jsonl"
        assert run_cli("--store", url, "export", "-o", str(export)).status == 0
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        into = str(tmp_path / "into")
        for conflict, written in (("error", 5), ("skip", 0)):
            writer = threading.Thread(target=lambda: fifo.write_bytes(export.read_bytes()))
            writer.start()
            imported = run_cli("--store", into, "import", str(fifo), "--on-conflict", conflict, "--json")
            writer.join()
            assert imported.json() == {
                "written": written,
                "replaced": 0,
                "skipped": 5 - written,
                "passed_over": 0,
            }


def test_an_output_that_cannot_be_made_is_named_as_given(tmp_path: Path) -> None:
    """``-o`` in a directory that is not there names the path given, as the shell's ``>`` would,
    not the temp file the export is written to first; an empty ``-o`` (``-o "$UNSET"``) is an
    error naming the option, where it wrote the export beside the current directory, then
    failed naming a temp file. Neither leaves a file behind."""
    with store_of("jsonl", tmp_path) as url:
        missing = tmp_path / "no-such-dir" / "backup.jsonl"
        line = run_cli("--store", url, "export", "-o", str(missing)).error_line()
        assert line == f"simulacra-session: {missing}: No such file or directory"
        work = tmp_path / "work"
        work.mkdir()
        before = sorted(os.listdir(tmp_path))
        done = run_cli("--store", url, "export", "-o", "", cwd=work)
        assert (done.status, done.out) == (2, "")
        assert done.err == "simulacra-session: -o is empty: name a file, or - for stdout\n"
        assert sorted(os.listdir(tmp_path)) == before
        assert os.listdir(work) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs symlinks and FIFOs")
def test_an_export_through_a_symlink_or_into_a_fifo_writes_where_they_lead(tmp_path: Path) -> None:
    """``-o`` naming a symlink replaces its target, the link kept; a FIFO is written into, as the
    shell's ``>`` would (a reader gets the export), never replaced by a file."""
    with store_of("jsonl", tmp_path) as url:
        real = tmp_path / "backup-1.jsonl"
        real.write_bytes(b"yesterday")
        latest = tmp_path / "latest.jsonl"
        latest.symlink_to(real)
        assert run_cli("--store", url, "export", "plain", "-o", str(latest)).status == 0
        assert latest.is_symlink()
        assert real.read_bytes().startswith(b'{"format":"simulacra-session-export"')
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        read: list[bytes] = []
        reader = threading.Thread(target=lambda: read.append(fifo.read_bytes()))
        reader.start()
        exported = run_cli("--store", url, "export", "plain", "-o", str(fifo))
        reader.join()
        assert exported.status == 0
        assert stat.S_ISFIFO(fifo.stat().st_mode)
        assert [data.split(b"\n", 1)[1] for data in read] == [real.read_bytes().split(b"\n", 1)[1]]


@pytest.mark.skipif(not hasattr(pty, "openpty") or os.name == "nt", reason="needs a pseudo-terminal")
def test_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    with store_of("jsonl", tmp_path) as url:
        primary, secondary = pty.openpty()
        command = [
            sys.executable,
            "-m",
            "simulacra_session",
            "--store",
            url,
            "export",
            "-o",
            str(tmp_path / "e.jsonl"),
        ]
        env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
        with subprocess.Popen(command, stdout=secondary, stderr=secondary, env=env) as process:
            os.close(secondary)
            seen = b""
            while True:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:  # the terminal closed with the process
                    break
                if not chunk:
                    break
                seen += chunk
            assert process.wait(timeout=300) == 0
        os.close(primary)
        assert b"exporting" in seen  # the bar, drawn on the terminal
        assert b"exported 5 session(s)" in seen
        piped = run_cli("--store", url, "export", "-o", str(tmp_path / "p.jsonl"))
        assert "exporting" not in piped.err
        assert piped.err == f"exported 5 session(s) to {tmp_path / 'p.jsonl'}\n"


def test_a_reader_leaving_the_pipe_stops_it_quietly(tmp_path: Path) -> None:
    """``export | head``: exit 141 (as SIGPIPE would), nothing on stderr, the store untouched."""
    with store_of("jsonl", tmp_path) as url:
        big = [message("user", "x" * 100_000)]  # more than a pipe holds
        opened = open_store(url, create=False)
        asyncio.run(opened.store.save("big", big))
        reader = subprocess.Popen(
            [sys.executable, "-m", "simulacra_session", "--store", url, "export"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert reader.stdout is not None
        assert reader.stderr is not None
        assert reader.stdout.read(10) == b'{"format":'
        reader.stdout.close()
        assert reader.wait(timeout=120) == 141
        assert reader.stderr.read() == b""
        reader.stderr.close()
        stored = asyncio.run(opened.store.load("big"))
        assert stored is not None
        assert stored.messages == big


def test_an_empty_store_url_is_an_error_not_the_default(tmp_path: Path) -> None:
    """``--store "$UNSET"``: exit 2 naming --store, not a write into ``$SIMULACRA_SESSION_STORE``
    or a new ``./sessions``; copy's SRC and DST alike."""
    with store_of("jsonl", tmp_path, "env-store") as url:
        export = tmp_path / "e.jsonl"
        assert run_cli("--store", url, "export", "-o", str(export)).status == 0
        work = tmp_path / "work"
        work.mkdir()
        env = {"SIMULACRA_SESSION_STORE": url}
        for command in (["import", str(export)], ["delete", "plain", "--yes"], ["list"]):
            done = run_cli("--store", "", *command, env=env, cwd=work)
            assert done.status == 2
            assert done.err.startswith("simulacra-session: --store is empty: name a directory or a store URL")
        assert os.listdir(work) == []
        assert "plain" in run_cli("--store", url, "show", "plain").out
        assert run_cli("copy", "", url).error_line() == (
            "simulacra-session: copy: SRC is empty: name a directory or a store URL"
        )
        assert "DST is empty" in run_cli("copy", url, "").error_line()


def test_copy_names_the_store_that_failed(tmp_path: Path) -> None:
    """A database failing during a copy is named by its URL, whichever side it is."""
    with store_of("jsonl", tmp_path) as url:
        unreachable = f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"
        assert (
            run_cli("copy", url, unreachable).error_line().startswith(f"simulacra-session: {unreachable}: ")
        )
        garbage = tmp_path / "garbage.db"
        garbage.write_bytes(b"not a database, " * 512)
        source = f"sqlite:///{garbage}"
        failed = run_cli("copy", source, str(tmp_path / "into")).error_line()
        assert failed.startswith(f"simulacra-session: {source}: ")
        assert "not a database" in failed


def test_reading_a_missing_sqlite_file_does_not_make_it(tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    for command in (
        ["--store", f"sqlite:///{typo}", "list"],
        ["copy", f"sqlite:///{typo}", str(tmp_path / "d")],
    ):
        assert (
            run_cli(*command).error_line()
            == f"simulacra-session: sqlite:///{typo}: no such database file: {typo}"
        )
    assert not typo.exists()


def test_a_validation_error_names_the_field_and_the_value(tmp_path: Path) -> None:
    """pydantic's message is several lines; the one line printed keeps the field and value."""
    export = tmp_path / "e.jsonl"
    stamps = {"created_at": "yesterday", "updated_at": "2026-01-01T00:00:00Z", "message_count": 0}
    record = {"id": "c", "metadata": stamps}
    export.write_text(
        '{"format":"simulacra-session-export","version":1,"sessions":1}\n'
        + json.dumps({**record, "messages": []})
        + "\n"
    )
    line = run_cli("--store", str(tmp_path / "s"), "import", str(export)).error_line()
    assert line.startswith(
        f"simulacra-session: {export}:2: 1 validation error for SessionMetadata: created_at: "
    )
    assert "not an ISO 8601 timestamp: 'yesterday'" in line
    assert "errors.pydantic.dev" not in line
