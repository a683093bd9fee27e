"""Every bundled store, reopened at will: what the framework adapters' tests run over.

``reopener(kind, root)`` gives a function that opens a new store object of ``kind`` over the
same sessions each time it is called, as a restarted process would (``memory``: the same
store each time, nothing outlives it). SQL stores get a table of the test's own, dropped
afterwards; PostgreSQL and MariaDB skip without their servers (fail under CI).
``reopen_each`` is the body of a test module's ``reopen`` fixture, over the kinds it names:
``reopen = pytest.fixture(params=DURABLE)(reopen_each)``. ``missing_framework`` imports an
adapter with its framework hidden and gives the ``ImportError`` it raised; ``run_example``
runs an example program in turn in one directory, as restarts would. ``Processes`` runs a
script in several processes at once (writers racing over one store), told by the test when
to go.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from types import TracebackType

import pytest

import preloaded
from session_samples import server_url, sql_table
from simulacra_session import AdapterSessionStore, FileSessionStore, InMemorySessionStore, SessionStore

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))

from adapter_sqlite3 import Sqlite3Adapter  # the README's example adapter: a store without append

__all__ = [
    "DURABLE",
    "KINDS",
    "Opener",
    "Processes",
    "missing_framework",
    "reopen_each",
    "reopener",
    "run_example",
]

#: Stores that keep sessions beyond their object: files in both formats, SQL, an adapter's rows.
DURABLE = ["jsonl", "json", "sqlite", "postgres", "mysql", "adapter"]
KINDS = ["memory", *DURABLE]

Opener = Callable[[], AbstractAsyncContextManager[SessionStore]]


@contextmanager
def reopener(kind: str, root: Path) -> Iterator[Opener]:
    """Opens a new store object of ``kind`` over the sessions under ``root`` at each call."""
    if kind == "memory":
        memory = InMemorySessionStore()

        @asynccontextmanager
        async def same() -> AsyncIterator[SessionStore]:
            yield memory

        yield same
    elif kind in ("jsonl", "json"):

        @asynccontextmanager
        async def files() -> AsyncIterator[SessionStore]:
            yield FileSessionStore(root / "sessions", format="jsonl" if kind == "jsonl" else "json")

        yield files
    elif kind == "adapter":

        @asynccontextmanager
        async def rows() -> AsyncIterator[SessionStore]:
            adapter = Sqlite3Adapter(str(root / "rows.db"))
            try:
                yield AdapterSessionStore(adapter)
            finally:
                adapter.db.close()

        yield rows
    else:
        yield from _sql(f"sqlite:///{root / 'sessions.db'}" if kind == "sqlite" else server_url(kind))


def reopen_each(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """A ``reopen`` fixture: opens a new store object of the kind ``request.param`` at each call."""
    with reopener(request.param, tmp_path) as opener:
        yield opener


_HIDDEN = """
import sys
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name == {framework!r} or name.startswith({framework!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Hide())
try:
    import {adapter}
except ImportError as error:
    print(error)
"""


def missing_framework(framework: str, adapter: str) -> str:
    """What importing the module ``adapter`` says in a fresh interpreter where the module
    ``framework`` cannot be imported (empty when the import succeeds)."""
    code = _HIDDEN.format(framework=framework, adapter=adapter)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return run.stdout.strip()


def run_example(name: str, cwd: Path, runs: int = 2) -> list[list[str]]:
    """The lines each of ``runs`` runs of ``examples/<name>`` printed, run one after the other
    in ``cwd`` (where the example keeps its sessions); a failing run fails the test."""
    example = Path(__file__).parent.parent / "examples" / name
    return [
        subprocess.run(
            [sys.executable, example], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        for _ in range(runs)
    ]


def _sql(where: str) -> Iterator[Opener]:
    import sqlalchemy as sa

    from simulacra_session.stores.sql import SqlSessionStore

    with sql_table(where) as tabled:
        url = sa.make_url(tabled)
        table = url.query["table"]
        assert isinstance(table, str)

        @asynccontextmanager
        async def database() -> AsyncIterator[SessionStore]:
            async with SqlSessionStore(url.difference_update_query(["table"]), table=table) as store:
                yield store

        yield database


#: Run first in a ``Processes`` script: ``told``, the lines the test says to every process, a
#: file over a local socket (``told.readline()`` blocks until the next; "" once the test is
#: done). A socket, not stdin: forkserver children have none, and it works on Windows too.
_TOLD = """
import socket as _socket, sys as _sys
told = _socket.create_connection(("127.0.0.1", int(_sys.argv.pop()))).makefile("r")
"""


class Processes:
    """``script`` (source text, as ``python -c``) running in one process per entry of
    ``argvs`` (each its ``sys.argv[1:]``), all at once, the test saying lines to all of them.

    The script reads what the test ``say``s from ``told`` (say "go" to start them at once);
    ``lines()`` is the next stdout line of each; ``finish()`` tells them the test is done
    (``told`` ends) and gives each one's exit status and stderr. Leaving the ``with`` block
    kills what still runs. The processes are forked from ``preloaded``'s forkserver, which
    has imported ``preloaded.PRELOAD`` (a fresh interpreter spends ~0.3 s of CPU importing the
    package; the script imports what is not preloaded itself); fresh interpreters where there
    is no forkserver (Windows). Either way each is a process of its own, with its own
    connections, file locks and SQLite handles, as the races tested need.
    """

    def __init__(self, script: str, argvs: Sequence[Sequence[str]], timeout: float = 60.0) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        port = str(self._server.getsockname()[1])
        self._connections: list[socket.socket] = []
        start = preloaded.start if sys.platform != "win32" else _Interpreter
        self._children: list[preloaded.Child | _Interpreter] = []
        try:
            for argv in argvs:
                self._children.append(start(_TOLD + script, *argv, port))
            self._server.settimeout(timeout)
            for _ in argvs:  # each connects first thing: then it hears every line said
                try:
                    self._connections.append(self._server.accept()[0])
                except TimeoutError:
                    raise AssertionError(
                        f"not every process connected; their stderr: {self._stderrs()}"
                    ) from None
        except BaseException:
            self.close()
            raise

    def say(self, line: str) -> None:
        """Send ``line`` to every process, one after the other with no wait in between."""
        for connection in self._connections:
            connection.sendall(f"{line}\n".encode())

    def lines(self, timeout: float = 60.0) -> list[bytes]:
        """The next stdout line of each process, with its newline (b"" from one that ended)."""
        return [child.readline(timeout) for child in self._children]

    def finish(self, timeout: float = 120.0) -> list[tuple[int | None, str]]:
        """Tell the processes the test is done, wait for their ends (each at most ``timeout``
        seconds): ``(exit status, stderr)`` of each (status ``None``: it still ran, killed)."""
        self._hang_up()
        ends = []
        for child in self._children:
            status = child.wait(timeout)
            if status is None:
                child.kill()
            ends.append((status, child.stderr()))
        return ends

    def close(self) -> None:
        """Kill and reap what still runs; release the sockets, pipes and files."""
        self._hang_up()
        self._server.close()
        for child in self._children:
            child.close()

    def _hang_up(self) -> None:
        for connection in self._connections:
            connection.close()
        self._connections = []

    def _stderrs(self) -> list[str]:
        return [child.stderr() for child in self._children]

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class _Interpreter:
    """What ``Processes`` uses of a ``preloaded.Child``, from a fresh interpreter (Windows)."""

    def __init__(self, script: str, *args: str) -> None:
        self._stderr = tempfile.TemporaryFile()  # closed with the child  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}  # the tests' helper modules
        command = [sys.executable, "-c", script, *args]
        self._popen = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._stderr, env=env)

    def readline(self, timeout: float = 60.0) -> bytes:  # blocks: Windows pipes have no select
        assert self._popen.stdout is not None
        return self._popen.stdout.readline()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> int:
        self._popen.kill()
        return self._popen.wait()

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def close(self) -> None:
        if self._popen.poll() is None:
            self.kill()
        assert self._popen.stdout is not None
        self._popen.stdout.close()
        self._stderr.close()
