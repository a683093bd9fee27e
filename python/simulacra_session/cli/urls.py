"""Store URLs: what ``--store``, ``copy SRC DST`` and ``$SIMULACRA_SESSION_STORE`` name.

- a directory path, or ``file:PATH``: the file store (``file:PATH?format=json`` writes the
  original library's ``{id}.json`` documents; either reads both formats);
- an SQLAlchemy URL: ``sqlite:///path.db``, ``postgresql+psycopg://user:pw@host/db``,
  ``mysql+pymysql://user:pw@host/db`` (MariaDB too), with ``?table=NAME`` for another table
  than ``simulacra_sessions``. These need the ``sql`` extra and a driver (``postgres``,
  ``mysql`` extras).

The parser (``commands``) imports this module, which imports nothing heavy at its top: a
store, asyncio and SQLAlchemy are imported when a command opens one.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from ..errors import StoreError
from . import signals

if TYPE_CHECKING:
    from ..protocols import SessionStore
    from ..stores.sql import SqlSessionStore

    #: A command's work on the store ``--store`` names: its exit status.
    Work = Callable[[SessionStore, argparse.Namespace], Awaitable[int]]

__all__ = [
    "DEFAULT_STORE",
    "STORE_ENV",
    "CommandError",
    "OpenStore",
    "on_store",
    "open_store",
    "printable",
    "run_on",
    "store_url",
]

STORE_ENV = "SIMULACRA_SESSION_STORE"
DEFAULT_STORE = "./sessions"
_SQL_BACKENDS = frozenset({"sqlite", "postgresql", "mysql", "mariadb"})
#: The package that installs a database driver, for the message naming a missing one.
_DRIVER_INSTALL = {
    "psycopg": "pip install 'simulacra-session[postgres]'",
    "pymysql": "pip install 'simulacra-session[mysql]'",
    "sqlalchemy": "pip install 'simulacra-session[sql]'",
    "MySQLdb": "pip install mysqlclient",
    "psycopg2": "pip install psycopg2-binary",
}
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")


class CommandError(Exception):
    """A failure the command reports in one line (exit status 2)."""


class OpenStore:
    """A store the command opened, and its URL as printed (a password hidden). A plain class:
    ``dataclasses`` (it imports ``inspect``) would add ~8 ms to the parser's imports."""

    def __init__(self, store: SessionStore, label: str) -> None:
        self.store = store
        self.label = label

    async def close(self) -> None:
        """Dispose of a database store's engine; a file store holds nothing open."""
        close = getattr(self.store, "close", None)
        if close is not None:
            await close()


def printable(url: str) -> str:
    """``url`` with any password hidden, for messages."""
    return _PASSWORD.sub(r"\1***@", url)


def open_store(url: str, *, create: bool) -> OpenStore:
    """The store ``url`` names. ``create``: the command writes, so a missing directory or
    table is made; otherwise a missing directory or table is an error. ``CommandError``
    names the URL for a bad one, or a missing extra or driver."""
    if not url:
        raise CommandError("empty store URL")
    if url.startswith("file:"):
        return _file_store(url, url[len("file:") :], create)
    if "://" in url:
        return _sql_store(url, create)
    return _file_store(url, url, create)


def _file_store(url: str, location: str, create: bool) -> OpenStore:
    path, _, query = location.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    file_format = options.pop("format", "jsonl")
    if options:
        raise CommandError(f"{url}: unknown option(s) {', '.join(sorted(options))} (file stores take format)")
    if file_format not in ("jsonl", "json"):
        raise CommandError(f"{url}: format must be jsonl or json, not {file_format!r}")
    if not path:
        raise CommandError(f"{url}: no directory named")
    if not create and not os.path.isdir(path):
        raise CommandError(f"{path}: no such directory (name a store with --store or ${STORE_ENV})")
    from ..stores import FileSessionStore

    store = FileSessionStore(path, format="json" if file_format == "json" else "jsonl")
    return OpenStore(store, path if file_format == "jsonl" else f"{path}?format=json")


def _sql_store(url: str, create: bool) -> OpenStore:
    label = printable(url)
    backend = url.split("://", 1)[0].split("+", 1)[0].lower()
    if backend not in _SQL_BACKENDS:
        raise CommandError(
            f"{label}: not a store URL: expected a directory, file:PATH, sqlite:///PATH, "
            "postgresql+psycopg://... or mysql+pymysql://..."
        )
    try:
        import sqlalchemy as sa

        from ..stores.sql import SqlSessionStore
    except ImportError:
        raise CommandError(f"{label}: SQL stores need SQLAlchemy: {_DRIVER_INSTALL['sqlalchemy']}") from None
    try:
        parsed = sa.make_url(url)
        table = parsed.query.get("table", "simulacra_sessions")
        parsed = parsed.difference_update_query(["table"])
        label = parsed.render_as_string(hide_password=True)
        database = parsed.database if parsed.get_backend_name() == "sqlite" else None
        missing = database not in (None, "", ":memory:") and not os.path.exists(str(database))
        if missing and not create and "uri" not in parsed.query:  # SQLite would make it: a read must not
            raise CommandError(f"{label}: no such database file: {database}")
        store: SqlSessionStore = SqlSessionStore(parsed, table=_one(table), create=create)
    except ModuleNotFoundError as error:
        module = (error.name or "").split(".")[0]
        install = _DRIVER_INSTALL.get(module, f"pip install {module}")
        raise CommandError(f"{label}: the database driver {module!r} is not installed: {install}") from None
    except (sa.exc.ArgumentError, ValueError, TypeError) as error:
        raise CommandError(f"{label}: {error}") from None
    return OpenStore(store, label)


def _one(value: Any) -> str:
    """A query parameter given once (a tuple when given several times)."""
    if isinstance(value, tuple):
        raise CommandError(f"table given {len(value)} times")
    return str(value)


def store_url(given: str | None) -> str:
    """The store a command works on: ``--store``, else ``$SIMULACRA_SESSION_STORE``, else
    ``./sessions``. An empty ``--store`` (``--store "$UNSET"``) is an error, not the default."""
    if given == "":
        raise CommandError(
            f"--store is empty: name a directory or a store URL, or leave it out for ${STORE_ENV}"
        )
    return given or os.environ.get(STORE_ENV) or DEFAULT_STORE


def run_on(url: str, work: Callable[[SessionStore], Awaitable[int]], *, create: bool) -> int:
    """Open the store ``url`` names, run ``work`` on it, close it; its exit status. A store's
    failure (a refused connection, an unknown host, a missing table) is reported naming the URL."""

    async def run() -> int:
        opened = open_store(url, create=create)
        try:
            return await work(opened.store)
        except StoreError as error:
            raise CommandError(f"{opened.label}: {error}") from None
        except OSError as error:  # a driver's socket error names no file: name the URL
            if error.filename is not None or isinstance(error, BrokenPipeError):  # not the store's
                raise
            raise CommandError(f"{opened.label}: {error.strerror or error}") from None
        finally:
            await opened.close()

    return signals.run(run())


def on_store(work: Work, *, create: bool) -> Callable[[argparse.Namespace], int]:
    """A command's ``run``: ``work(store, args)`` on the store ``--store`` names (see ``run_on``)."""

    def run(args: argparse.Namespace) -> int:
        return run_on(store_url(args.store_url), lambda store: work(store, args), create=create)

    return run
