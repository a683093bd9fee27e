"""``doctor --repair`` while writers in other processes work: every acknowledged write stays,
and nothing a writer is doing is taken for a problem and "repaired".

Writers are real processes (``WRITER``): each carries out its order on a ``FileSessionStore``
of its own and prints one line per write acknowledged, so the test knows exactly what must be
in the store. The repairs run here, on another store of the same root, as the CLI's ``doctor
--repair`` does (``check_store``).

The writers are forked from a process that has already imported the package
(``preloaded``), not started as fresh interpreters: each start cost ~0.3 s of CPU, and the
repairs looping here meanwhile ran over a store nobody was writing. Each says ``ready`` once
its store is made; the repairs start then.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import preloaded
from simulacra_session import ConflictError, FileSessionStore
from simulacra_session.doctor import check_store
from simulacra_session.stores.file import FileFormat
from simulacra_session.stores.file.restore import compact, restore_sync

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX: one process writes a root")

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from simulacra_session import FileSessionStore

    root, file_format, fsync = sys.argv[1], sys.argv[2], sys.argv[3] == "fsync"
    session_id, count = sys.argv[4], int(sys.argv[5])

    async def main():
        store = FileSessionStore(root, fsync=fsync, format=file_format)
        print("ready", flush=True)
        for index in range(count):
            await store.append(session_id, [{"role": "user", "content": f"{session_id} {index}"}])
            print(session_id, index, flush=True)
        print("done", flush=True)

    asyncio.run(main())
    """
)


class Writer:
    """A writer process appending ``count`` messages to ``session_id``, and the lines it
    printed (read by a thread, never left in a pipe)."""

    def __init__(
        self, root: Path, file_format: FileFormat, session_id: str, count: int, *, fsync: bool = False
    ) -> None:
        args = (str(root), file_format, "fsync" if fsync else "-", session_id, str(count))
        self.child = preloaded.start(WRITER, *args)
        self.lines: list[str] = []
        self.status: int | None = None  # the exit status, once stopped
        self._new = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        try:
            self.child.ready()
        except BaseException:
            self.child.close()
            raise
        self._reader.start()

    def _read(self) -> None:
        try:
            while line := self.child.readline(120):
                with self._new:
                    self.lines.append(line.decode().strip())
                    self._new.notify_all()
        finally:
            with self._new:
                self.lines.append("exit")
                self._new.notify_all()

    def wait_for(self, line: str) -> None:
        """Until the writer printed ``line``; it fails if the writer ended without it."""
        with self._new:
            assert self._new.wait_for(lambda: line in self.lines or "exit" in self.lines, 120)
        if line not in self.lines:
            self.stop()  # says why, if the writer failed
            raise AssertionError(f"the writer ended without printing {line!r}")

    def stop(self) -> None:
        """Wait for the writer's end (killed after 120 s): it must have ended well. Once
        stopped, nothing more is done."""
        if self.status is not None:
            return
        try:
            self.status = self.child.wait(120)
            self._reader.join(10)
            assert self.status == 0, self.child.stderr()
        finally:
            self.status = -1 if self.status is None else self.status
            self.child.close()


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_detaching_a_fork_being_appended_to_keeps_every_append(
    tmp_path: Path, file_format: FileFormat
) -> None:
    """``missing_parent``'s repair rewrites the fork as the detached session it loads as. It
    read the fork, then wrote it back: an append that landed in between was overwritten
    (and a delete in between undone). Here a fork is appended to, again and again, while
    the repair detaches it, round after round; every append acknowledged must load."""
    root = tmp_path / "store"
    store = FileSessionStore(root, format=file_format)
    count = 40
    for round_ in range(12):
        parent, fork = f"p{round_}", f"f{round_}"

        async def setup(parent: str = parent, fork: str = fork) -> None:
            await store.save(parent, [{"role": "user", "content": "inherited"}])
            given = {"parent_id": parent, "fork_message_count": 1, "detached": False}
            await store.save(fork, [{"role": "user", "content": "own"}], given)
            assert await store.delete(parent)  # as a tool that does not detach forks

        asyncio.run(setup())
        writer = Writer(root, file_format, fork, count)  # one per round: a fork costs milliseconds
        try:
            writer.wait_for(f"{fork} 2")  # appending now
            report = asyncio.run(check_store(store, repair=True))
            # a rewrite's link is re-made after the write: one may be found (and re-made) first;
            # its temp file is test_a_live_writers_temp_files_and_links_are_never_named's
            found = {(p.kind, p.session_id) for p in report.problems} - {
                ("fork_link", fork),
                ("temp_file", fork),
            }
            assert found == {("missing_parent", fork)}
            writer.wait_for("done")
        finally:
            writer.stop()
        for problem in report.problems:
            if not problem.repaired and problem.kind == "missing_parent":
                assert "written again" in problem.detail  # at each of its reads
        if not report.ok:  # what writes left to do, or a link it re-made meanwhile
            again = asyncio.run(check_store(store, repair=True))
            assert all(p.repaired or p.kind == "temp_file" for p in again.problems)
        stored = asyncio.run(store.load(fork))
        assert stored is not None
        assert stored.metadata.detached
        contents = [m["content"] for m in stored.messages]
        inherited = ["inherited"] if file_format == "json" else []  # a document keeps a copy
        assert contents == [*inherited, "own", *(f"{fork} {i}" for i in range(count))]


async def test_a_restore_over_what_was_read_brings_back_no_session_deleted_since(tmp_path: Path) -> None:
    """The detach's write, over a fork deleted since it was read: refused, nothing written
    (before, the deleted fork came back whole)."""
    store = FileSessionStore(tmp_path)
    await store.save("fork", [{"role": "user", "content": "own"}], {"parent_id": "gone"})
    read = await store.load("fork")
    assert read is not None
    assert await store.delete("fork")  # by another process, say
    detached = read.metadata.model_copy(update={"detached": True})
    with pytest.raises(ConflictError, match="fork"):
        await asyncio.to_thread(restore_sync, store, "fork", read.messages, detached, read.revision)
    assert await store.load("fork") is None
    assert await store.list() == []


def test_a_live_writers_temp_files_and_links_are_never_named(tmp_path: Path) -> None:
    """Each append to a ``.json`` fork is a temp file renamed over it and a temp link in the
    fork index; checks and repairs meanwhile see both, and must take neither for what a
    killed writer left, nor remove one (a temp file renamed by its writer between the
    listing and the look was named "left by an interrupted write")."""
    root = tmp_path / "store"
    store = FileSessionStore(root, format="json")

    async def setup() -> None:
        await store.save("parent", [{"role": "user", "content": "inherited"}])
        given = {"parent_id": "parent", "fork_message_count": 1, "detached": False}
        await store.save("fork", [{"role": "user", "content": "own"}], given)

    asyncio.run(setup())
    count, named = 600, []
    writer = Writer(root, "json", "fork", count, fsync=True)
    try:
        for check in itertools.count():
            report = asyncio.run(check_store(store, repair=check % 2 == 1))
            # a temp file a repair took between its creation and its writer's lock is made
            # again by its writer (what it wrote is checked below); a rewrite's link, re-made
            # after the write, is looked at again under the index's lock: never named
            named += [p for p in report.problems if p.kind == "fork_link" or not p.repaired]
            if "done" in writer.lines:
                break
    finally:
        writer.stop()
    assert named == []
    stored = asyncio.run(store.load("fork"))
    assert stored is not None
    assert [m["content"] for m in stored.messages] == ["own", *(f"fork {i}" for i in range(count))]
    assert asyncio.run(check_store(store)).ok


def test_an_empty_temp_file_is_named_only_by_the_repair_that_removes_it(tmp_path: Path) -> None:
    """A session's empty temp file nobody holds may be a write that has not locked it yet:
    a check leaves it unnamed, a repair removes it (its writer, if any, starts over). A left
    case probe, always empty, is named either way."""
    store = FileSessionStore(tmp_path)
    asyncio.run(store.save("alice", [{"role": "user", "content": "alice's"}]))
    (tmp_path / ".alice.jsonl.tmp").write_bytes(b"")
    (tmp_path / "..Case-Probe.tmp").write_bytes(b"")
    found = asyncio.run(check_store(store))
    assert [(p.kind, p.path) for p in found.problems] == [("temp_file", str(tmp_path / "..Case-Probe.tmp"))]
    repaired = asyncio.run(check_store(store, repair=True))
    assert sorted((p.path, p.repaired) for p in repaired.problems) == [
        (str(tmp_path / "..Case-Probe.tmp"), True),
        (str(tmp_path / ".alice.jsonl.tmp"), True),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.jsonl"]


REPARENT = textwrap.dedent(
    """
    import asyncio, sys
    from simulacra_session import FileSessionStore

    root, file_format, tag, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    async def main():
        store = FileSessionStore(root, fsync=False, format=file_format)
        print("ready", flush=True)
        for index in range(count):  # each fork moves from parent a to parent b
            given = {"parent_id": f"b{tag}", "fork_message_count": 1, "detached": False}
            await store.save(f"f{tag}x{index}", [{"role": "user", "content": "moved"}], given)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_a_repair_during_a_change_of_parent_links_no_former_parent(
    tmp_path: Path, file_format: FileFormat
) -> None:
    """A fork that moves to another parent while a repair reads the store: the repair read
    its file before the move and its index after, found no entry under the parent it read,
    and linked the fork there (or removed the new parent's entry as stale). A link under a
    former parent outlives the fork's delete, which looks under its parent only: the deleted
    session's messages stayed, named by doctor as the last copy of it. (The next repair
    removes such a link: what the last one running with the writer does is checked, in
    several rounds.)"""
    root = tmp_path / "store"
    store = FileSessionStore(root, format=file_format)  # the repairs' (its syncs make passes long)
    fast = FileSessionStore(root, format=file_format, fsync=False)  # the test's writes
    count = 200
    for tag in range(4):
        ids = [f"f{tag}x{index}" for index in range(count)]

        async def setup(tag: int = tag, ids: list[str] = ids) -> None:
            for parent in "ab":
                await fast.save(f"{parent}{tag}", [{"role": "user", "content": parent}])
            given = {"parent_id": f"a{tag}", "fork_message_count": 1, "detached": False}
            for session_id in ids:
                await fast.save(session_id, [{"role": "user", "content": "to move"}], given)

        asyncio.run(setup())
        with preloaded.start(REPARENT, str(root), file_format, str(tag), str(count)) as writer:
            writer.ready()
            while writer.wait(0) is None:
                asyncio.run(check_store(store, repair=True))
            assert writer.exitcode == 0, writer.stderr()
        names = sorted(f"{session_id}.{file_format}" for session_id in ids)
        assert sorted(p.name for p in (root / f"a{tag}-forks").iterdir()) == []  # deletes look under b
        assert sorted(p.name for p in (root / f"b{tag}-forks").iterdir()) == names
        for session_id in ids:
            assert asyncio.run(fast.delete(session_id))
        report = asyncio.run(check_store(store))
        assert report.problems == []  # no link left of a deleted fork
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()) == sorted(
        f"{parent}{tag}.{file_format}" for parent in "ab" for tag in range(4)
    )


MIXED = textwrap.dedent(
    """
    import asyncio, json, random, sys
    from simulacra_session import FileSessionStore
    from simulacra_session.stores.file.restore import compact

    root, session_id, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    result = sys.argv[5]

    async def main():
        store = FileSessionStore(root, fsync=False)
        print("ready", flush=True)
        rng, model, next_ = random.Random(seed), [], 0
        for _ in range(count):
            op = rng.choice(["append", "append", "append", "truncate", "save", "convert", "compact"])
            if op == "append" or not model:
                size = rng.randint(1, 3)
                batch = [{"role": "user", "content": f"{session_id} {next_ + i}"} for i in range(size)]
                next_ += len(batch)
                await store.append(session_id, batch)
                model += batch
            elif op == "truncate":
                cut = rng.randint(1, len(model))
                await store.truncate(session_id, cut)
                del model[len(model) - cut :]
            elif op == "save":
                model.append({"role": "user", "content": f"{session_id} {next_}"})
                next_ += 1
                await store.save(session_id, model)
            elif op == "convert":
                await store.convert(session_id, rng.choice(["json", "jsonl"]))
            else:
                await compact(store, session_id)
        with open(result, "w") as out:  # a file: more than a pipe holds, and nobody reads meanwhile
            json.dump(model, out)

    asyncio.run(main())
    """
)


def test_repairs_and_compactions_while_writers_append_truncate_convert_and_compact(tmp_path: Path) -> None:
    """Three writers, each on its own session, append, truncate, save, convert and compact at
    random while ``doctor --repair`` and ``compact`` (of every session) run over and over:
    each session ends as its writer's acknowledged writes left it, and loads."""
    root = tmp_path / "store"
    store = FileSessionStore(root)
    count, ids = 1500, ["s0", "s1", "s2"]
    problems = []
    with contextlib.ExitStack() as children:
        writers = [  # each writes its acknowledged history to tmp_path / session_id
            children.enter_context(
                preloaded.start(MIXED, str(root), id_, str(seed), str(count), str(tmp_path / id_))
            )
            for seed, id_ in enumerate(ids)
        ]
        for writer in writers:
            writer.ready()
        while any(writer.wait(0) is None for writer in writers):
            report = asyncio.run(check_store(store, repair=True))
            # a journal appended to enough between the repair and the check after it is
            # compactable again: no mistake, the next repair compacts it
            problems += [p for p in report.problems if not p.repaired and p.kind != "compactable"]
            for session_id in ids:
                asyncio.run(compact(store, session_id))
        for writer in writers:
            assert writer.exitcode == 0, writer.stderr()
    for session_id in ids:
        stored = asyncio.run(store.load(session_id))
        assert stored is not None
        assert stored.messages == json.loads((tmp_path / session_id).read_text()), session_id
        assert stored.metadata.message_count == len(stored.messages)
    assert problems == []  # nothing a writer was doing was taken for a problem left
    assert asyncio.run(check_store(store)).ok


CONVERTER = textwrap.dedent(
    """
    import asyncio, sys
    from simulacra_session import FileSessionStore

    root, count = sys.argv[1], int(sys.argv[2])

    async def main():
        store = FileSessionStore(root, fsync=False)
        print("ready", flush=True)
        for index in range(count):
            assert await store.convert("s", "json" if index % 2 == 0 else "jsonl")

    asyncio.run(main())
    """
)


def test_a_repair_while_a_session_is_converted_back_and_forth(tmp_path: Path) -> None:
    """A journal converted to a document (and back) while a repair reads it: the repair
    looked up the journal's inode after its checks, found the name gone and failed with
    ``FileNotFoundError``, the rest of the store unchecked."""
    root = tmp_path / "store"
    store = FileSessionStore(root, fsync=False)
    messages = [{"role": "user", "content": f"message {index} " + "x" * 200} for index in range(300)]
    asyncio.run(store.save("s", messages))
    with preloaded.start(CONVERTER, str(root), "300") as writer:
        writer.ready()
        while writer.wait(0) is None:
            report = asyncio.run(check_store(store, repair=True))
            assert [p for p in report.problems if not p.repaired] == []
        assert writer.exitcode == 0, writer.stderr()
    stored = asyncio.run(store.load("s"))
    assert stored is not None
    assert stored.messages == messages
    assert asyncio.run(check_store(store)).ok


MANAGER = textwrap.dedent(
    """
    import asyncio, json, sys
    from simulacra_session import ConflictError, FileSessionStore, SessionManager, SimpleConversation

    root, file_format, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])

    async def main():
        store = FileSessionStore(root, fsync=False, format=file_format)
        conversation = SimpleConversation()
        manager = SessionManager(store, conversation)
        acknowledged, others = {}, []
        def saved(event):
            contents = [m["content"] for m in event.messages if isinstance(m["content"], str)]
            acknowledged[event.id] = contents  # the whole history as saved
        manager.on("save", saved)
        def failed(event):
            if not isinstance(event.error, ConflictError):  # a detach by doctor changes the revision
                others.append(repr(event.error))
        manager.on("lifecycle_error", failed)
        print("ready", flush=True)
        forks = []
        for round_ in range(rounds):
            parent = manager.start_new()
            for index in range(5):
                conversation.append({"role": "user", "content": f"{parent} {index}"})
            fork = await manager.fork(parent)
            forks.append(fork)
            print("parent", parent, flush=True)  # deleted by the test as another tool would
            for index in range(30):
                conversation.append({"role": "user", "content": f"{fork} {index}"})
                await asyncio.sleep(0.0005)
            await manager.flush()
        own = {fork: [c for c in acknowledged.get(fork, []) if c.startswith(fork)] for fork in forks}
        print("result", json.dumps({"own": own, "others": others}), flush=True)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_a_managers_forks_auto_saved_while_their_parents_go_and_doctor_detaches_them(
    tmp_path: Path, file_format: FileFormat
) -> None:
    """A manager forks a session and goes on auto-saving the fork; another tool deletes the
    parent under it (a plain ``store.delete``: nothing detaches the fork), and repairs run
    all along, detaching it. Every message of the fork the manager acknowledged loads."""
    root = tmp_path / "store"
    store = FileSessionStore(root, format=file_format)
    lines: list[str] = []
    with preloaded.start(MANAGER, str(root), file_format, "20") as process:

        def read() -> None:
            while line := process.readline(120):
                lines.append(line.decode())

        process.ready()
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deleted = 0
        while process.wait(0) is None or deleted < sum(line.startswith("parent ") for line in lines):
            parents = [line.split()[1] for line in lines if line.startswith("parent ")]
            for parent in parents[deleted:]:
                asyncio.run(store.delete(parent))
                deleted += 1
            asyncio.run(check_store(store, repair=True))
        reader.join(120)  # stdout read to its end
        assert process.exitcode == 0, process.stderr()
    result = json.loads(next(line for line in lines if line.startswith("result "))[len("result ") :])
    assert result["others"] == []
    for fork, own in result["own"].items():
        assert own, fork
        stored = asyncio.run(store.load(fork))
        assert stored is not None, fork
        assert [m["content"] for m in stored.messages if m["content"] in set(own)] == own, fork
    assert asyncio.run(check_store(store, repair=True)).ok
