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
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from threading import Event
from typing import Literal

import pytest
import sqlalchemy as sa

__all__ = ["CuttingProxy", "PrivatePostgres", "private_postgres"]

Cut = Literal["before", "after"]


class CuttingProxy:
    """A TCP proxy to ``upstream`` that cuts the next connection sending ``COMMIT`` once armed.

    ``cut("before")``: the connection is closed before ``COMMIT`` reaches the server (it rolls
    the transaction back); ``cut("after")``: ``COMMIT`` reaches the server, which commits, and
    its answer is dropped with the connection. Both look the same to the client: a connection
    lost during its commit. Works for PostgreSQL and MySQL alike (both send ``COMMIT`` as the
    text of a simple query). ``cuts`` counts the connections cut.
    """

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._armed: Cut | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.cuts = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: sa.URL) -> sa.URL:
        """``url`` with its host and port this proxy's."""
        return url.set(host="127.0.0.1", port=self.port)

    def cut(self, when: Cut) -> None:
        """Cut the next connection to send ``COMMIT``, ``when`` the server sees it or not."""
        with self._lock:
            self._armed = when

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
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
                when = None
                if b"COMMIT" in data.upper():
                    with self._lock:
                        when, self._armed = self._armed, None
                if when == "after":
                    swallowing.set()
                    server.sendall(data)
                    answered.wait(10)
                if when is not None:
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
                    break
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

    def _as_postgres(self, *command: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)

    def init(self) -> None:
        subprocess.run(
            self._as_postgres(
                str(self._bin / "initdb"), "-D", str(self.datadir), "-A", "trust", "-U", "postgres"
            ),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        command = self._as_postgres(
            str(self._bin / "postgres"),
            "-D",
            str(self.datadir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.datadir}",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=20",
        )
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
                with engine.connect() as connection:
                    connection.execute(sa.text("SELECT 1"))
                engine.dispose()
                return
            except (OSError, sa.exc.OperationalError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private PostgreSQL on port {self.port} did not start") from None
                time.sleep(0.05)

    def stop(self, mode: Literal["fast", "immediate", "kill"] = "fast") -> None:
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
def private_postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    """A started :class:`PrivatePostgres` in ``tmp_path``, stopped afterwards; skips (fails
    under CI) when PostgreSQL's programs are not installed (``scripts/db-servers.sh`` does it)."""
    bindir = _postgres_bin()
    why = None
    if bindir is None:
        why = "PostgreSQL is not installed: run scripts/db-servers.sh"
    elif os.geteuid() == 0 and shutil.which("runuser") is None:
        why = "running PostgreSQL as root needs runuser"
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    assert bindir is not None
    datadir = tmp_path / "pgdata"
    datadir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp_path, "postgres")
        shutil.chown(datadir, "postgres")
    server = PrivatePostgres(bindir, datadir, _free_port())
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
