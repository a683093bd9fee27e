"""The file store on a case-insensitive file system: ids that differ only in case.

On macOS's and Windows' default file systems, and on exFAT (``case_insensitive_fs``: a real
one, mounted), ``alice.jsonl`` opens ``Alice.jsonl``. Before the store checked the names the
directory holds, a save of ``alice`` replaced ``Alice``'s messages (keeping its creation
stamp), a load of ``alice`` returned ``Alice``'s session under the id ``alice``, and a delete
of ``alice`` removed ``Alice``. Now every operation on such an id raises ``CaseClashError``
naming both, with nothing read, written or removed; the session itself works as before.
The whole conformance kit passes there too, in both formats.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from case_insensitive_fs import FileStoreOnAMount, case_insensitive_dir, exfat_mount
from cli_runs import run_cli
from simulacra_session import (
    CaseClashError,
    FileSessionStore,
    SessionError,
    SessionManager,
    SimpleConversation,
)
from simulacra_session.doctor import check_store
from simulacra_session.history import resolve_history
from simulacra_session.stores.file.case import CaseGuard
from simulacra_session.testing import SessionStoreConformance
from simulacra_session.transfer import copy_sessions, export_sessions, import_sessions

__all__ = ["case_insensitive_dir", "exfat_mount"]  # the fixtures, used by name

FORMATS = ["jsonl", "json"]
SUFFIX = {"jsonl": ".jsonl", "json": ".json"}


class TestFileStoreConformanceOnExfat(FileStoreOnAMount, SessionStoreConformance):
    @pytest.fixture(params=FORMATS)
    def store(self, request: pytest.FixtureRequest, case_insensitive_dir: Path) -> FileSessionStore:
        return FileSessionStore(case_insensitive_dir / "sessions", format=request.param)


def _files(root: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in root.iterdir()}


def test_the_mount_compares_names_without_case_and_keeps_them(case_insensitive_dir: Path) -> None:
    (case_insensitive_dir / "Zed.txt").write_text("z")
    assert (case_insensitive_dir / "zED.TXT").read_text() == "z"
    assert os.listdir(case_insensitive_dir) == ["Zed.txt"]


async def _alice(root: Path, file_format: str) -> tuple[FileSessionStore, dict[str, bytes]]:
    """A store with session ``Alice`` (two messages, the second appended) and its files' bytes."""
    store = FileSessionStore(root, format=file_format)  # type: ignore[arg-type]
    await store.save("Alice", [{"role": "user", "content": "Alice's first"}], {"label": "alice's"})
    await store.append("Alice", [{"role": "assistant", "content": "Alice's second"}])
    return store, _files(root)


def _operations(store: FileSessionStore, metadata: Any) -> dict[str, Callable[[], Awaitable[object]]]:
    """Every operation of the store on the id ``alice``."""
    message = [{"role": "user", "content": "alice's own"}]
    return {
        "load": lambda: store.load("alice"),
        "load_tail": lambda: store.load_tail("alice", 1),
        "save": lambda: store.save("alice", message),
        "append": lambda: store.append("alice", message),
        "truncate": lambda: store.truncate("alice", 1),
        "restore": lambda: store.restore("alice", message, metadata),
        "convert jsonl": lambda: store.convert("alice", "jsonl"),
        "convert json": lambda: store.convert("alice", "json"),
        "delete": lambda: store.delete("alice"),
    }


@pytest.mark.parametrize("file_format", FORMATS)
async def test_an_id_differing_only_in_case_is_refused_with_nothing_touched(
    case_insensitive_dir: Path, file_format: str
) -> None:
    root = case_insensitive_dir
    store, before = await _alice(root, file_format)
    stored = await store.load("Alice")
    assert stored is not None
    metadata = stored.metadata.model_copy(update={"id": "alice", "message_count": 1})
    # the same store, which wrote Alice, and a new one, as another process would be
    for each in (store, FileSessionStore(root, format=file_format)):  # type: ignore[arg-type]
        for name, operation in _operations(each, metadata).items():
            with pytest.raises(CaseClashError) as raised:
                await operation()
            assert raised.value.session_id == "alice", name
            assert raised.value.path == str(root / f"Alice{SUFFIX[file_format]}"), name
            assert "'alice'" in str(raised.value)
            assert f"Alice{SUFFIX[file_format]}" in str(raised.value)
            assert isinstance(raised.value, SessionError)
            assert _files(root) == before, name
    assert [m.id for m in await store.list()] == ["Alice"]
    assert await store.load("Alice") == stored


@pytest.mark.parametrize("file_format", FORMATS)
async def test_the_session_itself_works_as_before(case_insensitive_dir: Path, file_format: str) -> None:
    store, _ = await _alice(case_insensitive_dir, file_format)
    other = FileSessionStore(case_insensitive_dir, format=file_format)  # type: ignore[arg-type]
    await other.append("Alice", [{"role": "user", "content": "third"}])
    await store.truncate("Alice", 1)
    loaded = await other.load_tail("Alice", 5)
    assert loaded is not None
    assert [m["content"] for m in loaded.messages] == ["Alice's first", "Alice's second"]
    assert await store.convert("Alice", "json" if file_format == "jsonl" else "jsonl")
    await other.save("Alice", [{"role": "user", "content": "anew"}])
    assert os.listdir(case_insensitive_dir) == [f"Alice{'.json' if file_format == 'jsonl' else '.jsonl'}"]
    for digits in ("123", "4-5_6.7"):  # ids without a letter
        await store.save(digits, [{"role": "user", "content": digits}])
        assert (await other.load(digits)) is not None
    assert await other.delete("Alice")
    assert await store.load("Alice") is None


async def test_the_id_is_free_again_once_the_other_is_deleted(case_insensitive_dir: Path) -> None:
    store, _ = await _alice(case_insensitive_dir, "jsonl")
    with pytest.raises(CaseClashError):
        await store.save("alice", [{"role": "user", "content": "alice's own"}])
    assert await store.delete("Alice")
    await store.save("alice", [{"role": "user", "content": "alice's own"}])
    assert os.listdir(case_insensitive_dir) == ["alice.jsonl"]
    with pytest.raises(CaseClashError):
        await store.load("Alice")
    loaded = await store.load("alice")
    assert loaded is not None
    assert loaded.messages == [{"role": "user", "content": "alice's own"}]


async def test_another_writer_swapping_the_case_is_seen(case_insensitive_dir: Path) -> None:
    """``alice``'s name, trusted once, is checked again when its file is another one: another
    process deleted ``alice`` and saved ``Alice`` since."""
    mine = FileSessionStore(case_insensitive_dir)
    await mine.save("alice", [{"role": "user", "content": "alice's own"}])
    assert await mine.load("alice") is not None
    theirs = FileSessionStore(case_insensitive_dir)
    assert await theirs.delete("alice")
    await theirs.save("Alice", [{"role": "user", "content": "Alice's"}])
    operations = (lambda: mine.load("alice"), lambda: mine.save("alice", []), lambda: mine.delete("alice"))
    for operation in operations:
        with pytest.raises(CaseClashError):
            await operation()
    loaded = await theirs.load("Alice")
    assert loaded is not None
    assert loaded.messages == [{"role": "user", "content": "Alice's"}]


@pytest.mark.parametrize("file_format", FORMATS)
def test_two_ids_created_at_once_one_is_refused(case_insensitive_dir: Path, file_format: str) -> None:
    """Two writers (store objects of their own, as two processes) create ``Alice`` and
    ``alice`` at the same moment: one is written, the other refused; the winner's session is
    whole. The check is made under the lock a creation holds (the root's)."""
    for attempt in range(20):
        root = case_insensitive_dir / str(attempt)
        start = threading.Barrier(2)
        outcome: dict[str, object] = {}

        def create(
            session_id: str,
            root: Path = root,
            start: threading.Barrier = start,
            outcome: dict[str, object] = outcome,
        ) -> None:
            store = FileSessionStore(root, format=file_format)  # type: ignore[arg-type]
            start.wait()
            try:
                outcome[session_id] = asyncio.run(store.save(session_id, [{"by": session_id}]))
            except CaseClashError as error:
                outcome[session_id] = error

        threads = [threading.Thread(target=create, args=(sid,)) for sid in ("Alice", "alice")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        refused = [sid for sid, got in outcome.items() if isinstance(got, CaseClashError)]
        assert len(refused) == 1, outcome
        (winner,) = {"Alice", "alice"} - set(refused)
        assert os.listdir(root) == [winner + SUFFIX[file_format]]
        loaded = asyncio.run(FileSessionStore(root, format=file_format).load(winner))  # type: ignore[arg-type]
        assert loaded is not None
        assert loaded.messages == [{"by": winner}]


async def test_a_manager_loading_the_id_gets_the_error(case_insensitive_dir: Path) -> None:
    store, before = await _alice(case_insensitive_dir, "jsonl")
    async with SessionManager(store, SimpleConversation()) as manager:
        with pytest.raises(CaseClashError):
            await manager.load("alice")
        assert manager.current_session_id is None
    assert _files(case_insensitive_dir) == before


async def test_an_import_naming_both_ids_stops_at_the_second(
    case_insensitive_dir: Path, tmp_path: Path
) -> None:
    """An export of a case-sensitive store holding both ids, imported here: the first is
    written, the second refused by name; the export and the first session are intact."""
    source = FileSessionStore(tmp_path / "source")
    await source.save("Alice", [{"role": "user", "content": "Alice's"}])
    await source.save("alice", [{"role": "user", "content": "alice's"}])
    backup = tmp_path / "backup.jsonl"
    with backup.open("wb") as out:
        await export_sessions(source, out)
    target = FileSessionStore(case_insensitive_dir / "target")
    with pytest.raises(CaseClashError) as raised:
        await import_sessions(target, backup)
    listed = [m.id for m in await target.list()]
    assert len(listed) == 1
    assert raised.value.session_id == ({"Alice", "alice"} - set(listed)).pop()
    loaded = await target.load(listed[0])
    assert loaded is not None
    assert loaded.messages == [{"role": "user", "content": f"{listed[0]}'s"}]


async def test_an_import_skipping_passes_over_the_second_and_says_so(
    case_insensitive_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With ``on_conflict="skip"`` the refused id is passed over (counted, and a warning
    names both ids' files) and the rest is imported: a rerun finishes an import. With
    ``"replace"`` it still raises, never overwriting the other id's session."""
    source = FileSessionStore(tmp_path / "source")
    for session_id in ("Alice", "alice", "bob"):
        await source.save(session_id, [{"role": "user", "content": f"{session_id}'s"}])
    target = FileSessionStore(case_insensitive_dir / "target")
    result = await copy_sessions(source, target, on_conflict="skip")
    assert (result.written, result.replaced, result.skipped) == (2, 0, 1)
    (kept,) = {m.id for m in await target.list()} - {"bob"}
    refused = ({"Alice", "alice"} - {kept}).pop()
    assert f"session id {refused!r} refused" in caplog.text
    before = _files(case_insensitive_dir / "target")
    backup = tmp_path / "backup.jsonl"
    with backup.open("wb") as out:
        await export_sessions(source, out)
    again = await import_sessions(target, backup, on_conflict="skip")
    assert (again.written, again.replaced, again.skipped) == (0, 0, 3)
    with pytest.raises(CaseClashError):
        await import_sessions(target, backup, on_conflict="replace")
    assert _files(case_insensitive_dir / "target")[f"{kept}.jsonl"] == before[f"{kept}.jsonl"]


async def test_a_case_sensitive_file_system_keeps_both(tmp_path: Path) -> None:
    """Where names compare with case (Linux's file systems), ``Alice`` and ``alice`` are two sessions."""
    store = FileSessionStore(tmp_path)
    await store.save("Alice", [{"role": "user", "content": "Alice's"}])
    await store.save("alice", [{"role": "user", "content": "alice's"}])
    await store.append("alice", [{"role": "user", "content": "more"}])
    assert sorted(m.id for m in await store.list()) == ["Alice", "alice"]
    assert await store.delete("alice")
    loaded = await store.load("Alice")
    assert loaded is not None
    assert loaded.messages == [{"role": "user", "content": "Alice's"}]


def test_the_command_line_names_both_and_exits_2(case_insensitive_dir: Path) -> None:
    # Not a coroutine: ``run_cli`` calls the command's ``main`` here, as the other command
    # tests do, instead of starting a ``python -m simulacra_session`` for each command.
    _, before = asyncio.run(_alice(case_insensitive_dir, "jsonl"))
    for command in (("show", "alice"), ("delete", "--yes", "alice"), ("rename", "alice", "x")):
        line = run_cli("--store", str(case_insensitive_dir), *command).error_line()
        assert "session id 'alice' refused" in line
        assert str(case_insensitive_dir / "Alice.jsonl") in line
    assert _files(case_insensitive_dir) == before


# -- races and forks (found by a review of the first version) ----------------------------------


def test_a_swap_within_the_same_second_is_seen(case_insensitive_dir: Path) -> None:
    """The root's names, read for one check, are not reused for the next while the root's
    mtime could hide a change: exFAT through FUSE counts it in whole seconds, so ``alice``
    deleted and ``Alice`` made in the second ``mine`` read them left it unchanged."""
    root = case_insensitive_dir
    mine, theirs = FileSessionStore(root), FileSessionStore(root)
    asyncio.run(theirs.save("alice", [{"role": "user", "content": "alice's"}]))
    assert asyncio.run(mine.load("alice")) is not None  # the names read, found right
    asyncio.run(theirs.delete("alice"))
    asyncio.run(theirs.save("Alice", [{"role": "user", "content": "Alice's"}]))
    before = _files(root)
    for operation in (lambda: mine.load("alice"), lambda: mine.save("alice", [{"by": "mine"}])):
        with pytest.raises(CaseClashError):
            asyncio.run(operation())
    assert _files(root) == before


def test_a_swap_between_a_check_and_its_read_never_points_an_append_elsewhere(
    case_insensitive_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load checks ``alice``'s name, then reads without a lock: ``alice`` deleted and
    ``Alice`` made in between, it read ``Alice``'s journal. It raises instead of returning
    it, and remembers nothing an append could take the fast path with."""
    root = case_insensitive_dir
    mine, theirs = FileSessionStore(root), FileSessionStore(root)
    asyncio.run(theirs.save("alice", [{"role": "user", "content": "alice's"}]))
    check = CaseGuard.check
    swapped: list[str] = []

    def check_then_swap(guard: CaseGuard, session_id: str) -> None:
        check(guard, session_id)
        if guard is mine._case and not swapped:
            swapped.append(session_id)
            asyncio.run(theirs.delete("alice"))
            asyncio.run(theirs.save("Alice", [{"role": "user", "content": "Alice's"}]))

    monkeypatch.setattr(CaseGuard, "check", check_then_swap)
    with pytest.raises(CaseClashError):
        asyncio.run(mine.load("alice"))
    monkeypatch.undo()
    assert swapped == ["alice"]
    before = _files(root)
    with pytest.raises(CaseClashError):
        asyncio.run(mine.append("alice", [{"role": "user", "content": "alice's writer"}]))
    assert _files(root) == before


def test_a_file_removed_while_the_case_is_learnt_teaches_nothing(
    case_insensitive_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first check finds ``alice.jsonl``; another writer deletes it before the name with
    its case swapped is looked up, which is then not found: the store must not conclude that
    names compare with case (it would check nothing from then on)."""
    root = case_insensitive_dir
    mine, theirs = FileSessionStore(root), FileSessionStore(root)
    asyncio.run(theirs.save("alice", [{"role": "user", "content": "alice's"}]))
    time.sleep(1.5)  # until the kernel forgets the names ``theirs`` looked up (FUSE: 1 s)
    lexists = os.path.lexists
    deleted: list[bool] = []

    def delete_first(path: str) -> bool:
        if not deleted:
            deleted.append(False)  # the delete's own looks go through
            deleted[0] = asyncio.run(theirs.delete("alice"))
        return lexists(path)

    monkeypatch.setattr(os.path, "lexists", delete_first)
    assert asyncio.run(mine.load("alice")) is None
    monkeypatch.undo()
    assert deleted == [True]
    asyncio.run(theirs.save("Alice", [{"role": "user", "content": "Alice's"}]))
    before = _files(root)
    with pytest.raises(CaseClashError):
        asyncio.run(mine.save("ALICE", [{"role": "user", "content": "ALICE's"}]))
    assert _files(root) == before


async def _fork_of_a_gone_parent(root: Path) -> FileSessionStore:
    """Fork ``F`` of ``p``; ``p`` deleted (its forks keep their history); then ``P`` saved."""
    store = FileSessionStore(root)
    await store.save("p", [{"role": "user", "content": "p's"}])
    await store.save("F", [{"role": "user", "content": "F's"}], {"parent_id": "p", "fork_message_count": 1})
    assert await store.delete("p")
    await store.save("P", [{"role": "user", "content": "P's"}])
    return store


async def test_a_parent_whose_name_opens_another_ids_file_is_gone(
    case_insensitive_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``F`` loads as a fork whose parent is gone (with a warning), not with ``P``'s history,
    and not with an error; the doctor reports the missing parent."""
    store = await _fork_of_a_gone_parent(case_insensitive_dir)
    resolved = await resolve_history(store, "F")
    assert resolved is not None
    assert resolved.messages == [{"role": "user", "content": "F's"}]
    assert "inherits from missing session p" in caplog.text
    report = await check_store(store)
    assert [(p.kind, p.session_id) for p in report.problems] == [("missing_parent", "F")]
