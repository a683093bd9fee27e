"""Crash safety: a process saving in a loop is SIGKILLed at random moments, many times.

After every kill the session file must hold exactly one complete version (never a torn or
mixed one), temp files must never pass for sessions, and the next process must be able to
carry on from what it finds.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import preloaded
from simulacra_session._backend import loads
from simulacra_session.stores.file import FileSessionStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

#: Shared by the child and the checks: the messages of save number ``n``, each naming ``n``
#: so that a file mixing two versions cannot pass for either.
MESSAGES_SOURCE = textwrap.dedent(
    """
    def messages_for(n):
        return [
            {
                "role": "user" if i % 2 == 0 else "assistant",
                "content": [{"type": "text", "text": f"save {n} message {i} " + "x" * ((n * 7 + i) % 200)}],
            }
            for i in range(n)
        ]
    """
)

CHILD = MESSAGES_SOURCE + textwrap.dedent(
    """
    import asyncio, sys
    from simulacra_session.stores.file import FileSessionStore

    async def main(root, fsync):
        store = FileSessionStore(root, fsync=fsync, format="json")
        stored = await store.load("s")
        n = stored.metadata.message_count if stored is not None else 0
        ready = False
        while True:
            n += 1
            await store.save("s", messages_for(n), {"label": f"save {n}"})
            await store.save("f", messages_for(n)[-2:], {"parent_id": "s", "fork_of": n})
            if not ready:
                print("ready", flush=True)
                ready = True

    asyncio.run(main(sys.argv[1], sys.argv[2] == "1"))
    """
)


def _messages_for() -> Callable[[int], list[dict[str, Any]]]:
    namespace: dict[str, Any] = {}
    exec(MESSAGES_SOURCE, namespace)
    function: Callable[[int], list[dict[str, Any]]] = namespace["messages_for"]
    return function


messages_for = _messages_for()


def read_document(path: Path) -> dict[str, Any]:
    document = loads(path.read_bytes())
    assert isinstance(document, dict)
    assert list(document) == ["metadata", "messages"]
    return document


def check_one_complete_version(root: Path, previous: int) -> int:
    """Assert the files on disk are whole versions; returns the session's save number."""
    session = read_document(root / "s.json")
    n = session["metadata"]["message_count"]
    assert n == len(session["messages"])
    assert n >= previous, "a saved version was lost"
    assert session["messages"] == messages_for(n)
    assert session["metadata"]["label"] == f"save {n}"

    fork = read_document(root / "f.json")
    fork_of = fork["metadata"]["fork_of"]
    assert fork["messages"] == messages_for(fork_of)[-2:]
    assert fork["metadata"]["message_count"] == len(fork["messages"])
    assert fork_of in (n, n - 1)

    entries = {entry.name for entry in root.iterdir()}
    assert not [name for name in entries if ".corrupt-" in name]
    assert not [name for name in entries if not name.startswith(".") and name.endswith(".tmp")]
    store = FileSessionStore(root, format="json")
    assert sorted(m.id for m in asyncio.run(store.list())) == ["f", "s"]
    assert [m.id for m in asyncio.run(store.forks("s"))] == ["f"]
    return int(n)


@pytest.mark.parametrize(("fsync", "kills"), [(True, 30), (False, 30)], ids=["fsync", "no-fsync"])
def test_sigkill_never_leaves_a_torn_session(tmp_path: Path, fsync: bool, kills: int) -> None:
    kill_repeatedly(tmp_path / "sessions", CHILD, fsync, kills, check_one_complete_version)


JOURNAL_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from simulacra_session.stores.file import FileSessionStore

    def message(i):
        return {"role": "user", "content": [{"type": "text", "text": f"message {i} " + "y" * (i % 300)}]}

    async def main(root, fsync):
        store = FileSessionStore(root, fsync=fsync)
        stored = await store.load("s")
        n = stored.metadata.message_count if stored is not None else 0
        ready = False
        while True:
            n += 1
            if n % 25 == 0:  # now and then a full rewrite, as after a load or an edit
                await store.save("s", [message(i) for i in range(n)], {"label": f"save {n}"})
            else:
                await store.append("s", [message(n - 1)], {"label": f"save {n}"})
            await store.append("f", [message(n)], {"parent_id": "s", "fork_of": n})
            if not ready:
                print("ready", flush=True)
                ready = True

    asyncio.run(main(sys.argv[1], sys.argv[2] == "1"))
    """
)


def journal_message(i: int) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": f"message {i} " + "y" * (i % 300)}]}


def check_journal(root: Path, previous: int) -> int:
    """A journal killed mid-append loads as its last complete save, and can be continued."""
    store = FileSessionStore(root)
    session = asyncio.run(store.load("s"))
    assert session is not None
    n = session.metadata.message_count
    assert n >= previous, "a saved version was lost"
    assert session.messages == [journal_message(i) for i in range(n)]
    assert session.metadata.label == f"save {n}"
    fork = asyncio.run(store.load("f"))
    assert fork is not None
    extra = fork.metadata.model_extra or {}
    assert fork.messages[-1] == journal_message(extra["fork_of"])
    assert fork.metadata.message_count == len(fork.messages)
    entries = {entry.name for entry in root.iterdir()}
    assert not [name for name in entries if not name.startswith(".") and name.endswith(".tmp")]
    assert sorted(m.id for m in asyncio.run(store.list())) == ["f", "s"]
    assert [m.id for m in asyncio.run(store.forks("s"))] == ["f"]
    return int(n)


@pytest.mark.parametrize(("fsync", "kills"), [(True, 30), (False, 30)], ids=["fsync", "no-fsync"])
def test_sigkill_mid_append_keeps_the_last_complete_save(tmp_path: Path, fsync: bool, kills: int) -> None:
    kill_repeatedly(tmp_path / "sessions", JOURNAL_CHILD, fsync, kills, check_journal)


def kill_repeatedly(
    root: Path, script: str, fsync: bool, kills: int, check: Callable[[Path, int], int]
) -> None:
    """Start ``script`` saving under ``root``, SIGKILL it at a random moment, ``check``; repeat.

    Each child is forked from the preloaded forkserver (``preloaded``), not a fresh
    interpreter: a round costs milliseconds of CPU, not the ~0.3 s of importing the package."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    previous = 0
    for kill in range(kills):
        with preloaded.start(script, str(root), "1" if fsync else "0") as child:
            child.ready()  # printed after its first save and fork: the kill lands in a later one
            delay = rng.uniform(0.02, 0.15)
            if child.wait(delay) is None:
                child.kill()
            assert child.exitcode == -signal.SIGKILL, f"child exited (seed {seed}):\n{child.stderr()}"
        try:
            previous = check(root, previous)
        except AssertionError as error:
            raise AssertionError(f"after kill {kill + 1} at {delay:.3f}s (seed {seed}): {error}") from error
    assert previous > kills, "the child made no progress between kills"
