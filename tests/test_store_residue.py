"""No residue: what a writer killed mid-save leaves under a file store's root is swept by the
next use of the session, and by ``residue.sweep``; a live writer's temp file never is."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

import preloaded
from simulacra_session.stores.file import FileSessionStore
from simulacra_session.stores.file.residue import sweep
from simulacra_session.testing import msg

fcntl = pytest.importorskip("fcntl", reason="needs flock (Windows: one process writes a root)")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL and flock")

#: Saves whole sessions as fast as it can: most of its time is spent with a temp file open.
#: It says "ready" at once when both sessions exist (argv[3] "1"), so kills may land in its
#: first saves; the first writer says it after its first round, as a kill before then leaves
#: a session never saved, which the next use rightly loads as None.
CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from simulacra_session.stores.file import FileSessionStore

    async def main(root, file_format, sessions_exist):
        store = FileSessionStore(root, format=file_format)
        text = "x" * 2000
        messages = [{"role": "user", "content": [{"type": "text", "text": f"{i}{text}"}]} for i in range(600)]
        if sessions_exist:
            print("ready", flush=True)
        n = 0
        while True:
            n += 1
            await store.save("s", messages[: 300 + n % 300])
            await store.save("f", messages[: 50 + n % 50], {"parent_id": "s"})
            if n == 1 and not sessions_exist:
                print("ready", flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] == "1"))
    """
)


def residue(root: Path) -> list[str]:
    """The temp files under ``root`` and in its fork index directories."""
    found = [p.name for p in root.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    for index in root.glob("*-forks"):
        found += [f"{index.name}/{p.name}" for p in index.iterdir() if p.name.endswith(".tmp")]
    return found


def until_a_temp_file(root: Path, child: preloaded.Child) -> None:
    """Return once a temp file is under ``root`` (a save is under way), or after 10 s."""
    deadline = time.monotonic() + 10
    while not (root.exists() and residue(root)) and child.wait(0) is None and time.monotonic() < deadline:
        time.sleep(0.001)


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_kill_loop_leaves_no_residue_after_the_next_use(tmp_path: Path, file_format: str) -> None:
    """SIGKILL a process saving at random moments: the temp files it leaves (at most one per
    session file) are gone once the next process has used each session. The writers are
    forked from the preloaded forkserver (``preloaded``): no interpreter start per round."""
    root = tmp_path / "sessions"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    left_behind = 0
    for attempt in range(60):  # until three kills landed mid-save: how many depends on the load
        if left_behind >= 3:
            break
        with preloaded.start(CHILD, str(root), file_format, "1" if attempt else "0") as child:
            child.ready()
            child.wait(rng.uniform(0.05, 0.4))  # when to kill, not a timing assertion
            if attempt % 2:  # every other kill waits until a save has a temp file: some kills land
                until_a_temp_file(root, child)
            status = child.kill()
            assert status == -signal.SIGKILL, f"the writer ended (seed {seed}): {child.stderr()}"
        found = residue(root)
        assert len(found) <= 3, f"more than one temp file per file (seed {seed}): {found}"
        left_behind += bool(found)
        store = FileSessionStore(root, format=file_format)  # type: ignore[arg-type]  # the next process's first use
        for session_id in ("s", "f"):
            assert asyncio.run(store.load(session_id)) is not None
        assert residue(root) == [], f"residue after the next use (seed {seed})"
    assert left_behind, f"no kill landed in a save (seed {seed}): the test proved nothing"


def test_first_use_sweeps_each_kind_of_residue(tmp_path: Path) -> None:
    """A save, an append, a delete and a load are each a first use of their session."""
    store = FileSessionStore(tmp_path)
    for session_id in ("a", "b", "c", "d", "p"):
        asyncio.run(store.save(session_id, [msg(session_id)]))
    asyncio.run(store.save("child", [msg("x")], {"parent_id": "p"}))
    for name in (
        ".a.jsonl.tmp",
        ".b.json.tmp",
        ".c.jsonl.tmp",
        ".d.jsonl.tmp",
        "p-forks/.child.jsonl.0123456789abcdef.tmp",
    ):
        (tmp_path / name).write_bytes(b"a killed writer's")
    fresh = FileSessionStore(tmp_path)
    asyncio.run(fresh.load("a"))
    asyncio.run(fresh.save("b", [msg("b2")]))
    asyncio.run(fresh.append("c", [msg("c2")]))
    asyncio.run(fresh.delete("d"))
    asyncio.run(fresh.forks("p"))  # a read that is no use of p: its index keeps the temp link
    assert residue(tmp_path) == ["p-forks/.child.jsonl.0123456789abcdef.tmp"]
    asyncio.run(fresh.load("p"))
    assert residue(tmp_path) == []


def test_a_live_writers_temp_file_is_never_swept(tmp_path: Path) -> None:
    """A temp file its writer holds ``flock`` on (here: this test, as a writer in another
    process would) survives first uses and ``sweep``, and goes once it is let go."""
    asyncio.run(FileSessionStore(tmp_path).save("s", [msg("one")]))
    temp = tmp_path / ".s.jsonl.tmp"
    temp.write_bytes(b"being written")
    fd = os.open(temp, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert asyncio.run(FileSessionStore(tmp_path).load("s")) is not None
        assert sweep(tmp_path) == []
        assert temp.read_bytes() == b"being written"
    finally:
        os.close(fd)
    assert sweep(tmp_path) == [str(temp)]


def test_sweep_takes_ours_and_leaves_the_rest(tmp_path: Path) -> None:
    """``sweep`` (the store check) removes every temp file and temp link killed writers
    leave, old-style random names included, and nothing else."""
    store = FileSessionStore(tmp_path)
    asyncio.run(store.save("p", [msg("p")]))
    asyncio.run(store.save("c", [msg("c")], {"parent_id": "p"}))
    ours = [
        ".p.jsonl.tmp",
        ".p.json.tmp",
        ".gone.jsonl.tmp",  # a session never completed
        ".c.jsonl.0123456789abcdef.tmp",  # a version before temp files were locked
        "..no-hard-links.tmp",
        "..Case-Probe.tmp",  # a prober killed before it removed its probe (``case``)
        "p-forks/.c.jsonl.fedcba9876543210.tmp",
    ]
    theirs = [".other.tmp", "notes.tmp", ".p.jsonl.tmp.bak", ".c.jsonl.12345.tmp"]
    for name in ours + theirs:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".x.jsonl.tmp").mkdir()
    os.symlink(tmp_path / "p.jsonl", tmp_path / ".y.jsonl.tmp")
    assert sorted(sweep(tmp_path)) == sorted(str(tmp_path / name) for name in ours)
    assert sorted(residue(tmp_path)) == sorted(
        [".other.tmp", ".c.jsonl.12345.tmp", ".x.jsonl.tmp", ".y.jsonl.tmp"]
    )
    assert all((tmp_path / name).exists() for name in theirs)
    assert sweep(tmp_path / "missing") == []
    assert [m.id for m in asyncio.run(store.forks("p"))] == ["c"]


def test_a_file_where_a_sessions_fork_index_goes_fails_no_load(tmp_path: Path) -> None:
    """The first use of a session sweeps its fork index: a file named ``{id}-forks`` made
    every load of ``id`` (and the sweep of the root) raise ``NotADirectoryError``. It is
    left, with a warning; the session loads and the file is as it was."""
    asyncio.run(FileSessionStore(tmp_path).save("q", [msg("user", "q")]))
    (tmp_path / "q-forks").write_bytes(b"not an index")
    stored = asyncio.run(FileSessionStore(tmp_path).load("q"))
    assert stored is not None
    assert stored.messages == [msg("user", "q")]
    assert sweep(tmp_path) == []
    assert (tmp_path / "q-forks").read_bytes() == b"not an index"
