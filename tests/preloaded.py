"""Children that run a test's script without paying for a fresh interpreter each time.

Kill-loop tests start a process, SIGKILL it at a random moment inside a write and check what
it left, many times over. A fresh ``python -c SCRIPT`` per round spends ~0.3 s of CPU
importing the package; a child forked from a process that has already imported it starts in
a few milliseconds. This module forks children from multiprocessing's "forkserver": one
server per test process (so one per xdist worker), started on the first ``start`` with
``PRELOAD`` (and this module) imported. The package reads ``SIMULACRA_SESSION_PURE`` when the
server imports it, from the environment the test process has; each child checks that its
``simulacra_session.BACKEND`` is the test process's and fails (exit 1, a traceback) if not.

The API, kept small and stable for every test that kills children::

    with preloaded.start(SCRIPT, str(root), "1") as child:  # SCRIPT sees sys.argv[1:] == [root, "1"]
        child.ready()              # blocks for its first stdout line, b"ready\\n" (else AssertionError
                                   # holding the line, the exit status and the child's stderr)
        if child.wait(0.1) is None:  # its exit status (as Popen.returncode), or None while it runs
            child.kill()           # SIGKILL (if still running) and reap: returns the exit status
        assert child.exitcode == -signal.SIGKILL, child.stderr()

- ``start(script, *args)`` runs ``script`` (source text, as ``python -c``) in a forked child
  with ``sys.argv == ["-c", *args]`` and ``__name__ == "__main__"``. Its stdout is a pipe read
  by ``readline(timeout)``/``ready(line, timeout)``; its stderr (tracebacks, warnings) goes to
  a temporary file, so it never blocks on a full pipe; ``stderr()`` returns what it wrote.
- ``wait(timeout)``, ``kill()``, ``exitcode`` and ``pid`` are those of a ``Popen``: waiting
  blocks on the forkserver's report of the child's end (a pipe), never a polling loop.
- A child never outlives its test: leaving the ``with`` block (``close()``) kills and reaps
  it, and each child also holds a lifeline pipe whose only write end is in the test process:
  when that closes (``close()``, the ``Child`` being collected, or the test process dying,
  say on a timeout), a thread in the child ends it at once.

The script may import anything; modules not in ``PRELOAD`` are imported by the child itself,
at their usual cost. Unix only (forkserver); the tests using it skip on Windows.
"""

from __future__ import annotations

import builtins
import multiprocessing
import os
import select
import sys
import tempfile
import threading
import time
from multiprocessing import reduction
from types import TracebackType
from typing import Any

import simulacra_session

__all__ = ["PRELOAD", "Child", "start"]

#: What the forkserver imports before it forks children: what the tests' scripts use (the
#: file store's kill loops; the SQL and Claude Agent SDK writers, ~0.5 s of CPU each to
#: import). One missing here (an extra not installed) is skipped: a child imports it itself.
PRELOAD: tuple[str, ...] = (
    "simulacra_session",
    "simulacra_session.stores.file",
    "simulacra_session.stores.sql",
    "sqlalchemy.ext.asyncio",
    "aiosqlite",
    "psycopg",
    "pymysql",
    "claude_agent_sdk",
    "simulacra_session.integrations.claude_agent_sdk",
)


class _Fd:
    """A file descriptor handed to a forkserver child: pickling it while the child is being
    started sends a duplicate over the server's socket; the child gets its own number."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return (_Fd._received, (reduction.DupFd(self.fd),))

    @staticmethod
    def _received(duplicate: Any) -> _Fd:
        return _Fd(duplicate.detach())


def _end_when_closed(lifeline: int) -> None:
    """In the child: block until the test process closes (or loses) the lifeline, then end."""
    while os.read(lifeline, 1):
        pass
    os._exit(70)


def _child(script: str, args: list[str], backend: str, stdout: _Fd, stderr: _Fd, lifeline: _Fd) -> None:
    """The forkserver child: wire stdout/stderr, watch the lifeline, check the backend, run."""
    os.dup2(stdout.fd, 1)
    os.dup2(stderr.fd, 2)
    os.close(stdout.fd)
    os.close(stderr.fd)
    threading.Thread(target=_end_when_closed, args=(lifeline.fd,), name="lifeline", daemon=True).start()
    if backend != simulacra_session.BACKEND:
        raise RuntimeError(
            f"the child's backend is {simulacra_session.BACKEND!r}, the test process's {backend!r}"
        )
    sys.argv = ["-c", *args]
    exec(compile(script, "<string>", "exec"), {"__name__": "__main__", "__builtins__": builtins})


class Child:
    """A running (or ended) script started by ``start``; see the module docstring."""

    def __init__(self, script: str, args: tuple[str, ...]) -> None:
        context = multiprocessing.get_context("forkserver")
        # Only matters before the server starts. "__main__": a test process run as a script
        # (the ``pytest`` command) has it imported by the server once, not by every child.
        context.set_forkserver_preload(["__main__", *PRELOAD, __name__])
        self._buffer = b""
        self._stderr = tempfile.TemporaryFile()  # closed with the Child  # noqa: SIM115
        stdout_r, stdout_w = os.pipe()
        lifeline_r, lifeline_w = os.pipe()
        self._stdout = stdout_r
        self._lifeline = open(lifeline_w, "wb")  # closed with the Child at the latest  # noqa: SIM115
        child_fds = (_Fd(stdout_w), _Fd(self._stderr.fileno()), _Fd(lifeline_r))
        self._process = context.Process(
            target=_child,
            args=(script, list(args), simulacra_session.BACKEND, *child_fds),
            name="preloaded",
            daemon=True,
        )
        try:
            self._process.start()
        except BaseException:
            self._close_files()
            raise
        finally:
            os.close(stdout_w)
            os.close(lifeline_r)
        assert self._process.pid is not None
        self.pid: int = self._process.pid

    @property
    def exitcode(self) -> int | None:
        """The exit status once reaped (``-signal.SIGKILL`` when killed), else ``None``."""
        return self._process.exitcode

    def readline(self, timeout: float = 60.0) -> bytes:
        """The child's next stdout line, with its newline; what is left (maybe ``b""``) once
        the child closed its stdout. ``TimeoutError`` after ``timeout`` seconds without one."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._stdout], [], [], left)[0]:
                raise TimeoutError(f"no line from child {self.pid} in {timeout} s")
            chunk = os.read(self._stdout, 65536)
            if not chunk:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def ready(self, line: bytes = b"ready\n", timeout: float = 60.0) -> None:
        """The handshake: the child's first line must be ``line``; if it is not (the child
        failed, or said something else), it is killed and an ``AssertionError`` tells why."""
        try:
            said = self.readline(timeout)
        except TimeoutError as error:
            said = f"nothing ({error})".encode()
        if said != line:
            status = self.kill()
            raise AssertionError(
                f"child said {said!r}, not {line!r} (exit status {status}); its stderr:\n{self.stderr()}"
            )

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the child ends (at most ``timeout`` seconds): its exit status, or
        ``None`` if it still runs."""
        self._process.join(timeout)
        return self._process.exitcode

    def kill(self) -> int:
        """SIGKILL the child unless it already ended, reap it, and return its exit status."""
        if self._process.exitcode is None:
            self._process.kill()
        self._process.join()
        status = self._process.exitcode
        assert status is not None
        return status

    def stderr(self) -> str:
        """What the child wrote to stderr so far (all of it once it ended)."""
        size = os.fstat(self._stderr.fileno()).st_size
        return os.pread(self._stderr.fileno(), size, 0).decode(errors="replace")

    def close(self) -> None:
        """Kill and reap the child if it runs, and release its pipes and files."""
        if self._process.exitcode is None:
            self.kill()
        self._process.close()
        self._close_files()

    def _close_files(self) -> None:
        self._lifeline.close()
        self._stderr.close()
        if self._stdout >= 0:
            os.close(self._stdout)
            self._stdout = -1

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def start(script: str, *args: str) -> Child:
    """Run ``script`` (source text) with ``sys.argv[1:] == args`` in a child forked from the
    preloaded forkserver. Use the result as a context manager, so the child cannot outlive
    the test."""
    return Child(script, args)
