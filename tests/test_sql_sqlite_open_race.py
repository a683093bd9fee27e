"""Processes making one SQLite database at the same moment (the file not there yet): each
store's first call works. SQLite refuses ``PRAGMA journal_mode=WAL`` at once ("database
is locked", its busy timeout not waited) while another connection is opening the database's
WAL; the store's first call failed with that ``StoreError`` (about one run in four of two
writers in tests/test_integration_claude_agent_sdk.py), now it tries the pragma again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROCESSES = 6
OPENER = """
import asyncio, sys
from simulacra_session.stores.sql import SqlSessionStore

async def main(url):
    async with SqlSessionStore(url) as store:
        print("ready", flush=True)
        sys.stdin.readline()  # every process starts at once
        await store.append(sys.argv[2], [{"role": "user", "content": "hi"}])
        print(len(await store.list()), flush=True)

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.parametrize("driver", ["sqlite", "sqlite+aiosqlite"])
def test_processes_making_a_new_database_at_once_all_write(tmp_path: Path, driver: str) -> None:
    for round_ in range(3):
        url = f"{driver}:///{tmp_path / f'new{round_}.db'}"
        openers = [
            subprocess.Popen(
                [sys.executable, "-c", OPENER, url, f"s{number}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for number in range(PROCESSES)
        ]
        for opener in openers:
            assert opener.stdout is not None
            assert opener.stdout.readline() == "ready\n"
        for opener in openers:
            assert opener.stdin is not None
            opener.stdin.write("go\n")
            opener.stdin.flush()
        outcomes = [opener.communicate(timeout=120) for opener in openers]
        failed = [errors for opener, (_, errors) in zip(openers, outcomes, strict=True) if opener.returncode]
        assert failed == []
