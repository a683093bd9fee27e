"""The command stopped by a signal: SIGTERM (``kill``, a service manager stopping it) cleans up
as Ctrl-C does, leaving no temp file of an ``export -o FILE`` behind, and exits 143 (128 +
SIGTERM, what a shell reports for a command the signal stopped)."""

from __future__ import annotations

import contextlib
import inspect
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Container
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from cli_runs import InterruptAt, torn_store
from simulacra_session import FileSessionStore
from simulacra_session.cli import bench, export_output, main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pipes")


def _full_pipe() -> tuple[int, int]:
    """A pipe whose buffer is full: a blocking write to it waits until its reader reads."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    for size in (4096, 1):  # the last bytes one at a time: a bigger write is refused whole
        try:
            while True:
                os.write(write_end, b"x" * size)
        except BlockingIOError:
            pass
    os.set_blocking(write_end, True)  # the command's writes wait, as on any pipe
    return read_end, write_end


def _wait_for(found: Callable[[], bool], what: str) -> None:
    """Wait (60 s at most) until ``found()`` is true: the test's own wait, no timing asserted."""
    deadline = time.monotonic() + 60
    while not found():
        assert time.monotonic() < deadline, f"no {what} after 60 s"
        time.sleep(0.01)


def test_sigterm_during_an_export_to_a_file_removes_its_temp_file(tmp_path: Path) -> None:
    """The export is held in the middle: the warning about a session it cannot read waits on
    a stderr pipe this test filled. The signal goes as soon as the temp file is there, which
    may be before that wait (the test below tries every line from the temp file's making)."""
    torn_store(tmp_path / "s")
    out = tmp_path / "out" / "backup.jsonl"
    out.parent.mkdir()
    read_end, write_end = _full_pipe()
    try:
        command = [sys.executable, "-m", "simulacra_session", "--store", str(tmp_path / "s")]
        child = subprocess.Popen(
            [*command, "export", "-o", str(out)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=write_end,
        )
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as err:
        try:
            _wait_for(lambda: any(out.parent.iterdir()), "temp file beside the export")
            child.send_signal(signal.SIGTERM)
            stderr = err.read()  # lets the command write on, and to its end
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=60)
    assert child.returncode == 143, stderr[-500:]
    assert list(out.parent.iterdir()) == [], "the temp file is left"
    lines = stderr.lstrip(b"x").decode().splitlines()  # the warning may come before or after:
    assert "simulacra-session: terminated" in lines  # it was held in the full pipe meanwhile
    assert all(line.startswith("simulacra-session: ") for line in lines), lines


@pytest.mark.parametrize("case", ["new file", "file replaced", "rewritten in place"])
def test_an_interrupt_at_any_line_of_an_export_to_a_file_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """From its temp file's making to its rename, wherever the interrupt lands: the temp file
    is removed, and the file asked for is the old one or the whole export. Where its
    directory takes no new file, the same with the export spooled and copied over it, a
    signal held while it is (the lines of ``_rewrite`` and ``_copy``, spared here)."""
    out = tmp_path / "backup.jsonl"
    spared: Container[int] = ()
    if case == "rewritten in place":
        real = os.open

        def refusing(path: str, flags: int, *args: int) -> int:
            if os.path.basename(path).startswith(".backup."):
                raise PermissionError(13, "Permission denied", path)
            return real(path, flags, *args)

        monkeypatch.setattr(os, "open", refusing)
        spared = _lines_of(export_output._rewrite, export_output._copy)
    for step in itertools.count():
        if case == "new file":
            out.unlink(missing_ok=True)
        else:
            out.write_bytes(b"yesterday\n")
        made = lambda: any(tmp_path.iterdir())  # noqa: E731
        interrupt = InterruptAt(export_output.__file__, step, after=made, spared=spared)
        placed: list[str] = []
        with (
            interrupt.armed(),
            contextlib.suppress(KeyboardInterrupt),
            export_output.export_output(str(out), lambda: True, placed) as written,
        ):
            written.write(b"today\n")
        assert [p.name for p in tmp_path.iterdir() if p.name != out.name] == [], f"step {step}"
        found = out.read_bytes() if out.exists() else None
        assert found in (None if case == "new file" else b"yesterday\n", b"today\n"), f"step {step}"
        if not interrupt.raised:
            assert placed == [str(out)]
            assert step > 5  # every line up to the end was tried
            break


def _lines_of(*functions: Callable[..., object]) -> set[int]:
    """The line numbers of ``functions``' source."""
    lines: set[int] = set()
    for function in functions:
        source, first = inspect.getsourcelines(function)
        lines.update(range(first, first + len(source)))
    return lines


def _cleanup_lines(manager: Callable[..., object]) -> range:
    """The lines of the ``finally`` block ending ``manager``'s generator: an interrupt landing
    there cuts the cleanup short, as in any Python code (a second fault, not the one tested)."""
    lines, first = inspect.getsourcelines(inspect.unwrap(manager))
    at = next(index for index, line in enumerate(lines) if line.strip() == "finally:")
    return range(first + at, first + len(lines))


def test_an_interrupt_at_any_line_of_a_bench_leaves_no_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bench`` writes in a directory of its own in ``$TMPDIR``: it is removed wherever the
    interrupt lands, from the command's start to its end (its name is picked first), but in
    the removal itself."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for step in itertools.count():
        interrupt = InterruptAt(bench.__file__, step, spared=_cleanup_lines(bench._root))
        with interrupt.armed():
            status = main(["bench", "--store", "memory", "--no-fsync", "--lengths", "1", "--rounds", "1"])
        assert list(tmp_path.iterdir()) == [], f"step {step}"
        assert status == (130 if interrupt.raised else 0), capsys.readouterr().err
        if not interrupt.raised:
            assert step > 20  # every line up to the end was tried
            break


class _SignalAtThreadStart:
    """A trace function sending the process SIGTERM as the ``step``-th thread started once
    ``after()`` is true has begun to run but is not yet known to the pool that started it
    (``Thread.start`` waits for it to run): where a signal landing now and then orphaned a
    worker of the event loop's executor, whose work went on after the command had returned."""

    def __init__(self, step: int, after: Callable[[], bool]) -> None:
        source, first = inspect.getsourcelines(threading.Thread.start)
        self.line = first + next(i for i, text in enumerate(source) if "self._started.wait()" in text)
        self.left, self.after, self.sent = step, after, False

    def __call__(self, frame: FrameType, event: str, arg: object) -> Callable[..., object] | None:
        return self.started if frame.f_code is threading.Thread.start.__code__ else None

    def started(self, frame: FrameType, event: str, arg: object) -> Callable[..., object] | None:
        if event == "line" and frame.f_lineno == self.line and not self.sent and self.after():
            if self.left == 0:
                self.sent = True
                signal.raise_signal(signal.SIGTERM)
            self.left -= 1
        return self.started


def test_sigterm_as_a_thread_starts_leaves_no_work_running(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Wherever a thread the export starts is when SIGTERM comes (a slow disk's listing runs
    meanwhile), the command ends only once the work it started has: its warnings are its
    own, reported before "terminated", and nothing of it runs on after it returned (no thread
    it started is alive; what its threads log as they end, joined here, once it has). The last
    thread is ``asyncio.run``'s, shutting down the executor (made slow): a signal raised as it
    started left it running, and on uvloop failing once the loop was closed."""
    torn_store(tmp_path / "s")
    out = tmp_path / "out"
    out.mkdir()
    listing, shutdown = FileSessionStore._list_sync, ThreadPoolExecutor.shutdown

    def slow(self: FileSessionStore, *args: Any) -> Any:
        time.sleep(0.5)
        return listing(self, *args)

    def slow_shutdown(self: ThreadPoolExecutor, *args: Any, **kwargs: Any) -> None:
        if threading.current_thread() is not threading.main_thread():  # asyncio.run's
            time.sleep(0.3)
        shutdown(self, *args, **kwargs)

    monkeypatch.setattr(FileSessionStore, "_list_sync", slow)
    monkeypatch.setattr(ThreadPoolExecutor, "shutdown", slow_shutdown)
    for step in itertools.count():
        running = set(threading.enumerate())
        at = _SignalAtThreadStart(step, after=lambda: any(out.iterdir()))
        sys.settrace(at)
        try:
            status = main(["--store", str(tmp_path / "s"), "export", "-o", str(out / "backup.jsonl")])
        finally:
            sys.settrace(None)
        caplog.clear()
        left = set(threading.enumerate()) - running
        for thread in left:
            thread.join()
        assert [thread.name for thread in left] == [], f"step {step}: running once the command returned"
        err = capsys.readouterr().err
        assert caplog.messages == [], f"step {step}: logged once the command had returned"
        if not at.sent:
            assert status == 1, err  # the torn session left out
            assert step > 0  # a thread was started, and signalled as it was
            break
        assert status == 143, err
        assert err.splitlines()[-1] == "simulacra-session: terminated", err
        assert [path.name for path in out.iterdir() if not path.name.startswith("backup.")] == []
