"""The file store's fork index after deletes: ``forks(p)`` lists the sessions whose ``parent_id``
is ``p`` whether ``p`` exists or not (as the SQL store's query does), the store check agrees,
and a write whose fork is deleted before it is indexed returns normally."""

from __future__ import annotations

import os
import shutil
from contextlib import suppress
from pathlib import Path

import pytest

import simulacra_session.stores.file as store_module
from simulacra_session._backend import link_fork
from simulacra_session.doctor import Report, check_store
from simulacra_session.models import SessionMetadata
from simulacra_session.stores.file import FileFormat, FileSessionStore
from simulacra_session.stores.file import index as file_index
from simulacra_session.testing import msg

FORMATS = ["jsonl", "json"]


def ids(found: list[SessionMetadata]) -> list[str]:
    return [metadata.id for metadata in found]


def kinds(report: Report) -> set[tuple[str, str | None]]:
    return {(problem.kind, problem.session_id) for problem in report.problems}


@pytest.mark.parametrize("file_format", FORMATS)
async def test_forks_of_a_deleted_parent_stay_listed(tmp_path: Path, file_format: FileFormat) -> None:
    """Deleting a parent keeps its forks' index: they still name it, and inherit from it again
    once it is saved again."""
    store = FileSessionStore(tmp_path, format=file_format)
    await store.save("p", [msg("p0"), msg("p1")])
    await store.save("f1", [msg("f1")], {"parent_id": "p", "fork_message_count": 1})
    await store.save("f2", [msg("f2")], {"parent_id": "p", "detached": True})
    await store.save("g", [msg("g")], {"parent_id": "f1", "fork_message_count": 1})
    assert await store.delete("f1")
    assert await store.delete("p")
    assert ids(await store.forks("p")) == ["f2"]
    assert ids(await store.forks("f1")) == ["g"]
    assert kinds(await check_store(store)) == {("missing_parent", "g")}  # the index agrees
    await store.save("p", [msg("new")])
    await store.save("f3", [msg("f3")], {"parent_id": "p"})
    assert ids(await store.forks("p")) == ["f3", "f2"]
    assert ids(await FileSessionStore(tmp_path, format=file_format).forks("p")) == ["f3", "f2"]
    assert await store.delete("f2")
    assert await store.delete("f3")
    assert await store.delete("p")
    assert not (tmp_path / "p-forks").exists()  # a deleted session's index goes with its last fork


@pytest.mark.parametrize("file_format", FORMATS)
async def test_doctor_relinks_a_fork_of_a_deleted_parent(tmp_path: Path, file_format: FileFormat) -> None:
    """A fork of a deleted parent missing from the index (as a version that removed a deleted
    session's index left it) is named by the store check, and re-linked by its repair."""
    store = FileSessionStore(tmp_path, format=file_format)
    await store.save("p", [msg("p")])
    await store.save("f", [msg("f")], {"parent_id": "p", "detached": True})
    assert await store.delete("p")
    shutil.rmtree(tmp_path / "p-forks", ignore_errors=True)
    assert kinds(await check_store(store)) == {("fork_link", "f")}
    repaired = await check_store(store, repair=True)
    assert [(p.kind, p.repaired) for p in repaired.problems] == [("fork_link", True)]
    assert ids(await store.forks("p")) == ["f"]
    assert (await check_store(store)).problems == []


@pytest.mark.parametrize("file_format", FORMATS)
async def test_a_write_whose_fork_is_deleted_before_it_is_indexed_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_format: FileFormat
) -> None:
    """A delete in another process that lands between a fork's write and its indexing (the
    write holds no lock then): the write landed, so it returns its revision; nothing is
    indexed for a file that is gone."""
    store = FileSessionStore(tmp_path, format=file_format)
    await store.save("p", [msg("p")])
    real = file_index.link_fork

    def deleted_first(
        root: str, parent_id: str, child_id: str, fsync: bool = True, suffix: str = ".json", mode: int = 0o700
    ) -> bool:
        with suppress(FileNotFoundError):
            os.unlink(os.path.join(root, child_id + suffix))  # the other process's delete
        return real(root, parent_id, child_id, fsync, suffix, mode)

    monkeypatch.setattr(file_index, "link_fork", deleted_first)
    revision = await store.save("f", [msg("f")], {"parent_id": "p"})
    assert revision.message_count == 1
    assert await store.load("f") is None
    assert await store.forks("p") == []
    assert list((tmp_path / "p-forks").glob("*")) == []  # nothing indexed


@pytest.mark.parametrize("file_format", FORMATS)
async def test_a_fork_linked_by_another_save_during_its_delete_leaves_no_link(
    tmp_path: Path, file_format: FileFormat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save links its fork after its file locks are released: another process's save of the
    fork can link it between the delete's first unindex and its unlink. The delete unindexes
    again after the unlink, so no link outlives it as the last copy of the fork's messages."""
    store = FileSessionStore(tmp_path, format=file_format)
    await store.save("p", [msg("p0")])
    await store.save("f", [msg("secret")], {"parent_id": "p", "fork_message_count": 1})
    remove = store_module.remove_locked
    suffix = f".{file_format}"

    def linked_meanwhile(path: str, fd: int) -> bool:
        if path.endswith("f" + suffix):
            assert link_fork(str(tmp_path), "p", "f", True, suffix, 0o700)
        return remove(path, fd)

    monkeypatch.setattr(store_module, "remove_locked", linked_meanwhile)
    assert await store.delete("f")
    assert os.listdir(tmp_path / "p-forks") == []
    assert (await check_store(store, repair=False)).problems == []


async def test_a_delete_removes_the_link_a_move_left_under_a_former_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal fork moved to another parent by an append cut short before it unindexed the
    former parent (a crash, say) keeps a link there; a delete looked under the current parent
    only, so that link outlived it, the last copy of the deleted fork's messages."""
    store = FileSessionStore(tmp_path, format="jsonl")
    for parent in ("p", "q"):
        await store.save(parent, [msg(parent)])
    secrets = [msg(f"secret {i}") for i in range(50)]  # enough that an append is no compaction
    await store.save("f", secrets, {"parent_id": "p", "fork_message_count": 1})
    with monkeypatch.context() as patch:
        patch.setattr(file_index.ForkIndex, "unindex", lambda *args, **kwargs: None)  # cut short
        await store.append("f", [msg("moved")], {"parent_id": "q"})
    assert os.listdir(tmp_path / "p-forks") == ["f.jsonl"]
    assert os.stat(tmp_path / "f.jsonl").st_nlink == 3  # the file, q's entry and p's
    assert await store.delete("f")
    assert os.listdir(tmp_path / "p-forks") == []
    assert os.listdir(tmp_path / "q-forks") == []
    assert (await check_store(store)).problems == []


@pytest.mark.parametrize("file_format", FORMATS)
async def test_a_delete_of_an_unreadable_fork_removes_its_link(
    tmp_path: Path, file_format: FileFormat
) -> None:
    """A fork whose file cannot be read names no parent: its delete found no link to remove,
    and the link (sharing the damaged file's inode) outlived it as the last copy."""
    store = FileSessionStore(tmp_path, format=file_format)
    await store.save("p", [msg("p")])
    await store.save("f", [msg("secret")], {"parent_id": "p", "fork_message_count": 1})
    fd = os.open(tmp_path / f"f.{file_format}", os.O_WRONLY)  # in place: the link shares it
    os.write(fd, b"garbage!!")
    os.close(fd)
    assert await store.delete("f")
    assert os.listdir(tmp_path / "p-forks") == []
    assert (await check_store(store)).problems == []


@pytest.mark.parametrize("file_format", FORMATS)
async def test_a_delete_looks_in_every_index_only_for_links_it_cannot_account_for(
    tmp_path: Path, file_format: FileFormat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Looking in every index costs a read of each (half a second with 10,000 of them): a
    delete does it only when its file has more links than its parent's entry."""
    store = FileSessionStore(tmp_path, format=file_format)
    await store.save("p", [msg("p")])
    await store.save("f", [msg("f")], {"parent_id": "p", "fork_message_count": 1})

    def everywhere(*args: object) -> set[str]:
        raise AssertionError("looked in every index")

    monkeypatch.setattr(file_index.ForkIndex, "linking", everywhere)
    assert await store.delete("f")
    assert await store.delete("p")
    assert os.listdir(tmp_path) == []
