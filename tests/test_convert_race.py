"""``convert()`` in one process while others write the session: nothing acknowledged is lost.

A conversion writes the session in the other format and removes the file it converted
from. One process converts a session back and forth between ``.jsonl`` and ``.json`` as
fast as it can while others write it: appenders of both formats (a journal's appends,
a document's rewrites), and a writer that loads the session and saves it whole with the
revision it read (as ``SessionManager`` does). The session must never be missing, for
readers or writers, and every write that returned must be in it at the end. Before the
converter held the old file's lock until it had removed it, it removed files others had
just written (the session vanished, taking every earlier append with it), and a delete
racing a conversion could leave the converted file behind.

``list()`` and ``forks()`` read names without a session's lock: a session whose listed file a
conversion removed before it was read was left out (about half of the listings taken during
conversions), until a file gone by then is looked for again under the root's lock, which a
conversion holds while it swaps names; the names are read under it too.

A rewrite that creates a session holds the root's lock while it reads what it needs, a
``.json`` fork's parent among them: that read must not wait on the root's lock itself.

The processes are forked from one that has already imported the package (``preloaded``), not
started as fresh interpreters (~0.3 s of CPU each).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import preloaded
from simulacra_session import FileSessionStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX: one process writes a root")

CONVERTER = textwrap.dedent(
    """
    import asyncio, collections, json, os, sys
    from simulacra_session import FileSessionStore

    root, stop = sys.argv[1], sys.argv[2]

    async def main():
        store = FileSessionStore(root, fsync=False)
        errors, converted, turn = collections.Counter(), 0, 0
        print("ready", flush=True)
        while not os.path.exists(stop):
            turn += 1
            try:
                converted += await store.convert("s", "json" if turn % 2 else "jsonl")
            except Exception as error:
                errors[type(error).__name__] += 1
        print(json.dumps({"converted": converted, "errors": dict(errors)}))

    asyncio.run(main())
    """
)

WRITER = textwrap.dedent(
    """
    import asyncio, collections, fcntl, json, os, sys
    from simulacra_session import ConflictError, FileSessionStore

    root, file_format, kind, tag, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    go = sys.argv[6]

    async def main():
        store = FileSessionStore(root, fsync=False, format=file_format)
        acknowledged, errors, missing = [], collections.Counter(), 0
        gate = os.open(go, os.O_RDONLY)
        print("ready", flush=True)
        fcntl.flock(gate, fcntl.LOCK_SH)  # start together: once the test lets go of its lock
        os.close(gate)
        for index in range(count):
            message = {"role": "user", "from": tag, "index": index}
            try:
                if kind == "append":
                    await store.append("s", [message])
                else:  # a whole save from the revision read, again on a conflict
                    while True:
                        stored = await store.load("s")
                        if stored is None:
                            missing += 1
                            break
                        try:
                            await store.save("s", [*stored.messages, message], expected=stored.revision)
                            break
                        except ConflictError:
                            pass
                    if stored is None:
                        continue
                acknowledged.append(index)
            except Exception as error:
                errors[repr(error)[:100]] += 1
        print(json.dumps({"acknowledged": acknowledged, "errors": dict(errors), "missing": missing}))

    asyncio.run(main())
    """
)


def _report(child: preloaded.Child) -> dict[str, Any]:
    """The last line the child printed, once it ended well (waited for 120 s at most)."""
    assert child.wait(120) == 0, child.stderr()
    lines = []
    while line := child.readline():
        lines.append(line)
    report: dict[str, Any] = json.loads(lines[-1])
    return report


@contextlib.contextmanager
def _converting(root: Path, stop: Path) -> Iterator[dict[str, Any]]:
    """The converter at work on ``root`` meanwhile; the dict it yields holds its report once
    the block has ended (``stop`` made, the converter's end awaited)."""
    conversions: dict[str, Any] = {}
    with preloaded.start(CONVERTER, str(root), str(stop)) as converter:
        converter.ready()
        try:
            yield conversions
        finally:
            stop.touch()
            conversions.update(_report(converter))


def test_writes_racing_conversions_in_another_process_are_all_kept(tmp_path: Path) -> None:
    import fcntl  # POSIX only, as the module's tests

    root, stop, go = tmp_path / "root", tmp_path / "stop", tmp_path / "go"
    store = FileSessionStore(root, fsync=False)
    asyncio.run(store.save("s", [{"role": "system", "content": "seed"}]))
    go.touch()
    with contextlib.ExitStack() as children:
        gate = children.enter_context(go.open("rb"))
        fcntl.flock(gate.fileno(), fcntl.LOCK_EX)  # the writers wait for it: they start together
        conversions = children.enter_context(_converting(root, stop))
        writers = {
            tag: children.enter_context(
                preloaded.start(WRITER, str(root), file_format, kind, tag, str(count), str(go))
            )
            for tag, file_format, kind, count in (
                ("a", "jsonl", "append", 300),
                ("b", "json", "append", 200),
                ("c", "jsonl", "save", 100),
            )
        }
        for child in writers.values():
            child.ready()
        gate.close()  # go
        reports = {tag: _report(child) for tag, child in writers.items()}
    stored = asyncio.run(store.load("s"))
    assert stored is not None, "the session vanished"
    assert stored.messages[0] == {"role": "system", "content": "seed"}
    for tag, report in reports.items():
        assert report["errors"] == {}, f"writer {tag}"
        assert report["missing"] == 0, f"writer {tag} found no session {report['missing']} times"
        kept = [m["index"] for m in stored.messages if m.get("from") == tag]
        lost = sorted(set(report["acknowledged"]) - set(kept))
        assert not lost, f"writer {tag}: {len(lost)} acknowledged writes lost, from {lost[:5]}"
        assert kept == report["acknowledged"], f"writer {tag}: its writes once each, in order"
    assert conversions["errors"] == {}, "the session was always there to convert"
    assert conversions["converted"] > 0


def test_a_delete_racing_conversions_removes_the_session(tmp_path: Path) -> None:
    root, stop = tmp_path / "root", tmp_path / "stop"
    store = FileSessionStore(root, fsync=False)

    async def rounds() -> list[int]:
        survived = []
        for turn in range(150):
            await store.save("s", [{"role": "user", "turn": turn}])
            await asyncio.sleep(0.002)  # a conversion or two
            assert await store.delete("s"), "the session existed"
            if await store.load("s") is not None:  # only conversions run elsewhere: it stays gone
                survived.append(turn)
                await store.delete("s")
        return survived

    with _converting(root, stop) as conversions:
        survived = asyncio.run(rounds())
    assert survived == [], f"deleted sessions still there after rounds {survived[:5]}"
    assert set(conversions["errors"]) <= {"SessionNotFoundError"}
    assert conversions["converted"] > 0


def test_a_json_fork_of_a_parent_never_seen_is_created(tmp_path: Path) -> None:
    """Creating it holds the root's lock; reading its (absent) parent for the copies its
    document keeps swept the parent's residue under the root's lock too, and waited forever."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from simulacra_session import FileSessionStore

        async def main():
            store = FileSessionStore(sys.argv[1], fsync=False, format="json")
            metadata = {"parent_id": "gone", "fork_message_count": 2}
            await store.save("fork", [{"role": "user", "content": "own"}], metadata)
            print((await store.load("fork")).metadata.parent_id)

        asyncio.run(main())
        """
    )
    with preloaded.start(script, str(tmp_path)) as child:  # killed if still waiting after 60 s
        assert child.wait(60) == 0, child.stderr()
        assert child.readline() == b"gone\n"
        assert child.readline() == b""  # nothing more


def test_listings_during_conversions_in_another_process_always_show_the_session(tmp_path: Path) -> None:
    root, stop = tmp_path / "root", tmp_path / "stop"
    store = FileSessionStore(root, fsync=False)

    async def sessions() -> None:
        await store.save("p", [{"role": "system", "content": "parent"}])
        fork = {"parent_id": "p", "fork_message_count": 1}
        await store.save("s", [{"role": "system", "content": "seed"}], fork)
        for other in range(20):
            await store.save(f"other-{other}", [{"role": "user", "content": "x"}])

    async def listings() -> tuple[int, int]:
        missing_listed = missing_forked = 0
        for _ in range(300):
            missing_listed += "s" not in {m.id for m in await store.list()}
            missing_forked += [m.id for m in await store.forks("p")] != ["s"]
        return missing_listed, missing_forked

    asyncio.run(sessions())
    with _converting(root, stop) as conversions:
        missing = asyncio.run(listings())
    assert conversions["errors"] == {}
    assert conversions["converted"] > 0
    assert missing == (0, 0), "list(), forks(): listings that left the session out"


def _while_swapping(
    root: Path, read: Callable[[], object], begin: Callable[[], object], end: Callable[[], object]
) -> tuple[bool, list[object]]:
    """``read()`` in a thread while a conversion swaps a session's names under the root's
    exclusive lock (``begin``, then ``end``, of the swap): whether it was still waiting 0.2 s
    after ``begin``, and what it read."""
    import fcntl  # POSIX only, as the module's tests

    results: list[object] = []
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        begin()
        reader = threading.Thread(target=lambda: results.append(read()))
        reader.start()
        reader.join(0.2)
        waited = reader.is_alive()
        end()
    finally:
        os.close(fd)
    reader.join(30)
    return waited, results


def _both_formats(root: Path) -> tuple[FileSessionStore, bytes]:
    """A ``.json`` session ``s``, and the journal a conversion to ``.jsonl`` writes of it."""
    store = FileSessionStore(root, fsync=False, format="json")
    asyncio.run(store.save("s", [{"role": "user", "content": "x"}]))
    asyncio.run(store.convert("s", "jsonl"))
    journal = (root / "s.jsonl").read_bytes()
    asyncio.run(store.convert("s", "json"))
    return store, journal


def test_a_listing_reads_names_only_between_swaps(tmp_path: Path) -> None:
    """A conversion between its two names (both files there): the listing waits for it, then
    shows the session once, in the file it was converted to."""
    store, journal = _both_formats(tmp_path)
    waited, listed = _while_swapping(
        tmp_path,
        lambda: [m.id for m in asyncio.run(store.list())],
        lambda: (tmp_path / "s.jsonl").write_bytes(journal),
        (tmp_path / "s.json").unlink,
    )
    assert waited, "the listing read the root while a conversion held it"
    assert listed == [["s"]]


def test_a_load_that_finds_neither_file_looks_again_after_the_swap(tmp_path: Path) -> None:
    """A load looks for one name, then the other: a swap in between shows it neither (here,
    neither is there while the lock is held). It looks again under the root's shared lock,
    so it waits for the swap and finds the session."""
    store, journal = _both_formats(tmp_path)
    waited, loaded = _while_swapping(
        tmp_path,
        lambda: asyncio.run(store.load("s")),
        (tmp_path / "s.json").unlink,
        lambda: (tmp_path / "s.jsonl").write_bytes(journal),
    )
    assert waited, "the load gave up while a conversion held the root"
    assert [getattr(found, "messages", None) for found in loaded] == [[{"role": "user", "content": "x"}]]
