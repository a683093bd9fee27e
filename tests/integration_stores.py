"""Every bundled store, reopened at will: what the framework adapters' tests run over.

``reopener(kind, root)`` gives a function that opens a new store object of ``kind`` over the
same sessions each time it is called, as a restarted process would (``memory``: the same
store each time, nothing outlives it). SQL stores get a table of the test's own, dropped
afterwards; PostgreSQL and MariaDB skip without their servers (fail under CI).
``reopen_each`` is the body of a test module's ``reopen`` fixture, over the kinds it names:
``reopen = pytest.fixture(params=DURABLE)(reopen_each)``. ``missing_framework`` imports an
adapter with its framework hidden and gives the ``ImportError`` it raised; ``run_example``
runs an example program in turn in one directory, as restarts would.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from session_samples import server_url, sql_table
from simulacra_session import AdapterSessionStore, FileSessionStore, InMemorySessionStore, SessionStore

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))

from adapter_sqlite3 import Sqlite3Adapter  # the README's example adapter: a store without append

__all__ = ["DURABLE", "KINDS", "Opener", "missing_framework", "reopen_each", "reopener", "run_example"]

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
