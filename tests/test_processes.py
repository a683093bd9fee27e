"""Writers in several processes on one directory: every append lands, none overwrites another.

Each process appends to the same ten sessions in turn, which do not exist when they start,
so the first appends race to create them; with ``format="json"`` every append is a read
and a rewrite. Nothing may be lost either way.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from simulacra_session import FileSessionStore
from simulacra_session.stores.file import FileFormat

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from simulacra_session import FileSessionStore

    root, file_format, tag, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    async def main():
        store = FileSessionStore(root, fsync=False, format=file_format)
        sys.stdin.readline()  # start together
        for index in range(count):
            await store.append(f"s{index % 10}", [{"from": tag, "index": index}])

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_appends_from_several_processes_all_land(tmp_path: Path, file_format: FileFormat) -> None:
    writers, count = "abcd", 40
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), file_format, tag, str(count)],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for tag in writers
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
    for child in children:
        _, errors = child.communicate(timeout=120)
        assert child.returncode == 0, errors.decode()
    store = FileSessionStore(tmp_path, format=file_format)
    for session in range(10):
        stored = asyncio.run(store.load(f"s{session}"))
        assert stored is not None
        assert stored.metadata.message_count == len(stored.messages) == len(writers) * count // 10
        for tag in writers:  # each writer's appends, all there and in its order
            indexes = [m["index"] for m in stored.messages if m["from"] == tag]
            assert indexes == list(range(session, count, 10))
