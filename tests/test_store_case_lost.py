"""The file store on a case-insensitive file system that does not keep the case of names.

Some list every name in lower case (``lowercasing_mount``: NTFS mounted by ``lowntfs-3g -o
ignore_case``; FAT without long names too). There a session saved as ``Alice`` was listed as
``alice`` and, in the next process, ``load("Alice")`` raised ``CaseClashError`` naming the
store's own file: found only under another id. Now its save raises ``CaseNotKeptError``
(a ``CaseClashError``) and keeps nothing; ids in lower case (``uuid4``'s) work as anywhere,
forks' hard-link index included (NTFS has hard links, exFAT none).
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from case_insensitive_fs import (
    FileStoreOnAMount,
    case_insensitive_dir,
    exfat_mount,
    lowercasing_dir,
    lowercasing_mount,
)
from simulacra_session import CaseClashError, CaseNotKeptError, FileSessionStore, UnsafePathError, _backend
from simulacra_session.doctor import check_store
from simulacra_session.stores.file import rewrite as rewrite_module
from simulacra_session.stores.file.case import CaseGuard
from simulacra_session.stores.file.residue import sweep as residue_sweep
from simulacra_session.testing import SessionStoreConformance
from simulacra_session.transfer import copy_sessions, export_sessions, import_sessions

__all__ = [
    "case_insensitive_dir",
    "exfat_mount",
    "lowercasing_dir",
    "lowercasing_mount",
]  # the fixtures, used by name

FORMATS = ["jsonl", "json"]


class TestFileStoreConformanceOnLowercasingNtfs(FileStoreOnAMount, SessionStoreConformance):
    """The whole kit, residue after killed writers included, with the fork index's hard links."""

    @pytest.fixture(params=FORMATS)
    def store(self, request: pytest.FixtureRequest, lowercasing_dir: Path) -> FileSessionStore:
        return FileSessionStore(lowercasing_dir / "sessions", format=request.param)


def _names(root: Path) -> list[str]:
    return sorted(os.listdir(root))


def test_the_mount_ignores_case_and_lists_names_in_lower_case(lowercasing_dir: Path) -> None:
    (lowercasing_dir / "Alice.txt").write_bytes(b"x")
    assert (lowercasing_dir / "aLICE.TXT").read_bytes() == b"x"
    assert _names(lowercasing_dir) == ["alice.txt"]
    os.link(lowercasing_dir / "alice.txt", lowercasing_dir / "link.txt")
    assert os.stat(lowercasing_dir / "link.txt").st_nlink == 2


@pytest.mark.parametrize("file_format", FORMATS)
def test_an_id_whose_case_the_disk_would_lose_is_refused_keeping_nothing(
    lowercasing_dir: Path, file_format: str
) -> None:
    root = lowercasing_dir / "sessions"
    store = FileSessionStore(root, format=file_format)  # type: ignore[arg-type]
    asyncio.run(store.save("bob", [{"role": "user", "content": "bob's"}]))
    before = _names(root)
    for attempt in range(2):  # the second learnt nothing that lets it through
        with pytest.raises(CaseNotKeptError) as raised:
            asyncio.run(store.save("Alice", [{"role": "user", "content": "Alice's"}]))
        assert isinstance(raised.value, CaseClashError)
        assert raised.value.session_id == "Alice"
        assert raised.value.path == str(root / f"alice.{file_format}")
        assert "does not keep the case of names" in str(raised.value)
        assert _names(root) == before, attempt
    fresh = FileSessionStore(root)
    assert asyncio.run(fresh.load("Alice")) is None
    assert asyncio.run(fresh.load("alice")) is None
    assert [m.id for m in asyncio.run(fresh.list())] == ["bob"]
    asyncio.run(fresh.save("alice", [{"role": "user", "content": "alice's"}]))  # the id is free


def test_nothing_is_written_under_a_refused_name(
    lowercasing_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first version wrote ``Alice``'s file, found it listed as ``alice.jsonl`` and removed
    it: meanwhile another process's writer of ``alice`` could lock that file (it existed) and
    save, and lose its save to the removal, or append to ``Alice``'s messages. Now the root
    is probed first, and nothing is written under the name."""
    written: list[str] = []
    real = _backend.atomic_write  # what the rewrite calls

    def atomic_write(path: str, data: bytes, fsync: bool, mode: int) -> None:
        written.append(os.path.basename(path))
        real(path, data, fsync, mode)

    monkeypatch.setattr(rewrite_module, "atomic_write", atomic_write)
    store = FileSessionStore(lowercasing_dir)
    for session_id in ("Alice", "Bob.2"):
        with pytest.raises(CaseNotKeptError):
            asyncio.run(store.save(session_id, [{"role": "user", "content": "refused"}]))
    assert written == []
    assert _names(lowercasing_dir) == []


def test_another_writer_of_the_lower_case_id_during_the_probe_keeps_its_own(
    lowercasing_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``alice`` created by another store while ``Alice``'s creator probes the root (under
    the root's lock, which the other waits for): ``alice`` holds its own messages alone."""
    mine, theirs = FileSessionStore(lowercasing_dir), FileSessionStore(lowercasing_dir)
    probe = CaseGuard._probe
    other = threading.Thread(
        target=lambda: asyncio.run(theirs.save("alice", [{"role": "user", "content": "alice's"}]))
    )

    def probe_while_they_save(guard: CaseGuard) -> None:
        other.start()
        probe(guard)

    monkeypatch.setattr(CaseGuard, "_probe", probe_while_they_save)
    with pytest.raises(CaseNotKeptError):
        asyncio.run(mine.save("Alice", [{"role": "user", "content": "Alice's"}]))
    other.join(30)
    loaded = asyncio.run(FileSessionStore(lowercasing_dir).load("alice"))
    assert loaded is not None
    assert loaded.messages == [{"role": "user", "content": "alice's"}]
    assert _names(lowercasing_dir) == ["alice.jsonl"]


def test_a_killed_probers_probe_is_swept_and_probed_over(lowercasing_dir: Path) -> None:
    """A prober killed between making its probe and removing it leaves ``..Case-Probe.tmp``
    (listed in lower case here): the next probe takes it over, and ``sweep`` removes it."""
    (lowercasing_dir / "..Case-Probe.tmp").write_bytes(b"")
    assert residue_sweep(lowercasing_dir) == [str(lowercasing_dir / "..case-probe.tmp")]
    (lowercasing_dir / "..Case-Probe.tmp").write_bytes(b"")
    with pytest.raises(CaseNotKeptError):
        asyncio.run(FileSessionStore(lowercasing_dir).save("Alice", [{"role": "user", "content": "Alice's"}]))
    assert _names(lowercasing_dir) == []


def test_ids_in_lower_case_work_forks_and_their_index_included(lowercasing_dir: Path) -> None:
    store = FileSessionStore(lowercasing_dir)
    asyncio.run(store.save("p", [{"role": "user", "content": "p's"}]))
    for child in ("f1", "f2"):
        asyncio.run(store.save(child, [{"role": "user", "content": child}], {"parent_id": "p"}))
    asyncio.run(store.append("f1", [{"role": "user", "content": "more"}]))
    fresh = FileSessionStore(lowercasing_dir)
    assert sorted(m.id for m in asyncio.run(fresh.forks("p"))) == ["f1", "f2"]
    assert os.stat(lowercasing_dir / "p-forks" / "f1.jsonl").st_nlink == 2  # the index's hard link
    assert asyncio.run(fresh.delete("f2"))
    assert [m.id for m in asyncio.run(fresh.forks("p"))] == ["f1"]
    loaded = asyncio.run(fresh.load("f1"))
    assert loaded is not None
    assert len(loaded.messages) == 2
    assert asyncio.run(check_store(fresh)).problems == []


def test_a_copy_skipping_passes_over_the_refused_id_and_its_attached_forks(
    lowercasing_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``Alice`` refused here, its attached forks (and theirs) are passed over with it: written,
    they would load without what they inherit. A detached fork, whole, is written."""

    async def main() -> None:
        source = FileSessionStore(tmp_path / "source")
        await source.save("Alice", [{"role": "user", "content": "Alice's"}])
        await source.save("f1", [{"role": "user", "content": "f1's"}], {"parent_id": "Alice"})
        await source.save("g1", [{"role": "user", "content": "g1's"}], {"parent_id": "f1"})
        await source.save(
            "d1", [{"role": "user", "content": "d1's"}], {"parent_id": "Alice", "detached": True}
        )
        await source.save("bob", [{"role": "user", "content": "bob's"}])
        target = FileSessionStore(lowercasing_dir)
        result = await copy_sessions(source, target, on_conflict="skip")
        assert (result.written, result.skipped) == (2, 3)
        assert sorted(m.id for m in await target.list()) == ["bob", "d1"]
        for skipped in ("f1", "g1"):
            assert f"skipping session {skipped}: it inherits from session" in caplog.text
        backup = tmp_path / "backup.jsonl"
        with backup.open("wb") as out:
            await export_sessions(source, out)
        again = await import_sessions(target, backup, on_conflict="skip")
        assert (again.written, again.skipped) == (0, 5)

    asyncio.run(main())


def test_the_doctor_finds_forks_of_parents_with_capitals_in_their_index(lowercasing_dir: Path) -> None:
    """``Alice-forks`` is listed as ``alice-forks`` here, and ``P-forks`` is ``p-forks``: the
    doctor took the index's entries for stale forks of ``alice`` and ``p``, removed them and
    linked them again, on every run. Each entry is now matched to its fork's own parent."""

    async def main() -> None:
        store = FileSessionStore(lowercasing_dir)
        await store.save("p", [{"role": "user", "content": "p's"}])
        for fork, parent in (("f1", "Alice"), ("f2", "p"), ("f3", "P")):  # Alice and P: elsewhere
            await store.save(
                fork, [{"role": "user", "content": fork}], {"parent_id": parent, "detached": True}
            )
        for _ in range(2):
            assert (await check_store(store, repair=True)).problems == []
        for parent, forks in (("Alice", ["f1"]), ("p", ["f2"]), ("P", ["f3"])):
            assert [m.id for m in await FileSessionStore(lowercasing_dir).forks(parent)] == forks
        (lowercasing_dir / "p-forks" / "f2.jsonl").unlink()  # an entry really missing is still found
        report = await check_store(store, repair=True)
        assert [(problem.kind, problem.session_id) for problem in report.problems] == [("fork_link", "f2")]
        assert (await check_store(store)).problems == []

    asyncio.run(main())


def test_a_probe_left_in_another_case_teaches_nothing(case_insensitive_dir: Path) -> None:
    """A killed prober's ``..case-probe.tmp`` (a root copied from one that lists names in lower
    case) on exFAT, which keeps case: the probe was opened under that name and the root taken
    for one that does not keep case. It is removed first now, and ``Alice`` saved."""
    root = case_insensitive_dir
    (root / "..case-probe.tmp").write_bytes(b"")
    asyncio.run(FileSessionStore(root).save("Alice", [{"role": "user", "content": "Alice's"}]))
    assert _names(root) == ["Alice.jsonl"]


def test_the_doctor_reports_and_removes_a_left_probe(tmp_path: Path) -> None:
    """``doctor`` saw no problem in a killed prober's probe, and ``--repair`` left it."""
    store = FileSessionStore(tmp_path)
    asyncio.run(store.save("alice", [{"role": "user", "content": "alice's"}]))
    (tmp_path / "..Case-Probe.tmp").write_bytes(b"")
    report = asyncio.run(check_store(store))
    assert [(problem.kind, problem.path) for problem in report.problems] == [
        ("temp_file", str(tmp_path / "..Case-Probe.tmp"))
    ]
    assert [problem.repaired for problem in asyncio.run(check_store(store, repair=True)).problems] == [True]
    assert _names(tmp_path) == ["alice.jsonl"]


def test_a_probe_that_cannot_be_made_names_its_path(tmp_path: Path) -> None:
    """A symlink where the probe goes is refused as any other (``UnsafePathError``), and
    left alone; nothing is written."""
    os.symlink(tmp_path / "elsewhere", tmp_path / "..Case-Probe.tmp")
    with pytest.raises(UnsafePathError) as raised:
        asyncio.run(FileSessionStore(tmp_path).save("Alice", [{"role": "user", "content": "Alice's"}]))
    assert str(tmp_path / "..Case-Probe.tmp") in str(raised.value)
    assert _names(tmp_path) == ["..Case-Probe.tmp"]
