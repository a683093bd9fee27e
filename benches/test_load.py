"""Loading one 1000-message session: ``FileSessionStore.load`` in both formats beside orjson.

orjson parses the session document (the ``{id}.json`` file's bytes, already in memory), and
once more reading the file first, as a load must. The garbage collector is off in every
round (pytest-benchmark's ``disable_gc``): a load's thousands of new objects make the next
allocation anyone makes start a collection over them, and which round pays for it depends
on whether its result was freed first (orjson's is; ours still lives while the event loop
hands it back), not on the parser.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulacra_session import FileSessionStore
from simulacra_session.stores.file import FileFormat

from corpus import conversation

LENGTH = 1000
GROUP = f"load {LENGTH} messages"


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[FileFormat, Path]:
    """One directory per format, each holding session ``s`` with the same messages."""
    root = tmp_path_factory.mktemp("load")
    roots: dict[FileFormat, Path] = {"jsonl": root / "jsonl", "json": root / "json"}
    messages = conversation(LENGTH)
    for file_format, directory in roots.items():
        asyncio.run(FileSessionStore(directory, format=file_format).save("s", messages))
    return roots


@pytest.mark.benchmark(disable_gc=True)
@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_load(
    benchmark: Any, loop: asyncio.AbstractEventLoop, roots: dict[FileFormat, Path], file_format: FileFormat
) -> None:
    store = FileSessionStore(roots[file_format], format=file_format)

    benchmark.group = GROUP
    benchmark.extra_info["bytes"] = (roots[file_format] / f"s.{file_format}").stat().st_size
    stored = benchmark(lambda: loop.run_until_complete(store.load("s")))
    assert stored is not None
    assert stored.metadata.message_count == LENGTH
    assert stored.messages == conversation(LENGTH)


@pytest.mark.benchmark(disable_gc=True)
@pytest.mark.parametrize("read", [False, True], ids=["bytes", "read-file"])
def test_orjson_loads(benchmark: Any, roots: dict[FileFormat, Path], read: bool) -> None:
    """``orjson.loads`` of the session document: the bytes in memory, or read from the file first."""
    path = roots["json"] / "s.json"
    data = path.read_bytes()

    benchmark.group = GROUP
    benchmark.extra_info["bytes"] = len(data)
    document = benchmark(lambda: orjson.loads(path.read_bytes())) if read else benchmark(orjson.loads, data)
    assert document["metadata"]["message_count"] == LENGTH
    assert document["messages"] == conversation(LENGTH)
