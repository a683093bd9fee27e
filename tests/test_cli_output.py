"""What the command prints reaches its reader whole or fails it: a reader leaving mid-write exits
141 (as documented, never 0 on a cut output, never 1, the status of a problem left), a full disk
is named as the output's (``stdout`` or the ``-o`` file), and stored values are printed as text,
never read as rich markup."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import io
import json
import os
import stat
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from cli_runs import Runner, run_cli, store_of
from session_samples import message
from simulacra_session import FileSessionStore
from simulacra_session.cli import main

_BIG = "x" * 300_000  # far more than a pipe holds


def _cut_short(*args: str) -> tuple[int, str]:
    """Run the command into a pipe nobody reads until the command is blocked writing into it
    (the pipe full but for part of a page: a small write before may hold a page of its own),
    then close it: the write in progress returns a short count. Its exit status and stderr."""
    read_end, write_end = os.pipe()
    full = fcntl.fcntl(read_end, 1032) - os.sysconf("SC_PAGE_SIZE")  # F_GETPIPE_SZ
    with subprocess.Popen(
        [sys.executable, "-m", "simulacra_session", *args], stdout=write_end, stderr=subprocess.PIPE
    ) as process:
        os.close(write_end)
        held = bytearray(4)
        while process.poll() is None:
            fcntl.ioctl(read_end, termios.FIONREAD, held)
            if int.from_bytes(held, sys.byteorder) >= full:  # the writer waits in write()
                break
            time.sleep(0.01)
        os.close(read_end)
        assert process.stderr is not None
        err = process.stderr.read().decode()
        return process.wait(timeout=120), err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_GETPIPE_SZ and FIONREAD on a pipe")
@pytest.mark.parametrize(
    "command", [["export"], ["export", "big"], ["show", "big", "--json"], ["show", "big"]]
)
def test_a_reader_leaving_mid_write_is_exit_141(tmp_path: Path, command: list[str]) -> None:
    """``export | ssh host 'cat > backup'`` and the link drops: the export is cut short, so the
    status says so (141), whether the cut falls between two writes or inside one."""
    asyncio.run(FileSessionStore(tmp_path / "s").save("big", [message("user", _BIG)]))
    assert _cut_short("--store", str(tmp_path / "s"), *command) == (141, "")


@pytest.mark.parametrize(
    "command", [["list"], ["tree"], ["doctor"], ["show", "plain"], ["list", "--json"], ["export"]]
)
def test_a_reader_gone_before_the_output_is_exit_141_for_people_too(
    tmp_path: Path, command: list[str]
) -> None:
    """``simulacra-session doctor | head -0``: 141, not 1 (which says a problem is left).
    ``main`` in this process, its stdout the pipe (flushed at the end as Python's exit does, by
    ``run_cli``); ``doctor`` in a child too, the one command here that no other test starts on
    a bad stdout (``test_cli_closed`` starts list, show, tree and export on a closed and a full
    one, the mid-write test above export and show on a pipe)."""
    with store_of("jsonl", tmp_path) as url:
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            runner: Runner = "module" if command == ["doctor"] else "main"
            done = run_cli("--store", url, *command, stdout=write_end, runner=runner)
        finally:
            os.close(write_end)
        assert (done.status, done.err) == (141, "")


@pytest.mark.skipif(
    not os.path.exists("/dev/full") or not stat.S_ISCHR(os.stat("/dev/full").st_mode),
    reason="needs /dev/full",
)
@pytest.mark.parametrize("command", [["list"], ["list", "--json"], ["show", "plain"], ["tree"], ["export"]])
def test_a_full_disk_on_the_output_is_named_as_the_outputs(tmp_path: Path, command: list[str]) -> None:
    """Writing to a full disk names the output (``stdout``, the ``-o`` file), not the store,
    whose disk is fine; ``/dev/full`` stays the device it is. ``main`` in this process, its
    stdout ``/dev/full`` (block-buffered, as Python makes it): the same commands on a full stdout
    in a child, buffered and not, are ``test_cli_closed``'s."""
    with store_of("jsonl", tmp_path) as url:
        with open("/dev/full", "wb") as full:
            done = run_cli("--store", url, *command, stdout=full.fileno())
        assert (done.status, done.err) == (2, "simulacra-session: stdout: No space left on device\n")
        to_file = run_cli("--store", url, "export", "-o", "/dev/full")
        assert to_file.error_line() == "simulacra-session: /dev/full: No space left on device"
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def _document(root: Path, session_id: str, parent_id: str | None, label: str, text: str) -> None:
    """A ``.json`` document as the original library (or a hand edit) leaves it: the parent id is
    not checked on read."""
    stamp = "2026-01-01T00:00:00.000Z"
    metadata = {"id": session_id, "created_at": stamp, "updated_at": stamp, "message_count": 1}
    metadata |= {"parent_id": parent_id, "detached": True, "label": label} if parent_id else {"label": label}
    document = {"metadata": metadata, "messages": [{"role": "user", "content": text}]}
    (root / f"{session_id}.json").write_text(json.dumps(document))


def test_stored_values_are_printed_as_text_not_markup(tmp_path: Path) -> None:
    """A parent id, label or message holding ``[...]`` is printed as it is, by every command:
    neither a MarkupError for the whole store nor brackets silently eaten."""
    root = tmp_path / "s"
    root.mkdir()
    _document(root, "m0", "[/]", "[bold]label[/bold]", "see [red]this[/red]")
    _document(root, "m1", "a[b]c", "[/]", "[/]")
    _document(root, "fine", None, "fine", "hello")
    listed = run_cli("--store", str(root), "list")
    assert listed.status == 0, listed.err
    for shown in ("[/] (detached)", "a[b]c (detached)", "[bold]label[/bold]"):
        assert shown in listed.out
    for session_id, shown in (
        ("m0", ["fork of [/] (detached)", "see [red]this[/red]"]),
        ("m1", ["a[b]c", "[/]"]),
    ):
        text = run_cli("--store", str(root), "show", session_id)
        assert text.status == 0, text.err
        assert all(part in text.out for part in shown)
    tree = run_cli("--store", str(root), "tree")
    assert tree.status == 0
    assert "[bold]label[/bold]" in tree.out


class _Terminal(io.StringIO):
    """A stdin that says it is a terminal, holding the answer typed."""

    def isatty(self) -> bool:
        return True


class _HungUp(_Terminal):
    """A terminal that hung up: reading it fails (``EIO``)."""

    def readline(self, size: int | None = -1, /) -> str:
        raise OSError(errno.EIO, os.strerror(errno.EIO))


@pytest.mark.parametrize(
    ("stdin", "status", "said"),
    [
        (_Terminal(""), 1, "[y/N] \nnot deleted\n"),  # Ctrl-D: no answer, a line of its own
        (_HungUp(), 2, "[y/N] simulacra-session: stdin: Input/output error\n"),
    ],
    ids=["end of input", "terminal gone"],
)
def test_the_delete_prompt_unanswered_deletes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stdin: io.StringIO,
    status: int,
    said: str,
) -> None:
    """Ctrl-D was ``EOFError: EOF when reading a line``, exit 2; a terminal that hung up was
    blamed on the store (``STORE: Input/output error``)."""
    with store_of("jsonl", tmp_path) as url:
        monkeypatch.setattr(sys, "stdin", stdin)
        assert main(["--store", url, "delete", "plain"]) == status
        assert capsys.readouterr().err.endswith(said)
        assert run_cli("--store", url, "show", "plain").status == 0


def test_the_delete_prompt_shows_its_choices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``[y/N]`` in the question is text: rich used to read it as a style tag and drop it."""
    with store_of("jsonl", tmp_path) as url:
        monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
        assert main(["--store", url, "delete", "plain"]) == 1
        err = capsys.readouterr().err
        assert "delete session plain? (its forks keep their history) [y/N] " in err
        assert "not deleted" in err
