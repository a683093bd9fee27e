"""``doctor`` (a check, no repair) while another process rewrites forks: a rewrite renames a
new file over its fork and re-links the fork index after it, so a check reading between the
two found the entry missing, linking a former version, or stale (under a former parent),
and exited 1 on a healthy store. Nothing is named but what is still wrong once no writer is
between its rename and its relink.

The writer is forked from a process that has already imported the package (``preloaded``):
a fresh interpreter cost ~0.3 s of CPU, and the checks looping meanwhile read a store nobody
was writing. It says ``ready`` once its store is made; the checks start then."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

import preloaded
from simulacra_session import FileSessionStore
from simulacra_session.doctor import check_store
from simulacra_session.stores.file import FileFormat

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX: one process writes a root")

#: Saves (a new inode each), moves between parents ``a`` and ``b``, conversions, new forks
#: and deletes, at random, of the forks ``f0`` to ``f5``; prints ``ready`` before them.
REWRITER = textwrap.dedent(
    """
    import asyncio, random, sys
    from simulacra_session import FileSessionStore

    root, file_format, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

    async def main():
        store = FileSessionStore(root, fsync=False, format=file_format)
        rng = random.Random(count)
        print("ready", flush=True)
        for index in range(count):
            fork, op = f"f{rng.randrange(6)}", rng.choice(["save", "save", "move", "convert", "delete"])
            if op == "convert":
                if await store.load(fork) is not None:
                    await store.convert(fork, rng.choice(["json", "jsonl"]))
            elif op == "delete":
                await store.delete(fork)
            else:
                parent = rng.choice("ab") if op == "move" else "a"
                given = {"parent_id": parent, "fork_message_count": 1, "detached": False}
                await store.save(fork, [{"role": "user", "content": f"{fork} {index}"}], given)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_a_check_while_forks_are_rewritten_names_nothing(tmp_path: Path, file_format: FileFormat) -> None:
    """Checks run over and over while a writer saves, moves, converts, creates and deletes
    forks: none names a problem (the store is healthy throughout), and the store ends healthy."""
    root = tmp_path / "store"
    store = FileSessionStore(root, format=file_format, fsync=False)

    async def setup() -> None:
        for parent in "ab":
            await store.save(parent, [{"role": "user", "content": parent}])
        given = {"parent_id": "a", "fork_message_count": 1, "detached": False}
        for fork in range(6):
            await store.save(f"f{fork}", [{"role": "user", "content": "own"}], given)

    asyncio.run(setup())
    named, checks = [], 0
    # 2000 rewrites (3000 before): checks without the look again under the index's lock
    # named ~10 stale entries (~20 at 3000), and ~200 with the missing entries too
    with preloaded.start(REWRITER, str(root), file_format, "2000") as writer:
        writer.ready()
        while writer.wait(0) is None:
            named += asyncio.run(check_store(store)).problems
            checks += 1
        assert writer.exitcode == 0, writer.stderr()
    assert checks > 0
    assert [(p.kind, p.path, p.detail) for p in named] == [], f"{len(named)} named in {checks} checks"
    assert asyncio.run(check_store(store)).ok
