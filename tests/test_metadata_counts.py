"""A session's counts (``message_count``, ``fork_message_count``) are ints that are not
negative, and its flags (``detached``, ``is_checkpoint``) bools: a save giving another value is
refused (``InvalidMetadataError`` naming the session and the key), and a stored session holding
one is damage, ``CorruptSessionError`` naming its id and where it is (file, table), left out of
``list()`` as other damage is. Before, a negative fork count was kept, listed as ``3 (+-1)``,
and failed only when its history was resolved; a bool or a float was quietly read as an int,
and ``1`` or ``"yes"`` as a flag set (which a SQL store's listing, reading the stored text,
took as not set)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from simulacra_session import CorruptSessionError, FileSessionStore, InvalidMetadataError
from simulacra_session._backend import dumps
from simulacra_session.models import SessionMetadata
from simulacra_session.protocols import SessionStore
from simulacra_session.stores._sql_schema import Schema
from simulacra_session.stores.file import journal
from simulacra_session.stores.memory import InMemorySessionStore
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, run
from test_store_sql import open_store, sync_engine_of

STAMP = "2025-01-02T03:04:05.678Z"
#: What a count may not be: negative, or a bool, float or string a lax model reads as an int.
BAD_COUNTS = [-1, True, 2.0, "2"]
#: What a flag may not be: an int or a string a lax model reads as a bool.
BAD_FLAGS = [1, 0, "yes", "false"]
#: Each key, with each value it may not hold.
BAD_VALUES = [
    *(("fork_message_count", value) for value in BAD_COUNTS),
    *((key, value) for key in ("detached", "is_checkpoint") for value in BAD_FLAGS),
]
STORES = ["memory", "jsonl", "json", "sqlite"]


@contextmanager
def _store(kind: str, tmp_path: Path) -> Iterator[SessionStore]:
    if kind == "memory":
        yield InMemorySessionStore()
    elif kind == "sqlite":
        with open_store("sqlite", tmp_path) as store:
            yield store
    else:
        yield FileSessionStore(tmp_path / "s", format="json" if kind == "json" else "jsonl")


@pytest.mark.parametrize(("key", "value"), [*(("message_count", value) for value in BAD_COUNTS), *BAD_VALUES])
def test_metadata_made_with_a_bad_count_or_flag_is_refused(key: str, value: object) -> None:
    fields: dict[str, Any] = {"id": "a", "created_at": STAMP, "updated_at": STAMP, "message_count": 1}
    with pytest.raises(ValidationError, match=key):  # as a bad timestamp is
        SessionMetadata.model_validate({**fields, key: value})
    good = 0 if key.endswith("count") else True
    assert SessionMetadata.model_validate({**fields, key: good}).model_dump()[key] is good


@pytest.mark.parametrize("kind", STORES)
@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_a_save_giving_a_bad_fork_count_or_flag_is_refused_naming_the_session(
    kind: str, key: str, value: object, tmp_path: Path
) -> None:
    with _store(kind, tmp_path) as store:
        run(store.save("parent", [msg("p")]))
        given = {"parent_id": "parent", key: value}
        for write in (store.save, getattr(store, "append", store.save)):
            with pytest.raises(InvalidMetadataError, match=f"session fork: {key}={value!r}"):
                run(write("fork", [msg("f")], given))
        assert run(store.load("fork")) is None, "nothing written"
        assert [meta.id for meta in run(store.list())] == ["parent"]


def _write_bad(kind: str, store: SessionStore, tmp_path: Path, key: str, value: object) -> str:
    """Store session ``fork`` of ``parent``, its ``key`` holding ``value``, around ``store`` (as
    another tool may write it); where it is."""
    metadata = {
        "created_at": STAMP,
        "updated_at": STAMP,
        "message_count": 1,
        "parent_id": "parent",
        key: value,
    }
    if kind == "sqlite":
        assert isinstance(store, SqlSessionStore)
        run(store.save("fork", [msg("f")], {"parent_id": "parent", "fork_message_count": 0}))
        sessions = Schema.named(store.table).sessions
        with sync_engine_of(store).begin() as connection:
            update = sa.update(sessions).where(sessions.c.id == "fork")
            connection.execute(update.values(metadata=dumps(metadata).decode()))
        return repr(store.table)
    path = tmp_path / "s" / f"fork.{kind}"
    if kind == "json":
        path.write_text(json.dumps({"metadata": metadata, "messages": [msg("f")]}))
    else:
        path.write_bytes(journal.encode_full(dumps(metadata), [dumps(msg("f"))])[0])
    return str(path)


@pytest.mark.parametrize("kind", ["jsonl", "json", "sqlite"])
@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_a_stored_bad_fork_count_or_flag_is_damage_named_by_id_and_place(
    kind: str, key: str, value: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _store(kind, tmp_path) as store:
        run(store.save("parent", [msg("p"), msg("q")]))
        where = _write_bad(kind, store, tmp_path, key, value)
        with pytest.raises(CorruptSessionError, match=key) as raised:
            run(store.load("fork"))
        assert where in str(raised.value)
        assert ("'fork'" if kind == "sqlite" else "fork.") in str(raised.value)
        with caplog.at_level(logging.WARNING, logger="simulacra_session"):
            listed = run(store.list())
        assert [meta.id for meta in listed] == ["parent"], "the other sessions are listed"
        assert any(where in record.getMessage() for record in caplog.records), "the damaged one named"
