"""A directory shared with the original library, without Node: what the file store writes there
is read back by a model of the original's reads (``original_history``, its fork resolution on
the raw documents); ``test_original_interop.py`` runs the original itself."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import SessionManager, SimpleConversation
from simulacra_session.errors import CorruptSessionError, SessionNotFoundError
from simulacra_session.history import resolve_history
from simulacra_session.stores.file import FileSessionStore
from simulacra_session.testing import msg, run, texts
from simulacra_session.timestamps import parse_timestamp

MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def original_file(root: Path, session_id: str, messages: list[Any], **metadata: Any) -> Path:
    """A session document as the original library writes it: JSON.stringify(file, null, 2)."""
    stamp = "2025-01-02T03:04:05.678Z"
    meta = {"created_at": stamp, "updated_at": stamp, "message_count": len(messages), **metadata}
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{session_id}.json"
    path.write_text(json.dumps({"metadata": meta, "messages": messages}, indent=2))
    return path


def document(root: Path, session_id: str) -> Any:
    return json.loads((root / f"{session_id}.json").read_bytes())


def original_history(root: Path, session_id: str) -> list[Any]:
    """What the original's SessionManager resolves ``session_id`` to, from the raw documents: an
    attached fork takes its parent's history up to ``fork_message_id`` when it finds that id,
    else all of it (it ignores ``fork_message_count``); a missing session has no messages."""
    path = root / f"{session_id}.json"
    if not path.exists():
        return []
    meta, messages = document(root, session_id).values()
    if not meta.get("parent_id") or meta.get("detached"):
        return list(messages)
    parent = original_history(root, meta["parent_id"])
    ids = [m.get("id") for m in parent]
    if meta.get("fork_message_id") and meta["fork_message_id"] in ids:
        parent = parent[: ids.index(meta["fork_message_id"]) + 1]
    return parent + messages


async def our_history(store: FileSessionStore, session_id: str) -> list[Any]:
    resolved = await resolve_history(store, session_id)
    assert resolved is not None
    return resolved.messages


# -- a session keeps the format it was found in ------------------------------------------


def test_the_default_store_continues_an_original_document_in_place(tmp_path: Path) -> None:
    original_file(tmp_path, "p", [msg("root")])
    original_file(tmp_path, "s", [msg("hello")], parent_id="p", detached=True, label="Trip", provider="x")
    (tmp_path / "p-forks").mkdir()
    os.link(tmp_path / "s.json", tmp_path / "p-forks" / "s.json")
    store = FileSessionStore(tmp_path)
    run(store.append("s", [msg("appended")]))
    run(store.save("s", [msg("hello"), msg("appended"), msg("saved")], {"model": "m"}))
    assert sorted(os.listdir(tmp_path)) == ["p-forks", "p.json", "s.json"]
    assert os.listdir(tmp_path / "p-forks") == ["s.json"]
    assert (tmp_path / "p-forks" / "s.json").stat().st_ino == (tmp_path / "s.json").stat().st_ino
    meta, messages = document(tmp_path, "s").values()
    assert texts(messages) == ["hello", "appended", "saved"]
    assert (meta["label"], meta["provider"], meta["model"]) == ("Trip", "x", "m")
    assert meta["created_at"] == "2025-01-02T03:04:05.678Z"
    assert [m.id for m in run(store.forks("p"))] == ["s"]
    assert {m.id for m in run(store.list())} == {"p", "s"}


def test_new_sessions_take_the_store_format_and_keep_it(tmp_path: Path) -> None:
    journal, documents = FileSessionStore(tmp_path), FileSessionStore(tmp_path, format="json")
    long = "a" * 4096  # messages outweighing the metadata records: no compaction
    run(journal.save("j", [msg(long)]))
    run(documents.save("d", [msg(long)]))
    inode = (tmp_path / "j.jsonl").stat().st_ino
    run(documents.append("j", [msg("b")]))  # a journal stays one, appended to in place
    run(journal.append("d", [msg("b")]))
    assert sorted(os.listdir(tmp_path)) == ["d.json", "j.jsonl"]
    assert (tmp_path / "j.jsonl").stat().st_ino == inode
    for store in (journal, documents):
        assert texts(run(store.load("j")).messages) == texts(run(store.load("d")).messages) == [long, "b"]


def test_conversion_happens_only_when_asked(tmp_path: Path) -> None:
    original_file(tmp_path, "s", [msg("a")], parent_id="p", detached=True, label="kept")
    store = FileSessionStore(tmp_path)
    before = run(store.load("s"))
    assert run(store.convert("s")) is True
    assert sorted(os.listdir(tmp_path)) == ["p-forks", "s.jsonl"]
    assert os.listdir(tmp_path / "p-forks") == ["s.jsonl"]
    assert run(store.load("s")) == before  # messages, metadata and updated_at alike
    assert run(store.convert("s")) is False
    assert run(store.convert("s", "json")) is True
    assert sorted(os.listdir(tmp_path)) == ["p-forks", "s.json"]
    assert run(FileSessionStore(tmp_path, format="json").convert("s")) is False
    with pytest.raises(SessionNotFoundError, match="gone"):
        run(store.convert("gone"))
    with pytest.raises(ValueError, match="format must be"):
        run(store.convert("s", "yaml"))  # type: ignore[arg-type]


# -- timestamps the original's string sort orders as we do ---------------------------------


def test_json_documents_are_stamped_in_milliseconds_after_the_last_stamp(tmp_path: Path) -> None:
    future = "2999-01-01T00:00:00.000Z"  # a clock ahead of ours wrote it
    original_file(tmp_path, "ahead", [msg("a")])
    ahead = document(tmp_path, "ahead")
    ahead["metadata"]["updated_at"] = future
    (tmp_path / "ahead.json").write_text(json.dumps(ahead, indent=2))
    for store in (FileSessionStore(tmp_path), FileSessionStore(tmp_path, format="json")):
        run(store.append("ahead", [msg("more")]))
        stamp = document(tmp_path, "ahead")["metadata"]["updated_at"]
        assert MILLIS.fullmatch(stamp), stamp
        assert stamp > future
        assert parse_timestamp(stamp) > parse_timestamp(future)
        future = stamp
    assert document(tmp_path, "ahead")["metadata"]["created_at"] == "2025-01-02T03:04:05.678Z"


def test_a_journal_converted_for_the_original_is_stamped_in_milliseconds(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path)
    run(store.save("s", [msg("a")]))
    before = run(store.load("s")).metadata
    run(store.convert("s", "json"))
    meta = document(tmp_path, "s")["metadata"]
    assert MILLIS.fullmatch(meta["updated_at"])
    assert MILLIS.fullmatch(meta["created_at"])
    assert 0 <= (parse_timestamp(meta["updated_at"]) - before.updated).total_seconds() < 0.001


def test_json_stamps_sort_as_strings_in_save_order(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, format="json")
    for index in range(20):  # within a few milliseconds: distinct stamps all the same
        run(store.save(f"s{index:02d}", [msg(str(index))]))
    stamps = [document(tmp_path, f"s{index:02d}")["metadata"]["updated_at"] for index in range(20)]
    assert all(MILLIS.fullmatch(stamp) for stamp in stamps)
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 20
    ours = [m.id for m in run(store.list())]
    theirs = sorted(ours, key=lambda sid: document(tmp_path, sid)["metadata"]["updated_at"], reverse=True)
    assert ours == theirs == [f"s{index:02d}" for index in reversed(range(20))]


# -- forks resolved the same on both sides ---------------------------------------------------


async def fork_of(root: Path, parent_id: str, file_format: Any = "json") -> tuple[FileSessionStore, str]:
    """An attached fork of ``parent_id`` made by the manager, with one message of its own."""
    store = FileSessionStore(root, format=file_format)
    manager = SessionManager(store, SimpleConversation(), auto_slug=False)
    await manager.load(parent_id)
    fork_id = await manager.fork(parent_id)
    manager.conversation.append(msg("fork's own"))
    await manager.flush()
    return store, fork_id


def test_a_fork_at_a_message_without_id_carries_copies_for_the_original(tmp_path: Path) -> None:
    original_file(tmp_path, "p", [msg("a"), msg("b")])  # no ids: the original's fork point is lost
    store, fork_id = run(fork_of(tmp_path, "p"))
    meta, messages = document(tmp_path, fork_id).values()
    assert (meta["detached"], meta["copied_from_parent"], meta["message_count"]) == (True, 2, 3)
    assert texts(messages) == ["a", "b", "fork's own"]
    stored = run(store.load(fork_id))  # to us it is the attached fork the manager made
    assert (stored.metadata.detached, stored.metadata.fork_message_count) == (False, 2)
    assert stored.metadata.message_count == 1
    assert "copied_from_parent" not in (stored.metadata.model_extra or {})
    assert texts(stored.messages) == ["fork's own"]
    assert [m.message_count for m in run(store.list()) if m.id == fork_id] == [1]
    run(store.append("p", [msg("c")]))  # the parent goes on: neither side's fork follows it
    run(store.append(fork_id, [msg("more")]))
    expected = ["a", "b", "fork's own", "more"]
    assert texts(run(our_history(store, fork_id))) == texts(original_history(tmp_path, fork_id)) == expected
    assert texts(run(store.load(fork_id)).messages) == ["fork's own", "more"]
    (tmp_path / "p.json").unlink()  # as the original deletes a parent: its forks keep their copies
    assert texts(run(our_history(store, fork_id))) == texts(original_history(tmp_path, fork_id)) == expected
    manager = SessionManager(store, SimpleConversation())
    run(manager.load(fork_id))
    manager.conversation.append(msg("after"))
    run(manager.save(full=True))  # its own messages, after the copies
    assert texts(document(tmp_path, fork_id)["messages"]) == [*expected, "after"]


def test_a_fork_of_an_empty_parent_stays_empty_on_both_sides(tmp_path: Path) -> None:
    original_file(tmp_path, "p", [])
    store, fork_id = run(fork_of(tmp_path, "p"))
    assert document(tmp_path, fork_id)["metadata"]["copied_from_parent"] == 0
    run(store.append("p", [msg("later")]))
    expected = ["fork's own"]
    assert texts(run(our_history(store, fork_id))) == texts(original_history(tmp_path, fork_id)) == expected


def test_a_fork_at_a_message_with_an_id_needs_no_copies(tmp_path: Path) -> None:
    original_file(tmp_path, "p", [msg("a", id="m1"), msg("b", id="m2")])
    store, fork_id = run(fork_of(tmp_path, "p"))
    meta = document(tmp_path, fork_id)["metadata"]
    assert (meta["detached"], meta["fork_message_id"], "copied_from_parent" in meta) == (False, "m2", False)
    run(store.append("p", [msg("c")]))
    expected = ["a", "b", "fork's own"]
    assert texts(run(our_history(store, fork_id))) == texts(original_history(tmp_path, fork_id)) == expected


def test_a_fork_of_a_journal_carries_copies_for_the_original(tmp_path: Path) -> None:
    run(FileSessionStore(tmp_path).save("p", [msg("a", id="m1"), msg("b", id="m2")]))  # unseen by it
    store, fork_id = run(fork_of(tmp_path, "p"))
    meta = document(tmp_path, fork_id)["metadata"]
    assert (meta["fork_message_id"], meta["copied_from_parent"]) == ("m2", 2)
    expected = ["a", "b", "fork's own"]
    assert texts(run(our_history(store, fork_id))) == texts(original_history(tmp_path, fork_id)) == expected


def test_copies_follow_conversions_and_a_materialized_fork_drops_them(tmp_path: Path) -> None:
    original_file(tmp_path, "p", [msg("a")])
    store, fork_id = run(fork_of(tmp_path, "p", "jsonl"))  # a journal: the original cannot see it
    assert not (tmp_path / f"{fork_id}.json").exists()
    assert run(store.convert(fork_id, "json")) is True
    assert texts(document(tmp_path, fork_id)["messages"]) == ["a", "fork's own"]
    assert run(store.convert(fork_id, "jsonl")) is True
    assert texts(run(store.load(fork_id)).messages) == ["fork's own"]
    run(store.convert(fork_id, "json"))
    manager = SessionManager(store, SimpleConversation())
    run(manager.delete("p"))  # the fork gets its history written into it, and is detached
    meta, messages = document(tmp_path, fork_id).values()
    assert (meta["detached"], "copied_from_parent" in meta, texts(messages)) == (
        True,
        False,
        ["a", "fork's own"],
    )
    assert texts(run(our_history(store, fork_id))) == texts(original_history(tmp_path, fork_id))


@pytest.mark.parametrize(
    ("fork_point", "expected"),
    [
        ({"fork_message_id": "m1"}, ["a", "own"]),  # cut after the message it names
        ({"fork_message_id": "unknown"}, ["a", "b", "own"]),  # not found: the whole parent
        ({}, ["a", "b", "own"]),  # no fork point: the whole parent
    ],
)
def test_the_originals_forks_resolve_as_it_resolves_them(
    tmp_path: Path, fork_point: dict[str, str], expected: list[str]
) -> None:
    original_file(tmp_path, "p", [msg("a", id="m1"), msg("b", id="m2")])
    original_file(tmp_path, "f", [msg("own")], parent_id="p", detached=False, **fork_point)
    store = FileSessionStore(tmp_path)
    assert texts(run(our_history(store, "f"))) == texts(original_history(tmp_path, "f")) == expected


# -- a fork whose parent is gone ---------------------------------------------------------------


def test_a_fork_of_a_missing_parent_loads_its_own_messages(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    original_file(tmp_path, "f", [msg("own")], parent_id="deleted", detached=False, fork_message_id="x")
    original_file(tmp_path, "g", [msg("grandchild")], parent_id="f", detached=False)
    store = FileSessionStore(tmp_path)
    with caplog.at_level(logging.WARNING, "simulacra_session"):
        assert texts(run(our_history(store, "g"))) == texts(original_history(tmp_path, "g"))
    assert "session f inherits from missing session deleted" in caplog.text
    manager = SessionManager(store, SimpleConversation())
    run(manager.load("f"))
    assert texts(manager.conversation.messages) == ["own"]
    with pytest.raises(CorruptSessionError, match="session f inherits from missing session deleted"):
        run(resolve_history(store, "g", strict=True))
    strict = SessionManager(store, SimpleConversation(), strict_forks=True)
    with pytest.raises(CorruptSessionError, match="missing session deleted"):
        run(strict.load("f"))


# -- lone surrogates the original writes -------------------------------------------------------


def test_a_label_cut_inside_an_emoji_loads_and_is_written_back_escaped(tmp_path: Path) -> None:
    path = original_file(tmp_path, "s", [msg("x \U0001f600 \udc00")], label="Tell me about \ud83d")
    assert b"\\ud83d" in path.read_bytes()  # as JSON.stringify writes a lone surrogate
    for store in (FileSessionStore(tmp_path), FileSessionStore(tmp_path, format="json")):
        assert [m.label for m in run(store.list())] == ["Tell me about \ud83d"]
        stored = run(store.load("s"))
        assert stored.metadata.label == "Tell me about \ud83d"
        run(store.append("s", [msg("more \ud800")]))
    data = (tmp_path / "s.json").read_bytes()
    assert b'"label":"Tell me about \\ud83d"' in data
    assert b'"x \xf0\x9f\x98\x80 \\udc00"' in data
    assert data.count(b'"more \\ud800"') == 2
    assert os.listdir(tmp_path) == ["s.json"]
    assert json.loads(data)["metadata"]["label"] == "Tell me about \ud83d"
