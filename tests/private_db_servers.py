"""Database servers that misbehave, for the SQL store's fault tests (``test_sql_server_faults.py``).

:class:`CuttingProxy` sits between the store and a real server (the shared test servers of
``scripts/db-servers.sh``) and cuts a connection at its ``COMMIT``: before the server sees it
(the transaction rolls back) or after the server committed and before its answer reaches the
client (the commit landed, and the client cannot know). :class:`PrivatePostgres` is a server
of the test's own, on a temporary data directory and a free port, that a test may stop, kill
or restart without disturbing the shared servers other tests use.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from threading import Event
from typing import Any, Literal

import pytest
import sqlalchemy as sa

__all__ = ["CuttingProxy", "PrivatePostgres", "Stop", "private_postgres"]

Cut = Literal["before", "after"]
Stop = Literal["fast", "immediate", "kill"]


class CuttingProxy:
    """A TCP proxy to ``upstream`` that cuts the next connection sending ``COMMIT`` once armed.

    ``cut("before")``: the connection is closed before ``COMMIT`` reaches the server (it rolls
    the transaction back); ``cut("after")``: ``COMMIT`` reaches the server, which commits, and
    its answer is dropped with the connection. Both look the same to the client: a connection
    lost during its commit. Works for PostgreSQL and MySQL alike (both send ``COMMIT`` as the
    text of a simple query). ``cuts`` counts the connections cut. ``hold()`` makes it a server
    that accepts connections and never answers.
    """

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._armed: Cut | None = None
        self._then: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.cuts = 0
        self.accepted = 0  # connections accepted
        self._holding = False
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: sa.URL) -> sa.URL:
        """``url`` with its host and port this proxy's."""
        return url.set(host="127.0.0.1", port=self.port)

    def cut(self, when: Cut, *, then: Callable[[], None] | None = None) -> None:
        """Cut the next connection to send ``COMMIT``, ``when`` the server sees it or not;
        ``then`` runs just before the cut (after the server's answer, for ``"after"``): a
        server stopped there is one that committed and went away before the client heard."""
        with self._lock:
            self._armed = when
            self._then = then

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    def hold(self, holding: bool = True) -> None:
        """Accept connections and never answer them (a hung server), or stop doing so."""
        self._holding = holding

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self._holding:
                with self._lock:
                    self._sockets.append(client)
                continue
            try:
                server = socket.create_connection(self._upstream)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets += [client, server]
            answered = Event()  # the server's answer to a COMMIT cut "after" came
            swallowing = Event()
            threading.Thread(
                target=self._to_server, args=(client, server, swallowing, answered), daemon=True
            ).start()
            threading.Thread(
                target=self._to_client, args=(server, client, swallowing, answered), daemon=True
            ).start()

    def _to_server(
        self,
        client: socket.socket,
        server: socket.socket,
        swallowing: threading.Event,
        answered: threading.Event,
    ) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                when = then = None
                if b"COMMIT" in data.upper():
                    with self._lock:
                        when, self._armed, then, self._then = self._armed, None, self._then, None
                if when == "after":
                    swallowing.set()
                    server.sendall(data)
                    answered.wait(10)
                if when is not None:
                    if then is not None:
                        then()
                    self.cuts += 1
                    break
                server.sendall(data)
        _close(client)
        _close(server)

    def _to_client(
        self,
        server: socket.socket,
        client: socket.socket,
        swallowing: threading.Event,
        answered: threading.Event,
    ) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                if swallowing.is_set():
                    answered.set()
                    return  # the other direction cuts the connection, once ``then`` has run
                client.sendall(data)
        answered.set()
        _close(client)
        _close(server)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


# -- a PostgreSQL server of the test's own ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PrivatePostgres:
    """A PostgreSQL server on ``datadir`` and ``port``, run as the ``postgres`` OS user (it
    refuses root), that the test may stop (``mode``: smart, fast, immediate), kill and start."""

    def __init__(self, bindir: Path, datadir: Path, port: int) -> None:
        self._bin = bindir
        self.datadir = datadir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> sa.URL:
        return sa.make_url(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres")

    @staticmethod
    def _as_postgres() -> dict[str, Any]:
        """Popen's arguments running a program as ``postgres`` when this process is root (the
        server refuses root; and without a wrapper process, a signal sent reaches the server)."""
        return {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}

    def init(self) -> None:
        subprocess.run(
            [str(self._bin / "initdb"), "-D", str(self.datadir), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
            **self._as_postgres(),
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections (again, should it exit at once:
        after a SIGKILL the old server's backends hold its shared memory until they notice)."""
        command = [str(self._bin / "postgres"), "-D", str(self.datadir), "-p", str(self.port)]
        for setting in (
            "listen_addresses=127.0.0.1",
            f"unix_socket_directories={self.datadir}",
            "fsync=off",  # a test server: a crash of the server, never of the machine
            "max_connections=20",
        ):
            command += ["-c", setting]
        deadline = time.monotonic() + 30
        while True:
            with open(self.datadir.parent / f"{self.datadir.name}.log", "ab") as log:
                self.process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, **self._as_postgres()
                )
            while self.process.poll() is None:
                if self._answers():
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"private PostgreSQL on port {self.port} did not start")
                time.sleep(0.05)
            if time.monotonic() > deadline:
                raise RuntimeError(f"private PostgreSQL on port {self.port} did not start")
            time.sleep(0.1)

    def _answers(self) -> bool:
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError:
            return False
        finally:
            engine.dispose()
        return True

    def stop(self, mode: Stop = "fast") -> None:
        """Stop the server: a fast shutdown (SIGINT), an immediate one (SIGQUIT) or SIGKILL of
        the postmaster (its backends then notice and exit; the next start recovers from WAL)."""
        process = self.process
        if process is None:
            return
        sig = {"fast": signal.SIGINT, "immediate": signal.SIGQUIT, "kill": signal.SIGKILL}[mode]
        process.send_signal(sig)
        process.wait(30)
        self.process = None


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started :class:`PrivatePostgres` (its data in a new directory of the system's temporary
    one, which the ``postgres`` user can reach), stopped and removed afterwards; skips (fails
    under CI) when PostgreSQL's programs are not installed (``scripts/db-servers.sh`` does it)."""
    bindir = _postgres_bin()
    why = None
    if bindir is None:
        why = "PostgreSQL is not installed: run scripts/db-servers.sh"
    elif os.geteuid() == 0 and not _has_user("postgres"):
        why = "no OS user postgres to run PostgreSQL as (it refuses root)"
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    assert bindir is not None
    datadir = Path(tempfile.mkdtemp(prefix="simulacra-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(datadir, "postgres", "postgres")
        server = PrivatePostgres(bindir, datadir, _free_port())
        server.init()
        server.start()
        try:
            yield server
        finally:
            server.stop("immediate")
    finally:
        shutil.rmtree(datadir, ignore_errors=True)
        Path(f"{datadir}.log").unlink(missing_ok=True)
