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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from threading import Event
from typing import Any, ClassVar, Literal

import pytest
import sqlalchemy as sa

__all__ = ["CuttingProxy", "PrivateMariaDB", "PrivatePostgres", "PrivateServer", "Stop", "private_server"]

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


# -- servers of the test's own ------------------------------------------------------------------


_MARIADBD = "/usr/sbin/mariadbd"


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


class PrivateServer:
    """A database server on ``datadir`` and ``port``, run as its own OS user (``owner``; a
    server refuses root), that the test may stop (see :meth:`stop`) and start again."""

    owner = ""
    #: The signal of each way to stop: a clean shutdown, an abrupt one, a crash.
    signals: ClassVar[Mapping[str, signal.Signals]] = {}

    def __init__(self, datadir: Path, port: int) -> None:
        self.datadir = datadir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> sa.URL:
        raise NotImplementedError

    def init(self) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def _as_owner(self) -> dict[str, Any]:
        """Popen's arguments running a program as ``owner`` when this process is root (without
        a wrapper process such as runuser: a signal sent reaches the server itself)."""
        return {"user": self.owner, "group": self.owner, "extra_groups": []} if os.geteuid() == 0 else {}

    def start(self) -> None:
        """Start the server and wait until it accepts connections (again, should it exit at once:
        after a SIGKILL, PostgreSQL's old backends hold its shared memory until they notice)."""
        deadline = time.monotonic() + 30
        while True:
            with open(self.datadir.parent / f"{self.datadir.name}.log", "ab") as log:
                self.process = subprocess.Popen(
                    self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, **self._as_owner()
                )
            while self.process.poll() is None:
                if self._answers():
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"private server on port {self.port} did not start")
                time.sleep(0.05)
            if time.monotonic() > deadline:
                raise RuntimeError(f"private server on port {self.port} did not start")
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
        """Stop the server: ``fast`` (a clean shutdown), ``immediate`` (abrupt: no checkpoint,
        connections dropped) or ``kill`` (SIGKILL: a crash; the next start recovers)."""
        process = self.process
        if process is None:
            return
        process.send_signal(self.signals[mode])
        process.wait(30)
        self.process = None


class PrivatePostgres(PrivateServer):
    """PostgreSQL: fast is SIGINT, immediate SIGQUIT, kill SIGKILL of the postmaster (its
    backends notice and exit in a while, serving their connections meanwhile)."""

    owner = "postgres"
    signals: ClassVar[Mapping[str, signal.Signals]] = {
        "fast": signal.SIGINT,
        "immediate": signal.SIGQUIT,
        "kill": signal.SIGKILL,
    }

    def __init__(self, bindir: Path, datadir: Path, port: int) -> None:
        super().__init__(datadir, port)
        self._bin = bindir

    @property
    def url(self) -> sa.URL:
        return sa.make_url(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres")

    def init(self) -> None:
        subprocess.run(
            [str(self._bin / "initdb"), "-D", str(self.datadir), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
            **self._as_owner(),
        )

    def command(self) -> list[str]:
        command = [str(self._bin / "postgres"), "-D", str(self.datadir), "-p", str(self.port)]
        for setting in (
            "listen_addresses=127.0.0.1",
            f"unix_socket_directories={self.datadir}",
            "fsync=off",  # a test server: a crash of the server, never of the machine
            "max_connections=20",
        ):
            command += ["-c", setting]
        return command


class PrivateMariaDB(PrivateServer):
    """MariaDB without grant tables (any client is root): fast is SIGTERM (a clean shutdown);
    immediate and kill are SIGKILL (InnoDB recovers at the next start)."""

    owner = "mysql"
    signals: ClassVar[Mapping[str, signal.Signals]] = {
        "fast": signal.SIGTERM,
        "immediate": signal.SIGKILL,
        "kill": signal.SIGKILL,
    }

    @property
    def url(self) -> sa.URL:
        return sa.make_url(f"mysql+pymysql://root@127.0.0.1:{self.port}/simulacra")

    def init(self) -> None:
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--user={self.owner}",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
            ],
            check=True,
            capture_output=True,
        )
        (self.datadir / "simulacra").mkdir()  # the database: a directory of the data directory
        if os.geteuid() == 0:
            shutil.chown(self.datadir / "simulacra", self.owner, self.owner)

    def command(self) -> list[str]:
        return [
            _MARIADBD,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.datadir}/mariadb.sock",
            f"--pid-file={self.datadir}/mariadb.pid",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--skip-grant-tables",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
            "--innodb-flush-log-at-trx-commit=2",  # a crash of the server, never of the machine
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
        ]


@contextlib.contextmanager
def private_server(kind: str) -> Iterator[PrivateServer]:
    """A started private ``postgresql`` or ``mariadb`` server (its data in a new directory of
    the system's temporary one, which its OS user can reach), stopped and removed afterwards;
    skips (fails under CI) when its programs are missing (``scripts/db-servers.sh`` installs
    both)."""
    bindir = _postgres_bin()
    why = None
    if kind == "postgresql" and bindir is None:
        why = "PostgreSQL is not installed: run scripts/db-servers.sh"
    elif kind == "mariadb" and not (
        os.path.exists("/usr/sbin/mariadbd") and shutil.which("mariadb-install-db")
    ):
        why = "MariaDB is not installed: run scripts/db-servers.sh"
    owner = "postgres" if kind == "postgresql" else "mysql"
    if why is None and os.geteuid() == 0 and not _has_user(owner):
        why = f"no OS user {owner} to run the server as (it refuses root)"
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    datadir = Path(tempfile.mkdtemp(prefix=f"simulacra-{kind}-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(datadir, owner, owner)
        server: PrivateServer
        if kind == "postgresql":
            assert bindir is not None
            server = PrivatePostgres(bindir, datadir, _free_port())
        else:
            server = PrivateMariaDB(datadir, _free_port())
        server.init()
        server.start()
        try:
            yield server
        finally:
            server.stop("kill")
    finally:
        shutil.rmtree(datadir, ignore_errors=True)
        Path(f"{datadir}.log").unlink(missing_ok=True)
