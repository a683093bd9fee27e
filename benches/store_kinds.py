"""Each bundled store, opened fresh for a benchmark, with its durable settings.

``memory`` (nothing durable), ``file`` (journal, fsync), ``sqlite`` (WAL, synchronous=FULL),
``postgresql`` and ``mysql`` (the servers named by ``SIMULACRA_TEST_POSTGRES_URL`` and
``SIMULACRA_TEST_MYSQL_URL``, default durability: every commit flushed to the log) and
``adapter`` (``AdapterSessionStore`` over the plain-sqlite3 adapter of ``examples/adapter_sqlite3.py``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from simulacra_session import AdapterSessionStore, FileSessionStore, InMemorySessionStore, SessionStore
from simulacra_session.stores.sql import SqlSessionStore

sys.path.insert(0, str(Path(__file__).parent.parent / "examples"))

from adapter_sqlite3 import Sqlite3Adapter

__all__ = ["STORES", "open_store"]

STORES = ["memory", "file", "sqlite", "postgresql", "mysql", "adapter"]
_SERVERS = {"postgresql": "SIMULACRA_TEST_POSTGRES_URL", "mysql": "SIMULACRA_TEST_MYSQL_URL"}


@contextmanager
def open_store(kind: str, root: Path) -> Iterator[SessionStore]:
    """A fresh, empty store of ``kind`` under ``root`` (server tables of its own, dropped after)."""
    if kind == "memory":
        yield InMemorySessionStore()
    elif kind == "file":
        yield FileSessionStore(root / "sessions")
    elif kind == "adapter":
        adapter = Sqlite3Adapter(str(root / "adapter.db"))
        yield AdapterSessionStore(adapter)
        adapter.db.close()
    else:
        url = f"sqlite:///{root / 'sessions.db'}" if kind == "sqlite" else os.environ.get(_SERVERS[kind])
        if not url:
            pytest.skip(f"{_SERVERS[kind]} is not set (scripts/db-servers.sh starts the servers)")
        table = f"b{uuid.uuid4().hex[:12]}"
        store = SqlSessionStore(url, table=table)
        try:
            yield store
        finally:
            asyncio.run(store.drop_tables())
            asyncio.run(store.close())
