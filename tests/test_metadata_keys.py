"""Metadata whose nested keys hold what JSON allows and UTF-8 does not (a lone surrogate, as a
JavaScript string may) or a NUL: saved and loaded exactly by every store, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import InMemorySessionStore, SessionStore
from simulacra_session.stores.file import FileSessionStore
from simulacra_session.testing import msg, run
from test_store_sql import BACKENDS, open_store

AWKWARD = {"nested": {"\ud800key": 1, "k\x00ey": ["\udc00"], "plain": {"\udbff": None}}}


@pytest.fixture(params=["memory", "jsonl", "json", *BACKENDS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    kind = request.param
    if kind == "memory":
        yield InMemorySessionStore()
    elif kind in ("jsonl", "json"):
        yield FileSessionStore(tmp_path, format=kind)
    else:
        with open_store(kind, tmp_path) as sql:
            yield sql


def extra(store: SessionStore, session_id: str) -> dict[str, Any] | None:
    stored = run(store.load(session_id))
    assert stored is not None
    return stored.metadata.model_extra


def test_nested_keys_beyond_utf8_round_trip(store: SessionStore) -> None:
    run(store.save("s", [msg("a")], AWKWARD))
    assert extra(store, "s") == AWKWARD
    run(store.save("s", [msg("a"), msg("b")], {"label": "more"}))  # merged with what is stored
    assert extra(store, "s") == AWKWARD
    listed = [meta for meta in run(store.list()) if meta.id == "s"]
    assert [meta.model_extra for meta in listed] == [AWKWARD]
