"""Processes making one SQLite database at the same moment (the file not there yet): each
store's first call works. SQLite refuses ``PRAGMA journal_mode=WAL`` at once ("database
is locked", its busy timeout not waited) while another connection is opening the database's
WAL; the store's first call failed with that ``StoreError`` (about one run in four of two
writers in tests/test_integration_claude_agent_sdk.py), now it tries the pragma again.

Each opener process serves every round: a round names a database not made yet, each opens a
new store there and says so, and then all make their first call at once. Only the store
(engine, connections, file handles) is new each round, which is what the race is about; an
interpreter started per opener and round cost ~0.6 s of CPU for nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from integration_stores import Processes

PROCESSES = 6
ROUNDS = 10  # the race shows about once in 20 rounds; a round costs ~0.07 s of CPU
OPENER = """
import asyncio, sys
from simulacra_session.stores.sql import SqlSessionStore

async def main(url):
    async with SqlSessionStore(url) as store:
        print("ready", flush=True)
        told.readline()  # every process starts at once
        await store.append(sys.argv[1], [{"role": "user", "content": "hi"}])
        print(len(await store.list()), flush=True)

for url in iter(told.readline, ""):  # a new database each round, until the test is done
    asyncio.run(main(url.strip()))
"""


@pytest.mark.parametrize("driver", ["sqlite", "sqlite+aiosqlite"])
def test_processes_making_a_new_database_at_once_all_write(tmp_path: Path, driver: str) -> None:
    rounds_done = 0
    with Processes(OPENER, [[f"s{number}"] for number in range(PROCESSES)]) as openers:
        for round_ in range(ROUNDS):
            database = tmp_path / f"new{round_}.db"
            openers.say(f"{driver}:///{database}")
            if openers.lines() != [b"ready\n"] * PROCESSES:  # each has its store, none has used it
                break
            assert not database.exists()
            openers.say("go")
            listed = openers.lines()  # the sessions each saw after its append: 1 to PROCESSES
            if not all(count.strip().isdigit() for count in listed):  # one failed: its stderr below
                break
            rounds_done += 1
        ends = openers.finish()
    failed = [errors for status, errors in ends if status != 0]
    assert failed == []
    assert rounds_done == ROUNDS
