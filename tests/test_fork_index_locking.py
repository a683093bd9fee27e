"""The fork index's directory locks under races (``stores.file.index``): an index directory a
writer holds stays the one its name leads to, whatever other processes' deletes remove."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from simulacra_session._beneath import Dir
from simulacra_session.stores.file import FileSessionStore
from simulacra_session.testing import msg


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
async def test_a_late_remove_empty_leaves_the_index_a_writer_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_format: str
) -> None:
    """Two deletes of ``p`` each remove its emptied index: the late one, having opened the
    directory the first removed, locks that one, and must not remove the index a writer of
    a fork made again meanwhile and holds (it removed it by name: the fork's check then
    found no index while its writer held one, and its link went to yet another)."""
    store = FileSessionStore(tmp_path, format=file_format)  # type: ignore[arg-type]
    await store.save("p", [msg("p")])
    await store.save("f", [msg("f")], {"parent_id": "p"})
    await store.delete("f")
    assert (tmp_path / "p-forks").is_dir()  # emptied, still there: p's delete removes it
    opened, go_on = threading.Event(), threading.Event()
    lock = Dir.lock

    def paused(self: Dir, exclusive: bool, *, wait: bool = True) -> bool:
        if threading.current_thread().name == "late":  # between its open and its lock
            opened.set()
            go_on.wait()
        return lock(self, exclusive, wait=wait)

    monkeypatch.setattr(Dir, "lock", paused)
    late = threading.Thread(target=store._index.remove_empty, args=("p",), name="late")
    late.start()
    opened.wait()
    store._index.remove_empty("p")  # the first delete's
    assert not (tmp_path / "p-forks").exists()
    with store._index.held("p"):  # a writer of a fork of p, before its write
        made = (tmp_path / "p-forks").stat().st_ino
        go_on.set()
        late.join()
        assert (tmp_path / "p-forks").stat().st_ino == made
