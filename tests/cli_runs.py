"""Running the ``simulacra-session`` command, on stores of every kind filled with
``session_samples.populate``'s sessions: in this process (its ``main``, its standard streams
captured), or where what a process does is tested (its start, its script), in a child."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Container, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal
from unittest import mock

import pytest

from session_samples import Snapshot, message, populate, server_url, snapshot, sql_table
from simulacra_session import FileSessionStore
from simulacra_session.cli import main
from simulacra_session.cli.urls import open_store

if TYPE_CHECKING:
    from _typeshed import TraceFunction  # what sys.settrace takes, in the stubs only

__all__ = [
    "KINDS",
    "InterruptAt",
    "Run",
    "Runner",
    "redirected",
    "run_cli",
    "run_redirected",
    "script",
    "store_of",
    "store_snapshot",
]

KINDS = ["jsonl", "json", "sqlite", "postgres", "mysql"]


def script() -> str:
    """The ``simulacra-session`` script installed beside this Python."""
    found = Path(sys.executable).parent / ("simulacra-session" + (".exe" if os.name == "nt" else ""))
    if not found.exists():
        pytest.skip(f"no simulacra-session script beside {sys.executable}")
    return str(found)


class Run:
    """A finished run of the command: its exit status, stdout and stderr."""

    def __init__(self, status: int, out: str, err: str) -> None:
        self.status = status
        self.out = out
        self.err = err

    def json(self) -> Any:
        assert self.status in (0, 1), self.err
        return json.loads(self.out)

    def error_line(self) -> str:
        """The one line an error prints (and that it is one line, with no traceback)."""
        assert self.status == 2, (self.status, self.out, self.err)
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("simulacra-session: ")
        return lines[0]


Runner = Literal["main", "module", "script"]


def run_cli(
    *args: str,
    runner: Runner = "main",
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: int | None = None,
) -> Run:
    """``simulacra-session ARGS`` without the store variable, its output captured: its ``main``
    called here (``"main"``, as fast as a call; from a coroutine, where the command could not
    run its own event loop, as ``"module"``), or in a child process, through a pipe:
    ``python -m simulacra_session`` (``"module"``) or the installed script (``"script"``).
    ``env``: variables set besides this process's (the store variable among them if given);
    ``cwd``: the working directory meanwhile; ``stdout``: a descriptor the command writes its
    standard output to (a pipe nobody reads, ``/dev/full``) instead of the captured pipe, so
    the ``Run``'s ``out`` is empty."""
    if runner == "main" and not _in_event_loop():
        return _run_main(args, stdin, env or {}, cwd, stdout)
    command = [script()] if runner == "script" else [sys.executable, "-m", "simulacra_session"]
    variables = {key: value for key, value in os.environ.items() if key != "SIMULACRA_SESSION_STORE"}
    done = subprocess.run(
        [*command, *args],
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        text=True,
        env={**variables, **(env or {})},
        cwd=cwd,
        input=stdin,
        timeout=300,
        check=False,
    )
    return Run(done.returncode, done.stdout or "", done.stderr)


def _run_main(
    args: tuple[str, ...], stdin: str | None, env: Mapping[str, str], cwd: Path | None, stdout: int | None
) -> Run:
    """``main(args)`` with stdin, stdout and stderr in memory (as a pipe would be: no terminal),
    or stdout on the descriptor ``stdout``, as Python makes it (block-buffered text). That
    stdout is then closed as Python's exit flushes it: what the command left there and cannot
    be written is what a process reports as "Exception ignored", exit 120, and so is it here."""
    given = io.TextIOWrapper(io.BytesIO((stdin or "").encode()), encoding="utf-8")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    out = io.TextIOWrapper(
        io.BytesIO() if stdout is None else open(stdout, "wb", closefd=False),  # noqa: SIM115
        encoding="utf-8",
    )
    with mock.patch.dict(os.environ), mock.patch.multiple(sys, stdin=given, stdout=out, stderr=err):
        os.environ.pop("SIMULACRA_SESSION_STORE", None)
        os.environ.update(env)
        with _working_directory(cwd):
            try:
                status = main(args)
            except SystemExit as done:  # argparse's usage errors (2) and --help (0)
                status = done.code if isinstance(done.code, int) else 0 if done.code is None else 1
    if stdout is None:
        return Run(status, _written(out), _written(err))
    try:
        out.close()
    except OSError as error:
        err.write(f"Exception ignored in: {out!r}\n{error!r}\n")
        status = 120
    return Run(status, "", _written(err))


def redirected(closed: str, *args: str, buffered: bool = False) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of ``python -m simulacra_session ARGS`` with the
    standard stream ``closed`` (``>&-``, ``2>&-`` or ``<&-``) closed, or redirected
    (``>/dev/full``) by a shell. ``buffered``: its standard streams buffered, as they are
    unless ``PYTHONUNBUFFERED`` is set."""
    command = ["sh", "-c", f'exec "$0" -m simulacra_session "$@" {closed}', sys.executable, *args]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    return command, env


def run_redirected(closed: str, *args: str, buffered: bool = False) -> tuple[int, bytes, str]:
    """The command ``redirected`` starts, run: its exit status, stdout and stderr."""
    command, env = redirected(closed, *args, buffered=buffered)
    done = subprocess.run(command, capture_output=True, env=env, timeout=300, check=False)
    return done.returncode, done.stdout, done.stderr.decode()


@contextmanager
def _working_directory(cwd: Path | None) -> Iterator[None]:
    """Meanwhile, ``cwd`` (if given) is the working directory (``contextlib.chdir`` is 3.11's)."""
    if cwd is None:
        yield
        return
    kept = os.getcwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(kept)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _written(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode()


@contextmanager
def store_of(kind: str, tmp_path: Path, name: str = "store", *, filled: bool = True) -> Iterator[str]:
    """The URL of a store of ``kind`` (server tables dropped afterwards), filled by ``populate``."""
    tabled: AbstractContextManager[str]
    if kind in ("postgres", "mysql"):
        tabled = sql_table(server_url(kind))
    elif kind == "sqlite":
        tabled = nullcontext(f"sqlite:///{tmp_path / name}.db")
    else:
        where = tmp_path / name
        tabled = nullcontext(str(where) if kind == "jsonl" else f"file:{where}?format=json")
    with tabled as url:
        if filled:
            asyncio.run(_fill(url))
        yield url


async def _fill(url: str) -> None:
    opened = open_store(url, create=True)
    try:
        await populate(opened.store)
    finally:
        await opened.close()


def store_snapshot(url: str, *, millis: bool = False) -> list[Snapshot]:
    """``snapshot`` of the store ``url`` names, read in this process."""

    async def read() -> list[Snapshot]:
        opened = open_store(url, create=False)
        try:
            return await snapshot(opened.store, millis=millis)
        finally:
            await opened.close()

    return asyncio.run(read())


def torn_store(root: Path) -> FileSessionStore:
    """A file store holding ``ok`` and ``torn``, whose only write lost its last bytes: listed,
    not loadable (a whole-store export warns of it on stderr and exits 1)."""
    store = FileSessionStore(root)

    async def fill() -> None:
        await store.save("ok", [message("user", "fine")])
        await store.save("torn", [message("user", "a"), message("user", "b")])

    asyncio.run(fill())
    journal = root / "torn.jsonl"
    journal.write_bytes(journal.read_bytes()[:-5])
    return store


class InterruptAt:
    """A trace function (``sys.settrace``) raising ``KeyboardInterrupt``, what a signal's
    handler raises, at the ``step``-th line run in the module ``file`` once ``after()`` is
    true, but for the lines ``spared``: a signal put, deterministically, where a real one lands
    only now and then. A test tries each step in turn until one runs to the end (``raised``
    false)."""

    def __init__(
        self, file: str, step: int, after: Callable[[], bool] = lambda: True, spared: Container[int] = ()
    ) -> None:
        self.file, self.left, self.after, self.spared, self.raised = file, step, after, spared, False

    @contextmanager
    def armed(self) -> Iterator[None]:
        """Meanwhile, this traces the thread. An interrupt between a file's opening and the
        ``with`` taking it, or as a ``with`` exits before its file's ``__exit__`` runs,
        leaves the file to be closed as it is collected: its ``ResourceWarning`` is Python's
        limit, not the code's, and ignored. Collected here, while it is ignored: a file the
        traceback's frames kept in a cycle, collected in a later test, failed that test."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            sys.settrace(self)
            try:
                yield
            finally:
                sys.settrace(None)
                gc.collect()

    def __call__(self, frame: FrameType, event: str, arg: object) -> TraceFunction | None:
        return self.line if frame.f_code.co_filename == self.file else None

    def line(self, frame: FrameType, event: str, arg: object) -> TraceFunction:
        if event == "line" and not self.raised and frame.f_lineno not in self.spared and self.after():
            if self.left == 0:
                self.raised = True
                raise KeyboardInterrupt
            self.left -= 1
        return self.line
