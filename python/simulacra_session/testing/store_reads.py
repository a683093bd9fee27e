"""The documented ``SessionStore`` protocol, part two: ``list`` (with paging), ``load`` and
``delete``, isolation from callers' objects, invalid ids, and ids differing only in case.

Each failure names the contract it checks: the method, then the rule of its docstring.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ..errors import CaseClashError, CaseNotKeptError, InvalidSessionIdError
from ..protocols import SessionStore
from .helpers import BAD_IDS, StoreFixture, msg, raises, run, texts

__all__ = ["StoreReadContract"]

ORDER = "SessionStore.list returns the sessions most recently updated first"
PAGES = "SessionStore.list(limit=, offset=) returns the limit sessions after the first offset"
NEGATIVE = "SessionStore.list raises ValueError naming limit and offset when either is negative"
LISTED = "SessionStore.list returns each session's current metadata, as load returns it"
ISOLATION = "SessionStore keeps no reference to objects given to save or returned by load and list"
IDS = "SessionStore: every method rejects an invalid id with InvalidSessionIdError"
DELETE = "SessionStore.delete removes the session and returns True only when it existed"
CASE = (
    "SessionStore: ids that differ only in case are two sessions, never one (a file store "
    "where names compare without case refuses the second with CaseClashError, and where case "
    "is not kept either, capitals with CaseNotKeptError)"
)


class StoreReadContract(StoreFixture):
    """``list`` and its pages, ``load``, ``delete``, isolation, invalid ids and their case."""

    def test_empty_store(self, store: SessionStore) -> None:
        assert run(store.list()) == [], f"{ORDER}: a new store lists nothing"
        assert run(store.load("a")) is None, "SessionStore.load returns None for an absent session"
        assert run(store.delete("a")) is False, f"{DELETE}: delete of an absent session"

    def test_list_most_recent_first(self, store: SessionStore) -> None:
        for session_id in ["b", "a", "c"]:
            run(store.save(session_id, []))
        assert [m.id for m in run(store.list())] == ["c", "a", "b"], f"{ORDER}: after saving b, a, c"
        run(store.save("b", [msg("again")]))
        assert [m.id for m in run(store.list())] == ["b", "c", "a"], f"{ORDER}: after saving b again"

    def test_list_pages(self, store: SessionStore) -> None:
        for index in range(4):
            run(store.save(f"s{index}", []))
        pages: dict[tuple[int | None, int], list[str]] = {
            (2, 0): ["s3", "s2"],
            (2, 3): ["s0"],
            (None, 1): ["s2", "s1", "s0"],
            (0, 0): [],
            (2, 4): [],
            (5, 9): [],
        }
        for (limit, offset), expected in pages.items():
            found = [m.id for m in run(store.list(limit=limit, offset=offset))]
            assert found == expected, f"{PAGES}: limit={limit} offset={offset}"

    def test_list_pages_in_turn_neither_repeat_nor_skip(self, store: SessionStore) -> None:
        for index in range(7):
            run(store.save(f"s{index}", [msg(str(index))]))
        whole = [m.id for m in run(store.list())]
        turned: list[str] = []
        for offset in range(0, 8, 3):
            turned += [m.id for m in run(store.list(limit=3, offset=offset))]
        assert turned == whole, f"{PAGES}: pages of 3 read in turn make the whole list"

    def test_list_shows_what_load_shows(self, store: SessionStore) -> None:
        run(store.save("a", [msg("1")], {"label": "first", "team": "t"}))
        run(store.save("b", [], {"parent_id": "a"}))
        run(store.save("a", [msg("1"), msg("2"), msg("3")], {"label": "second", "model": "m"}))
        run(store.save("b", [msg("x")], {"parent_id": None}))
        listed = run(store.list())
        loaded = [run(store.load(meta.id)) for meta in listed]
        assert [meta.id for meta in listed] == ["b", "a"], f"{ORDER}: after saving a, b, a, b"
        assert listed == [stored.metadata for stored in loaded if stored is not None], (
            f"{LISTED}: after saves changing message_count, label, model and parent_id"
        )

    @pytest.mark.parametrize(("limit", "offset"), [(-1, 0), (2, -1), (None, -3)])
    def test_list_refuses_negative_pages(self, store: SessionStore, limit: int | None, offset: int) -> None:
        run(store.save("a", []))
        with raises(ValueError, NEGATIVE, match=r"(?s)(limit.*offset|offset.*limit)"):
            run(store.list(limit=limit, offset=offset))

    def test_isolation(self, store: SessionStore) -> None:
        messages = [msg("one")]
        metadata: dict[str, Any] = {"label": "l", "extra": {"list": [1]}}
        run(store.save("a", messages, metadata))
        pristine = copy.deepcopy(run(store.load("a")))  # not what load returned: a store may alias that
        assert pristine is not None, "SessionStore.load returns what save stored: load('a') returned None"
        messages.append(msg("two"))
        messages[0]["content"][0]["text"] = "changed"  # type: ignore[typeddict-unknown-key]
        metadata["extra"]["list"].append(2)
        metadata["label"] = "other"
        loaded = run(store.load("a"))
        assert loaded == pristine, f"{ISOLATION}: changing what was given to save changed the session"
        assert loaded is not None, f"{ISOLATION}: the session is gone"
        loaded.messages.append({**msg("three")})
        loaded.messages[0]["content"].clear()
        assert loaded.metadata.model_extra is not None, "SessionStore.load keeps unknown metadata keys"
        loaded.metadata.model_extra["extra"]["list"].append(3)
        listed = run(store.list())
        listed[0].model_extra["extra"]["list"].append(4)  # type: ignore[index]
        assert run(store.load("a")) == pristine, f"{ISOLATION}: changing what load or list returned"
        assert run(store.list())[0] == pristine.metadata, f"{ISOLATION}: list after changes"

    @pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
    def test_invalid_ids_rejected(self, store: SessionStore, bad: Any) -> None:
        with raises(InvalidSessionIdError, f"{IDS}: save({bad!r})"):
            run(store.save(bad, [msg("x")]))
        if bad is not None:  # a None parent_id removes the key
            with raises(InvalidSessionIdError, f"{IDS}: save with parent_id={bad!r}"):
                run(store.save("a", [msg("x")], {"parent_id": bad}))
        for call in (store.load, store.delete):
            with raises(InvalidSessionIdError, f"{IDS}: {call.__name__}({bad!r})"):
                run(call(bad))
        assert run(store.list()) == [], f"{IDS}: a refused save stored something"

    def test_delete(self, store: SessionStore) -> None:
        run(store.save("a", [msg("x")], {"label": "old", "team": "t"}))
        run(store.save("b", []))
        assert run(store.delete("a")) is True, f"{DELETE}: delete of a saved session"
        assert run(store.delete("a")) is False, f"{DELETE}: delete of a deleted session"
        assert run(store.load("a")) is None, f"{DELETE}: load of a deleted session"
        assert [m.id for m in run(store.list())] == ["b"], f"{DELETE}: list after a delete"
        run(store.save("a", []))
        stored = run(store.load("a"))
        assert stored is not None, f"{DELETE}: a deleted id can be saved again"
        assert stored.metadata.message_count == 0, f"{DELETE}: a session saved again starts afresh"
        assert (stored.metadata.label, stored.metadata.model_extra) == (None, {}), (
            f"{DELETE}: a session saved again starts afresh, without the deleted one's metadata"
        )

    def test_delete_fork_and_parent(self, store: SessionStore) -> None:
        run(store.save("p", []))
        run(store.save("c", [], {"parent_id": "p"}))
        run(store.save("g", [], {"parent_id": "c"}))
        assert run(store.delete("c")) is True, f"{DELETE}: delete of a fork"
        assert run(store.delete("p")) is True, f"{DELETE}: delete of a parent"
        assert [m.id for m in run(store.list())] == ["g"], f"{DELETE}: only the deleted sessions go"
        stored = run(store.load("g"))
        assert stored is not None, f"{DELETE}: deleting a parent deleted its fork"
        assert stored.metadata.parent_id == "c", f"{DELETE}: a fork keeps its parent_id"

    def test_ids_differing_only_in_case_are_two_sessions(self, store: SessionStore) -> None:
        ids = ["Alice", "alice"]
        try:
            run(store.save("Alice", [msg("Alice's")]))
        except CaseNotKeptError:  # a disk that does not keep case refuses capitals, keeping nothing
            assert run(store.load("Alice")) is None, f"{CASE}: Alice kept after CaseNotKeptError"
            ids.reverse()
            run(store.save("alice", [msg("alice's")]))
        first, second = ids
        try:
            run(store.save(second, [msg(f"{second}'s")]))
        except CaseClashError:
            both = False
        else:
            both = True
        loaded = run(store.load(first))
        assert loaded is not None, f"{CASE}: load of {first} after a save of {second}"
        assert texts(loaded.messages) == [f"{first}'s"], (
            f"{CASE}: {first}'s messages after a save of {second}"
        )
        listed = sorted(m.id for m in run(store.list()))
        assert listed == (["Alice", "alice"] if both else [first]), f"{CASE}: list"
        if both:
            other = run(store.load(second))
            assert other is not None, f"{CASE}: load of {second}"
            assert (other.metadata.id, texts(other.messages)) == (second, [f"{second}'s"]), (
                f"{CASE}: {second}'s id and messages"
            )
            assert run(store.delete(second)) is True, f"{CASE}: delete of {second}"
            assert run(store.load(first)) is not None, f"{CASE}: load of {first} after a delete of {second}"
