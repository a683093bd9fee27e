"""SqlSessionStore when a connection is lost during its commit, cut by a proxy
(``private_db_servers.CuttingProxy``) in front of the shared test servers, just before or
just after the COMMIT reaches the server: a write the server made is acknowledged, once; one
it never saw is a ``StoreError``, nothing of it stored; a SessionManager's auto-saves go on.
(The servers stopped, killed and hung: ``test_sql_server_faults.py``.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from manager_stores import Watched
from private_db_servers import CuttingProxy
from simulacra_session import StoreError
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, run, texts
from test_store_sql import server_url

SERVERS = ["postgresql", "postgresql-async", "mysql"]


@pytest.fixture(params=SERVERS)
def proxied(request: pytest.FixtureRequest) -> Iterator[tuple[SqlSessionStore, CuttingProxy]]:
    """A store (its own engine) reaching a shared test server through a ``CuttingProxy``."""
    backend: str = request.param
    url = server_url("mysql" if backend == "mysql" else "postgres")
    proxy = CuttingProxy(url.host or "127.0.0.1", url.port or 0)
    through = proxy.url(url)
    if backend == "postgresql":  # the proxy reads the COMMIT in clear text
        through = through.update_query_dict({"sslmode": "disable", "gssencmode": "disable"})
    target: sa.URL | AsyncEngine = through
    if backend == "postgresql-async":  # a connection per use: each step runs in a loop of its own
        async_url = through.set(drivername="postgresql+asyncpg").update_query_dict({"ssl": "disable"})
        target = create_async_engine(async_url, poolclass=NullPool)
    store = SqlSessionStore(target, table=f"t{uuid.uuid4().hex[:12]}")
    try:
        yield store, proxy
    finally:
        run(store.drop_tables())
        run(store.close())
        if isinstance(target, AsyncEngine):
            run(target.dispose())
        proxy.close()


# -- a connection lost during its commit ------------------------------------------------------


def test_an_append_whose_commit_landed_unheard_is_acknowledged_once(
    proxied: tuple[SqlSessionStore, CuttingProxy],
) -> None:
    """The server committed, the answer was lost with the connection: the store finds its
    revision under the row's lock and returns it, so the caller neither sees an error for a
    stored write nor appends it a second time (an ``expected`` retry would be a conflict)."""
    store, proxy = proxied
    first = run(store.save("a", [msg("one")]))
    proxy.cut("after")
    revision = run(store.append("a", [msg("two")], expected=first))
    assert proxy.cuts == 1
    stored = run(store.load("a"))
    assert stored is not None
    assert texts(stored.messages) == ["one", "two"]
    assert stored.revision == revision
    run(store.append("a", [msg("three")], expected=revision))
    stored = run(store.load("a"))
    assert stored is not None
    assert texts(stored.messages) == ["one", "two", "three"]


def test_a_first_save_whose_commit_landed_unheard_is_acknowledged(
    proxied: tuple[SqlSessionStore, CuttingProxy],
) -> None:
    """The same for a session's first write (its row did not exist before the transaction)."""
    store, proxy = proxied
    run(store.save("warm-up", [msg("x")]))  # the schema check commits through the proxy too
    proxy.cut("after")
    revision = run(store.save("b", [msg("one"), msg("two")]))
    assert proxy.cuts == 1
    stored = run(store.load("b"))
    assert stored is not None
    assert texts(stored.messages) == ["one", "two"]
    assert stored.revision == revision


def test_a_commit_cut_before_the_server_saw_it_is_a_store_error_and_nothing_stored(
    proxied: tuple[SqlSessionStore, CuttingProxy],
) -> None:
    """The transaction rolled back: the error names the operation and the session, nothing of
    the write is stored (not the messages, not the metadata), and the store carries on."""
    store, proxy = proxied
    first = run(store.save("a", [msg("one")], {"label": "before"}))
    proxy.cut("before")
    with pytest.raises(StoreError, match=r"append of session 'a' in table '\w+' failed"):
        run(store.append("a", [msg("lost")], {"label": "after"}, expected=first))
    assert proxy.cuts == 1
    stored = run(store.load("a"))
    assert stored is not None
    assert texts(stored.messages) == ["one"]
    assert stored.metadata.label == "before"
    assert stored.revision == first
    run(store.append("a", [msg("two")], expected=first))
    stored = run(store.load("a"))
    assert stored is not None
    assert texts(stored.messages) == ["one", "two"]


def test_a_delete_whose_commit_landed_unheard_says_it_deleted(
    proxied: tuple[SqlSessionStore, CuttingProxy],
) -> None:
    store, proxy = proxied
    run(store.save("a", [msg("one")]))
    proxy.cut("after")
    assert run(store.delete("a")) is True
    assert run(store.load("a")) is None


def test_auto_saves_go_on_after_a_commit_landed_unheard(
    proxied: tuple[SqlSessionStore, CuttingProxy],
) -> None:
    """A SessionManager's auto-save whose commit landed without an answer: the later
    auto-saves are not refused as conflicts, and every message is stored once."""
    store, proxy = proxied
    watched = Watched(store)

    async def talk() -> str:
        session_id = await watched.start()
        proxy.cut("after")
        await watched.say("m2", "m3", "m4")
        return session_id

    session_id = run(talk())
    assert proxy.cuts == 1
    assert [event.error for event in watched.errors] == []
    stored = run(store.load(session_id))
    assert stored is not None
    assert texts(stored.messages) == ["m1", "m2", "m3", "m4"]
