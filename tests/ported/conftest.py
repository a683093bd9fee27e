"""The fixture swap that runs openai-agents' own session tests against OpenAIAgentsSession.

Where those tests build ``SQLiteSession(session_id, db_path, session_settings=...)`` or
``SQLAlchemySession.from_url(session_id, url=..., session_settings=...)``, the ports call
``make_session(session_id, session_settings=...)``: an ``OpenAIAgentsSession`` over the
test's store, each bundled store in turn (``store_kind``). Sessions a test makes share that
store, as the originals share one database. Tracing is off, as no test exports traces.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import set_tracing_disabled
from agents.memory import SessionSettings
from swap import MakeSession

from integration_stores import KINDS, Opener, reopen_each
from simulacra_session import SessionStore
from simulacra_session.integrations.openai_agents import OpenAIAgentsSession

set_tracing_disabled(True)

#: Tests that use the session from other threads, each with an event loop of its own.
THREADED = {
    "test_sqlite_session_concurrent_access",
    "test_add_items_concurrent_first_access_with_shared_session_cross_loop",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The adapter store runs on the README's example adapter, whose sqlite3 connection serves
    only the thread that opened it: the tests that use it from other threads skip there."""
    skip = pytest.mark.skip(reason="the example adapter's sqlite3 connection serves one thread")
    for item in items:
        params = (
            item.callspec.params if isinstance(item, pytest.Function) and hasattr(item, "callspec") else {}
        )
        if params.get("reopen") != "adapter":
            continue
        if params.get("runner_method") == "run_sync" or item.name.partition("[")[0] in THREADED:
            item.add_marker(skip)


reopen = pytest.fixture(params=KINDS)(reopen_each)  # each bundled store in turn


@pytest.fixture
async def store(reopen: Opener) -> AsyncIterator[SessionStore]:
    """The test's store, open for the whole test."""
    async with reopen() as opened:
        yield opened


@pytest.fixture
def make_session(store: SessionStore) -> MakeSession:
    """What the ports call where the originals build a SQLiteSession or SQLAlchemySession."""

    def make(
        session_id: str, *, session_settings: SessionSettings | dict[str, Any] | None = None
    ) -> OpenAIAgentsSession:
        return OpenAIAgentsSession(session_id, store, session_settings=session_settings)

    return make
