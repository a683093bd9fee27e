"""A file store that cannot be written (a read-only mount: a backup, a snapshot under
inspection) reads as any other: reads need no write access, and leave what a sweep would
remove; writes raise the ``OSError`` naming the session's file.

Run as root, permissions do not make a directory read-only: the reads run in a child process
in a private mount namespace (``unshare -m``) where the store is bind-mounted read-only.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import simulacra_session.stores.file as file_module
from simulacra_session.stores.file import FileSessionStore
from simulacra_session.testing import msg

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs Linux mount namespaces")

#: Mounts each path given read-only (bind-mounted onto itself), then runs ``$CHILD``.
MOUNT = (
    'for p in "$@"; do mount --bind "$p" "$p" && mount -o remount,bind,ro "$p" || exit 97; done; '
    'exec "$PYTHON" -c "$CHILD"'
)

#: Every read of each store in ``$ROOTS``, then every write (each raising), as JSON.
CHILD = textwrap.dedent(
    """
    import asyncio, json, os
    from simulacra_session import FileSessionStore

    async def reads(store):
        loaded, tail = await store.load("p"), await store.load_tail("c", 1)
        return {
            "list": [m.id for m in await store.list()],
            "load": [m["content"][0]["text"] for m in loaded.messages],
            "tail": [m["content"][0]["text"] for m in tail.messages],
            "absent": await store.load("absent"),
            "forks": [m.id for m in await store.forks("p")],
        }

    async def writes(store):
        refused = []
        for write in (
            lambda: store.save("p", []),
            lambda: store.append("p", [{"role": "user", "content": "x"}]),
            lambda: store.delete("p"),
            lambda: store.save("new", []),
        ):
            try:
                await write()
            except OSError as error:
                refused.append([error.errno, error.filename])
        return refused

    async def main(roots):
        found = {}
        for root in roots:
            store = FileSessionStore(root, format="json" if root.endswith("json") else "jsonl")
            found[root] = {"reads": await reads(store), "writes": await writes(store)}
        print(json.dumps(found))

    asyncio.run(main(json.loads(os.environ["ROOTS"])))
    """
)


def read_only(mounts: list[Path], roots: list[Path]) -> dict[str, Any]:
    """What ``CHILD`` finds in ``roots`` with ``mounts`` read-only, in a private mount
    namespace; skips where this machine cannot make one."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1)")
    env = dict(os.environ)
    package_parent = str(Path(os.path.abspath(file_module.__file__)).parents[3])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    env.update(PYTHON=sys.executable, ROOTS=json.dumps([str(root) for root in roots]))
    command = ["unshare", "-m", "sh", "-c", MOUNT, "sh", *map(str, mounts)]
    probe = subprocess.run(command, capture_output=True, env={**env, "CHILD": "pass"})
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private read-only mount: {probe.stderr.decode().strip()}")
    done = subprocess.run(command, capture_output=True, env={**env, "CHILD": CHILD})
    assert done.returncode == 0, done.stderr.decode()
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def populate(root: Path, file_format: str) -> None:
    """A parent ``p`` and its fork ``c``, and what a snapshot taken while writers ran holds:
    a killed writer's temp file and temp link."""
    store = FileSessionStore(root, format=file_format)  # type: ignore[arg-type]
    asyncio.run(store.save("p", [msg("p0"), msg("p1")]))
    asyncio.run(store.save("c", [msg("c0"), msg("c1")], {"parent_id": "p", "fork_message_count": 1}))
    (root / f".p.{file_format}.tmp").write_bytes(b"a killed writer's")
    (root / "p-forks" / f".c.{file_format}.0123456789abcdef.tmp").write_bytes(b"a killed linker's")


READS = {"list": ["c", "p"], "load": ["p0", "p1"], "tail": ["c1"], "absent": None, "forks": ["c"]}


def test_a_read_only_root_reads_and_refuses_writes(tmp_path: Path) -> None:
    roots = [tmp_path / "jsonl", tmp_path / "json"]
    for root in roots:
        populate(root, root.name)
    before = {root: sorted(p.name for p in root.rglob("*")) for root in roots}
    found = read_only([tmp_path], roots)
    for root in roots:
        assert found[str(root)]["reads"] == READS, root.name
        session = str(root / f"p.{root.name}")
        refused = [[errno.EROFS, session]] * 3 + [[errno.EROFS, str(root / f"new.{root.name}")]]
        assert found[str(root)]["writes"] == refused, root.name
        assert sorted(p.name for p in root.rglob("*")) == before[root]  # residue left: no sweep


def test_a_read_only_session_file_reads(tmp_path: Path) -> None:
    """Only the session's files read-only, in a root that takes writes: a load locks them
    without opening them for writing, and sweeps the root."""
    root = tmp_path / "jsonl"
    populate(root, "jsonl")
    found = read_only([root / "p.jsonl", root / "c.jsonl"], [root])
    assert found[str(root)]["reads"] == READS
    assert not (root / ".p.jsonl.tmp").exists()
