"""FileSessionStore: the conformance suite in both formats, the layout, corrupt files, the fork index."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulacra_session._backend import loads
from simulacra_session.errors import CorruptSessionError, InvalidSessionIdError, SerializationError
from simulacra_session.models import SessionMetadata
from simulacra_session.stores.file import FileFormat, FileSessionStore
from simulacra_session.stores.file import files as file_files
from simulacra_session.stores.file import index as file_index
from simulacra_session.testing import BAD_IDS, SessionStoreConformance, msg, run, texts
from simulacra_session.timestamps import parse_timestamp

#: A session as the original TypeScript library writes it: JSON.stringify(file, null, 2).
TS_FILE = """{
  "metadata": {
    "id": "from-typescript",
    "created_at": "2025-01-02T03:04:05.678Z",
    "updated_at": "2025-01-02T03:09:00.001Z",
    "message_count": 2,
    "label": "Plan a trip",
    "provider": "anthropic",
    "model": "claude",
    "workspace": {
      "path": "/home/u",
      "flags": [
        true,
        null
      ]
    }
  },
  "messages": [
    {
      "role": "user",
      "id": "m1",
      "timestamp": 1735787045678,
      "content": [
        {
          "type": "text",
          "text": "Plan a trip \\u2014 somewhere \\"warm\\""
        }
      ]
    },
    {
      "role": "assistant",
      "content": [
        {
          "type": "thinking",
          "thought": "hmm"
        },
        {
          "type": "image",
          "source": {
            "media_type": "image/png",
            "data": "iVBORw0KGgo="
          }
        }
      ],
      "usage": {
        "input_tokens": 10,
        "output_tokens": 20
      }
    }
  ]
}
"""


def session_file(root: Path, session_id: str, updated_at: str, **metadata: Any) -> Path:
    """Write a session file by hand, pretty-printed like the original library does."""
    document = {
        "metadata": {"created_at": updated_at, "updated_at": updated_at, "message_count": 0, **metadata},
        "messages": [],
    }
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{session_id}.json"
    path.write_text(json.dumps(document, indent=2))
    return path


def names(directory: Path) -> set[str]:
    return {entry.name for entry in directory.iterdir()}


class FileStoreJournals:
    """The kit's ``session_file`` fixture for a ``store`` that is a file store."""

    @pytest.fixture
    def session_file(self, store: FileSessionStore) -> Callable[[str], Path] | None:
        """A journal's bytes carry checksums; a ``.json`` document's none (the original reads it)."""
        if store.format == "json":
            return None
        return lambda session_id: Path(store.root) / f"{session_id}.jsonl"


class TestFileStoreConformance(FileStoreJournals, SessionStoreConformance):
    @pytest.fixture(
        params=[(True, "jsonl"), (False, "jsonl"), (True, "json"), (False, "json")],
        ids=["jsonl-fsync", "jsonl-no-fsync", "json-fsync", "json-no-fsync"],
    )
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> FileSessionStore:
        fsync, file_format = request.param
        return FileSessionStore(tmp_path / "sessions", fsync=fsync, format=file_format)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "deep" / "sessions"


@pytest.fixture
def store(root: Path) -> FileSessionStore:
    """A store in the original library's layout, which the tests below inspect on disk."""
    return FileSessionStore(root, format="json")


# -- layout ------------------------------------------------------------------------------


def test_document_layout(store: FileSessionStore, root: Path) -> None:
    run(store.save("a", [msg("x")], {"label": "l"}))
    assert names(root) == {"a.json"}
    data = (root / "a.json").read_bytes()
    document = loads(data)
    assert isinstance(document, dict)
    assert list(document) == ["metadata", "messages"]
    assert list(document["metadata"]) == ["created_at", "updated_at", "message_count", "label"]
    assert document["messages"] == [msg("x")]
    assert b" " not in data.replace(b'"text":"x"', b"")


def test_accepts_str_root_and_no_fsync(tmp_path: Path) -> None:
    store = FileSessionStore(str(tmp_path / "s"), fsync=False, format="json")
    run(store.save("a", [msg("x")]))
    assert store.root == str(tmp_path / "s")
    assert (tmp_path / "s" / "a.json").is_file()


def test_missing_root_reads_as_empty_and_is_not_created(store: FileSessionStore, root: Path) -> None:
    assert run(store.list()) == []
    assert run(store.load("a")) is None
    assert run(store.forks("a")) == []
    assert run(store.delete("a")) is False
    assert not root.parent.exists()


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_invalid_ids_write_nothing(tmp_path: Path, bad: Any) -> None:
    root = tmp_path / "sessions"
    store = FileSessionStore(root, format="json")
    with pytest.raises(InvalidSessionIdError):
        run(store.save(bad, [msg("x")]))
    assert names(tmp_path) == set()
    run(store.save("ok", []))
    with pytest.raises(InvalidSessionIdError):
        run(store.save(bad, [msg("x")]))
    if bad is not None:
        with pytest.raises(InvalidSessionIdError):
            run(store.save("ok", [msg("x")], {"parent_id": bad}))
    for call in (store.load, store.delete, store.forks):
        with pytest.raises(InvalidSessionIdError):
            run(call(bad))
    assert names(tmp_path) == {"sessions"}
    assert names(root) == {"ok.json"}


def test_oserror_propagates(tmp_path: Path) -> None:
    root = tmp_path / "not-a-dir"
    root.write_text("")
    store = FileSessionStore(root, format="json")
    with pytest.raises(NotADirectoryError):
        run(store.list())
    with pytest.raises(NotADirectoryError):
        run(store.load("a"))
    with pytest.raises(OSError, match="not-a-dir"):
        run(store.save("a", []))


# -- files from the original library ------------------------------------------------------


def test_reads_and_continues_a_typescript_file(store: FileSessionStore, root: Path) -> None:
    root.mkdir(parents=True)
    (root / "trip.json").write_text(TS_FILE)
    original = json.loads(TS_FILE)
    stored = run(store.load("trip"))
    assert stored is not None
    meta = stored.metadata
    assert meta.id == "trip"  # the file name wins over the id inside
    assert (meta.label, meta.provider, meta.model) == ("Plan a trip", "anthropic", "claude")
    assert meta.message_count == 2
    assert meta.model_extra == {"workspace": {"path": "/home/u", "flags": [True, None]}}
    assert stored.messages == original["messages"]
    assert [m.id for m in run(store.list())] == ["trip"]

    run(store.save("trip", [*stored.messages, msg("more")]))
    continued = run(store.load("trip"))
    assert continued is not None
    assert continued.metadata.created_at == "2025-01-02T03:04:05.678Z"
    assert continued.metadata.updated > parse_timestamp("2025-01-02T03:09:00.001Z")
    assert continued.metadata.message_count == 3
    assert continued.metadata.model_extra == meta.model_extra
    assert continued.messages == [*original["messages"], msg("more")]
    written = json.loads((root / "trip.json").read_text())
    assert "id" not in written["metadata"]
    assert written["metadata"]["workspace"] == original["metadata"]["workspace"]


def test_list_orders_by_instant_across_precisions(store: FileSessionStore, root: Path) -> None:
    # As strings "…05.123Z" sorts after "…05.123456Z"; as instants it is earlier.
    session_file(root, "ms", "2025-01-02T03:04:05.123Z")
    session_file(root, "us", "2025-01-02T03:04:05.123456Z")
    session_file(root, "older", "2025-01-02T03:04:05.1229Z")
    session_file(root, "offset", "2025-01-02T04:04:05.100+01:00")
    assert [m.id for m in run(store.list())] == ["us", "ms", "older", "offset"]
    run(store.save("older", []))
    assert run(store.list())[0].id == "older"


def test_list_ignores_what_is_not_a_session(
    store: FileSessionStore, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = session_file(root, "good", "2025-01-01T00:00:00Z")
    content = good.read_bytes()
    (root / ".good.json.0123456789abcdef.tmp").write_bytes(content)
    (root / ".hidden.json").write_bytes(content)
    (root / "good.json.corrupt-20261125T020000123456Z").write_bytes(content)
    (root / "good.txt").write_bytes(content)
    (root / "bad name.json").write_bytes(content)
    (root / "dir.json").mkdir()
    (root / "good-forks").mkdir()
    (root / "broken.json").write_text('{"metadata": {')
    caplog.set_level(logging.WARNING, logger="simulacra_session")
    assert [m.id for m in run(store.list())] == ["good"]
    assert str(root / "broken.json") in caplog.text


def slots(metadata: SessionMetadata) -> tuple[Any, ...]:
    """Everything a metadata object holds, nested models included."""
    checkpoint = metadata.checkpoint_state
    return (
        metadata.__dict__,
        metadata.model_extra,
        metadata.model_fields_set,
        metadata.__pydantic_private__,
        None
        if checkpoint is None
        else (checkpoint.__dict__, checkpoint.model_extra, checkpoint.model_fields_set),
    )


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_warm_list_hands_out_independent_copies(tmp_path: Path, file_format: FileFormat) -> None:
    store = FileSessionStore(tmp_path, format=file_format)
    checkpoint = {"message_id": "m1", "summary": "s", "spans": [{"from": 0}]}
    run(store.save("plain", [msg("one")], {"label": "l"}))
    run(store.save("nested", [msg("one")], {"extra": {"list": [1]}, "checkpoint_state": checkpoint}))
    cold = run(store.list())
    warm = run(store.list())
    fresh = run(FileSessionStore(tmp_path, format=file_format).list())
    assert [slots(m) for m in cold] == [slots(m) for m in warm] == [slots(m) for m in fresh]
    for listed in (cold, warm):
        nested = next(m for m in listed if m.id == "nested")
        assert nested.model_extra is not None
        assert nested.checkpoint_state is not None
        assert nested.checkpoint_state.model_extra is not None
        nested.model_extra["extra"]["list"].append(2)
        nested.model_extra["added"] = True
        nested.checkpoint_state.model_extra["spans"][0]["from"] = 9
        plain = next(m for m in listed if m.id == "plain")
        assert plain.model_extra is not None
        plain.model_extra["added"] = True
        plain.__dict__["label"] = "changed"
        plain.model_fields_set.add("model")
    assert [slots(m) for m in run(store.list())] == [slots(m) for m in fresh]
    assert run(store.forks("nobody")) == []


# -- corrupt files ------------------------------------------------------------------------

CORRUPT = {
    "bad-json": b'{"metadata": {}, "messages": [}',
    "bad-utf8": b'{"metadata": {"label": "\xff"}, "messages": []}',
    "not-an-object": b"[1, 2]",
    "no-metadata": b'{"messages": []}',
    "metadata-not-dict": b'{"metadata": [], "messages": []}',
    "messages-not-list": b'{"metadata": {"created_at": "2025-01-01T00:00:00Z", "updated_at": '
    b'"2025-01-01T00:00:00Z", "message_count": 0}, "messages": {}}',
    "bad-timestamp": b'{"metadata": {"created_at": "yesterday", "updated_at": "2025-01-01T00:00:00Z", '
    b'"message_count": 0}, "messages": []}',
    "missing-count": b'{"metadata": {"created_at": "2025-01-01T00:00:00Z", "updated_at": '
    b'"2025-01-01T00:00:00Z"}, "messages": []}',
    "empty": b"",
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_load_corrupt_names_the_path(store: FileSessionStore, root: Path, content: bytes) -> None:
    root.mkdir(parents=True)
    path = root / "s.json"
    path.write_bytes(content)
    with pytest.raises(CorruptSessionError, match=re.escape(str(path))):
        run(store.load("s"))
    assert run(store.list()) == []


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_save_over_corrupt_sets_it_aside(
    store: FileSessionStore, root: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    root.mkdir(parents=True)
    path = root / "s.json"
    path.write_bytes(content)
    caplog.set_level(logging.WARNING, logger="simulacra_session")
    run(store.save("s", [msg("fresh")], {"label": "new"}))
    aside = [name for name in names(root) if name != "s.json"]
    assert len(aside) == 1
    assert re.fullmatch(r"s\.json\.corrupt-\d{8}T\d{12}Z", aside[0])
    assert (root / aside[0]).read_bytes() == content
    assert str(path) in caplog.text
    assert str(root / aside[0]) in caplog.text
    stored = run(store.load("s"))
    assert stored is not None
    assert (stored.metadata.message_count, stored.metadata.label) == (1, "new")
    assert stored.metadata.created_at == stored.metadata.updated_at
    assert [m.id for m in run(store.list())] == ["s"]


def test_failed_save_over_corrupt_leaves_it_in_place(store: FileSessionStore, root: Path) -> None:
    root.mkdir(parents=True)
    (root / "s.json").write_bytes(b"{")
    with pytest.raises(SerializationError):
        run(store.save("s", [msg("x", data={1j})]))
    with pytest.raises(ValueError, match="created_at"):
        run(store.save("s", [], {"created_at": "2025-01-01T00:00:00Z"}))
    assert names(root) == {"s.json"}
    assert (root / "s.json").read_bytes() == b"{"


def test_serialization_error_leaves_the_file_byte_identical(store: FileSessionStore, root: Path) -> None:
    run(store.save("a", [msg("kept")], {"parent_id": "p"}))
    before = (root / "a.json").read_bytes()
    inode = os.stat(root / "a.json").st_ino
    with pytest.raises(SerializationError, match=r"\$\.messages\[0\]\.oops"):
        run(store.save("a", [msg("x", oops={1})], {"label": "x"}))
    assert (root / "a.json").read_bytes() == before
    assert os.stat(root / "a.json").st_ino == inode
    assert names(root) == {"a.json", "p-forks"}


# -- fork index ---------------------------------------------------------------------------


def test_fork_index_follows_every_save(store: FileSessionStore, root: Path) -> None:
    run(store.save("p", [msg("root")]))
    for n in range(1, 5):
        run(store.save("c", [msg(str(i)) for i in range(n)], {"parent_id": "p"}))
        entry = root / "p-forks" / "c.json"
        assert os.stat(entry).st_ino == os.stat(root / "c.json").st_ino
        assert entry.read_bytes() == (root / "c.json").read_bytes()
        [fork] = run(store.forks("p"))
        assert (fork.id, fork.message_count) == ("c", n)
    assert names(root / "p-forks") == {"c.json"}
    assert not (root / ".no-hard-links").exists()


def test_forks_reads_the_index_only(store: FileSessionStore, root: Path) -> None:
    run(store.save("p", []))
    run(store.save("c", [], {"parent_id": "p"}))
    session_file(root, "unindexed", "2030-01-01T00:00:00Z", parent_id="p")
    assert [m.id for m in run(store.forks("p"))] == ["c"]
    assert [m.id for m in run(store.list())] == ["unindexed", "c", "p"]


def test_forks_skips_stale_entries(store: FileSessionStore, root: Path) -> None:
    run(store.save("p", []))
    run(store.save("gone", [], {"parent_id": "p"}))
    run(store.save("moved", [], {"parent_id": "p"}))
    run(store.save("kept", [], {"parent_id": "p"}))
    (root / "gone.json").unlink()
    os.link(root / "moved.json", root / "p-forks" / ".moved.json.0123456789abcdef.tmp")
    run(store.save("moved", [], {"parent_id": "q"}))
    assert [m.id for m in run(store.forks("p"))] == ["kept"]
    assert [m.id for m in run(store.forks("q"))] == ["moved"]
    # A stale entry from another parent (e.g. a crash before the old entry was removed).
    os.link(root / "moved.json", root / "p-forks" / "moved.json")
    assert [m.id for m in run(store.forks("p"))] == ["kept"]


def test_delete_cleans_the_index(store: FileSessionStore, root: Path) -> None:
    run(store.save("p", []))
    run(store.save("c", [], {"parent_id": "p"}))
    run(store.save("d", [], {"parent_id": "p"}))
    run(store.save("g", [], {"parent_id": "c"}))
    assert run(store.delete("c")) is True
    assert names(root / "p-forks") == {"d.json"}
    assert names(root / "c-forks") == {"g.json"}  # g names c still: forks("c") lists it
    assert run(store.delete("g")) is True
    assert run(store.delete("c")) is False
    assert not (root / "c-forks").exists()  # an index of no fork goes with its session
    assert run(store.delete("p")) is True
    assert names(root) == {"d.json", "p-forks"}
    assert [m.id for m in run(store.list())] == ["d"]
    assert run(store.delete("p")) is False


def test_no_hard_links_fallback(
    root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[str, str]] = []

    def no_links(
        root: object,
        parent_id: str,
        child_id: str,
        fsync: bool = True,
        suffix: str = ".json",
        dir_mode: int = 0o700,
    ) -> bool:
        calls.append((parent_id, child_id))
        return False

    monkeypatch.setattr(file_index, "link_fork", no_links)
    caplog.set_level(logging.WARNING, logger="simulacra_session")
    store = FileSessionStore(root, format="json")
    run(store.save("p", []))
    run(store.save("c1", [], {"parent_id": "p"}))
    assert (root / ".no-hard-links").is_file()
    assert str(root) in caplog.text
    run(store.save("c2", [msg("x")], {"parent_id": "p"}))
    assert calls == [("p", "c1")]
    assert names(root) == {".no-hard-links", "p.json", "c1.json", "c2.json"}
    assert [m.id for m in run(store.forks("p"))] == ["c2", "c1"]
    assert [m.id for m in run(FileSessionStore(root, format="json").forks("p"))] == ["c2", "c1"]
    assert [m.id for m in run(store.list())] == ["c2", "c1", "p"]
    assert run(store.delete("c1")) is True
    assert [m.id for m in run(store.forks("p"))] == ["c2"]


def test_concurrent_saves_leave_one_parsable_file(store: FileSessionStore, root: Path) -> None:
    async def burst() -> None:

        await asyncio.gather(
            *(store.save("a", [msg(str(i))] * (i + 1), {"parent_id": "p", f"k{i}": i}) for i in range(32))
        )

    run(burst())
    document = loads((root / "a.json").read_bytes())
    assert isinstance(document, dict)
    count = document["metadata"]["message_count"]
    assert count == len(document["messages"])
    assert texts(document["messages"]) == [str(count - 1)] * count
    assert os.stat(root / "p-forks" / "a.json").st_ino == os.stat(root / "a.json").st_ino
    assert names(root) == {"a.json", "p-forks"}
    assert names(root / "p-forks") == {"a.json"}


@pytest.mark.parametrize("pread", [True, False], ids=["pread", "seek-and-read"])
def test_read_from_reads_past_a_stale_size_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pread: bool
) -> None:
    """The listing reads from an offset to the end in one call when the size it stat'ed still
    holds, and on to the real end when the file grew since (or reads at most ``size``)."""
    if not pread:
        monkeypatch.setattr(file_files, "_pread", None)  # as on Windows
    path = tmp_path / "f"
    data = bytes(range(256)) * 8_000  # 2 MB: more than one 1 MB read past the stale size
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        for offset, size in [(0, len(data)), (1000, len(data)), (0, 10), (5, 0), (len(data), len(data))]:
            assert file_files.read_from(fd, offset, size) == data[offset:]
        assert file_files.read_from(fd, 0, 64, to_end=False) == data[:64]
        assert file_files.read_from(fd, 100, 64, to_end=False) == data[100:164]
    finally:
        os.close(fd)
