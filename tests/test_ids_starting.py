"""``ids_starting(prefix)`` of the file and SQL stores: the ids that start with a prefix, as
Python's ``str.startswith`` says (case-sensitive; ``_`` and ``%`` are characters, not a
``LIKE``'s wildcards), sorted; and the command line's lookup of an id by a prefix of it,
which uses it: a session saved meanwhile is found, where a listing by recency, a page at a
time, missed one moving to its front."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_runs import torn_store
from simulacra_session import FileSessionStore, InMemorySessionStore, SessionMetadata
from simulacra_session.cli.prefixes import full_id, full_ids
from simulacra_session.cli.urls import CommandError
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, run
from test_store_sql import BACKENDS, open_store

IDS = ["abcd", "abcde", "abcdX", "ABCD1", "abc", "xabcd", "a_cd1", "abcd.x", "abcd-y"]
KINDS = ["jsonl", "json", *BACKENDS]


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FileSessionStore | SqlSessionStore]:
    kind: str = request.param
    if kind in ("jsonl", "json"):
        yield FileSessionStore(tmp_path / "s", format=kind)  # type: ignore[arg-type]
        return
    with open_store(kind, tmp_path) as sql:
        yield sql


def test_the_ids_starting_with_a_prefix_sorted_as_python_sorts(
    store: FileSessionStore | SqlSessionStore,
) -> None:
    assert run(store.ids_starting("abcd")) == []  # none saved yet (a file store: no root)
    for session_id in IDS:
        run(store.save(session_id, [msg(session_id)]))
    assert run(store.ids_starting("abcd")) == ["abcd", "abcd-y", "abcd.x", "abcdX", "abcde"]
    assert run(store.ids_starting("ABCD")) == ["ABCD1"]  # case-sensitive, as ids are
    assert run(store.ids_starting("a_cd")) == ["a_cd1"]  # "_" is no wildcard
    assert run(store.ids_starting("abcde")) == ["abcde"]
    assert run(store.ids_starting("abcdef")) == []
    assert run(store.ids_starting("%")) == []
    assert run(store.ids_starting("")) == sorted(IDS)
    run(store.delete("abcde"))
    assert run(store.ids_starting("abcde")) == []


@pytest.mark.parametrize("prefix", ["é", "ab\x00", "a\ud800", ".ab", "a" * 129, "ab%", "ab cd"])
def test_a_prefix_no_id_can_start_with_matches_none(
    store: FileSessionStore | SqlSessionStore, prefix: str
) -> None:
    """Not an error where the database cannot compare it (MySQL's ids are ASCII, PostgreSQL's
    text holds no NUL, no driver sends a lone surrogate)."""
    run(store.save("abcd", [msg("x")]))
    assert run(store.ids_starting(prefix)) == []


@pytest.mark.parametrize("prefix", [None, b"abcd", 4])
def test_a_prefix_that_is_no_str_is_a_type_error_naming_it(
    store: FileSessionStore | SqlSessionStore, prefix: Any
) -> None:
    with pytest.raises(TypeError, match=f"prefix must be a str, not a {type(prefix).__name__}"):
        run(store.ids_starting(prefix))


def test_a_file_store_names_a_session_it_cannot_read(tmp_path: Path) -> None:
    store = torn_store(tmp_path / "s")  # "torn" does not load
    assert run(store.ids_starting("t")) == ["torn"]
    assert run(full_id(store, "torn")) == "torn"


def test_the_command_line_finds_by_prefix_a_session_saved_as_it_looks(tmp_path: Path) -> None:
    """1,500 sessions on SQLite; the one looked for is among the oldest, and saved again (to
    the front of the listing by recency) once the lookup has read the first page of it."""
    with open_store("sqlite", tmp_path) as store:
        run(store.save("target-session", [msg("old")]))
        for number in range(1500):
            run(store.save(f"other-{number:04}", [msg("x")]))
        listing = store.list

        async def saved_meanwhile(**page: Any) -> list[SessionMetadata]:
            found = await listing(**page)
            if page.get("offset") == 0:
                await store.save("target-session", [msg("old"), msg("new")])
            return found

        store.list = saved_meanwhile  # type: ignore[method-assign]
        assert run(full_id(store, "targ")) == "target-session"


def test_a_store_without_ids_starting_is_looked_through_by_its_listing() -> None:
    """The command line's lookup on any store (the memory store has no ``ids_starting``): its
    listing, a page at a time (1,000 sessions, so more than one page)."""
    store = InMemorySessionStore()
    run(store.save("target-session", [msg("x")]))  # the last listed, the oldest
    for number in range(1000):
        run(store.save(f"other-{number:04}", [msg("x")]))
    run(store.save("zeta-session", [msg("x")]))  # the first listed, the newest
    assert run(full_id(store, "targ")) == "target-session"
    assert run(full_ids(store, ["zeta", "other-0999", "targ"])) == [
        "zeta-session",
        "other-0999",
        "target-session",
    ]
    with pytest.raises(CommandError, match="other-0 is ambiguous: 1000 sessions start with it: other-0000,"):
        run(full_id(store, "other-0"))
