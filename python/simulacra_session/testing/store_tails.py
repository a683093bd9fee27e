"""Tails and truncation: the optional ``load_tail`` (``TailReadingStore``) and ``truncate``
(``TruncatableStore``), each tested when the store has it, and ``history.read_tail`` and
``history.truncate`` over any store, forks included (they fall back to ``load`` and ``save``
on a store without the capabilities).

Each failure names the contract it checks.
"""

from __future__ import annotations

import pytest

from ..errors import ConflictError, InvalidSessionIdError, SessionNotFoundError
from ..history import read_tail, resolve_history, truncate
from ..models import Revision
from ..protocols import AppendableSessionStore, SessionStore, TailReadingStore, TruncatableStore
from .helpers import BAD_IDS, StoreFixture, msg, raises, run, texts

__all__ = ["StoreTailContract"]

TAIL = "TailReadingStore.load_tail returns the metadata and the own messages [max(0, end - count), end)"
CUT = "TruncatableStore.truncate removes the last count own messages, all or nothing, updated_at advancing"
READ = "history.read_tail returns the metadata and the last count messages of the resolved history"
KEEP = "history.truncate removes the last messages of the resolved history, forks keeping theirs"


def _tailing(store: SessionStore) -> TailReadingStore:
    """The store as a ``TailReadingStore``; the test is skipped when it is not one."""
    if not isinstance(store, TailReadingStore):
        pytest.skip("optional capability: the store has no load_tail() (TailReadingStore)")
    return store


def _cutting(store: SessionStore) -> TruncatableStore:
    """The store as a ``TruncatableStore``; the test is skipped when it is not one."""
    if not isinstance(store, TruncatableStore):
        pytest.skip("optional capability: the store has no truncate() (TruncatableStore)")
    return store


def _words(count: int, prefix: str = "m") -> list[str]:
    return [f"{prefix}{index}" for index in range(count)]


async def _chain(store: SessionStore) -> None:
    """g: g0..g4; p, attached after g2: g0 g1 g2 p0 p1; c, attached after p's 4th: g0 g1 g2 p0 c0."""
    await store.save("g", [msg(text) for text in _words(5, "g")])
    await store.save("p", [msg("p0"), msg("p1")], {"parent_id": "g", "fork_message_count": 3})
    await store.save("c", [msg("c0")], {"parent_id": "p", "fork_message_count": 4})


async def _history(store: SessionStore, session_id: str) -> list[str]:
    resolved = await resolve_history(store, session_id)
    assert resolved is not None, f"{KEEP}: session {session_id} is gone"
    return texts(resolved.messages)


class StoreTailContract(StoreFixture):
    """``load_tail`` and ``truncate`` when the store has them; ``read_tail`` and ``truncate``
    of ``simulacra_session.history`` on every store."""

    def test_load_tail(self, store: SessionStore) -> None:
        tailing = _tailing(store)
        run(tailing.save("a", [msg(text) for text in _words(6)], {"label": "six"}))
        loaded = run(tailing.load("a"))
        cases = {(3, None): _words(6)[3:], (10, None): _words(6), (0, None): [], (2, 4): ["m2", "m3"]}
        cases |= {(3, 60): _words(6)[3:], (4, 2): ["m0", "m1"], (1, 0): []}
        for (count, end), expected in cases.items():
            tail = run(tailing.load_tail("a", count, end=end))
            assert tail is not None, f"{TAIL}: load_tail('a', {count}, end={end}) returned None"
            assert texts(tail.messages) == expected, f"{TAIL}: count={count} end={end}"
            assert loaded is not None, f"{TAIL}: the metadata is load's"
            assert tail.metadata == loaded.metadata, f"{TAIL}: the metadata is load's"
            assert tail.revision == loaded.revision, f"{TAIL}: the revision is load's"
        assert run(tailing.load_tail("absent", 3)) is None, f"{TAIL}: None for an absent session"
        for count, end, name in ((-1, None, "count"), (1, -2, "end")):
            with raises(ValueError, f"{TAIL}: a negative {name} raises ValueError naming it", match=name):
                run(tailing.load_tail("a", count, end=end))
        for bad in BAD_IDS:
            with raises(InvalidSessionIdError, f"{TAIL}: an invalid id is rejected: {bad!r}"):
                run(tailing.load_tail(bad, 1))  # type: ignore[arg-type]

    def test_load_tail_follows_writes(self, store: SessionStore) -> None:
        tailing = _tailing(store)
        run(tailing.save("a", [msg("one"), msg("two")]))
        run(tailing.save("a", [msg("three")]))
        tail = run(tailing.load_tail("a", 2))
        assert tail is not None, f"{TAIL}: after a save"
        assert texts(tail.messages) == ["three"], f"{TAIL}: after a save"
        if isinstance(tailing, AppendableSessionStore):
            run(tailing.append("a", [msg("four"), msg("five")]))
            tail = run(tailing.load_tail("a", 2))
            assert tail is not None, f"{TAIL}: after an append"
            assert texts(tail.messages) == ["four", "five"], f"{TAIL}: after an append"

    def test_truncate(self, store: SessionStore) -> None:
        cutting = _cutting(store)
        run(cutting.save("a", [msg(text) for text in _words(5)], {"label": "five", "team": "t"}))
        before = run(cutting.load("a"))
        revision = run(cutting.truncate("a", 2))
        after = run(cutting.load("a"))
        assert after is not None, f"{CUT}: the first 3 remain"
        assert texts(after.messages) == _words(3), f"{CUT}: the first 3 remain"
        assert before is not None, f"{CUT}: message_count"
        assert after.metadata.message_count == 3, f"{CUT}: message_count"
        assert after.metadata.updated > before.metadata.updated, f"{CUT}: updated_at advances"
        assert after.metadata.created_at == before.metadata.created_at, f"{CUT}: created_at is kept"
        assert (after.metadata.label, after.metadata.model_extra) == ("five", {"team": "t"}), (
            f"{CUT}: the metadata is kept"
        )
        assert revision == after.revision, f"{CUT}: returns the revision load gives"
        assert isinstance(run(cutting.truncate("a", 0)), Revision), f"{CUT}: count 0 is a write too"
        kept = run(cutting.load("a"))
        assert kept is not None, f"{CUT}: count 0 removes nothing"
        assert texts(kept.messages) == _words(3), f"{CUT}: count 0 removes nothing"
        run(cutting.truncate("a", 3))
        emptied = run(cutting.load("a"))
        assert emptied is not None, f"{CUT}: every message may go"
        assert emptied.messages == [], f"{CUT}: every message may go"

    def test_truncate_refuses_and_writes_nothing(self, store: SessionStore) -> None:
        cutting = _cutting(store)
        run(cutting.save("a", [msg("one"), msg("two")]))
        before = run(cutting.load("a"))
        assert before is not None, f"{CUT}: load('a') after save"
        with raises(
            ValueError, f"{CUT}: more than message_count raises ValueError naming both", match="3.*2"
        ):
            run(cutting.truncate("a", 3))
        with raises(ValueError, f"{CUT}: a negative count raises ValueError naming it", match="count"):
            run(cutting.truncate("a", -1))
        stale = Revision(2, "2000-01-01T00:00:00.000000Z")
        with raises(ConflictError, f"{CUT}: a stale expected revision raises ConflictError"):
            run(cutting.truncate("a", 1, expected=stale))
        assert run(cutting.load("a")) == before, f"{CUT}: a refused truncate writes nothing"
        with raises(SessionNotFoundError, f"{CUT}: an absent session raises SessionNotFoundError"):
            run(cutting.truncate("absent", 0))
        assert run(cutting.load("absent")) is None, f"{CUT}: truncating an absent session creates nothing"
        assert [meta.id for meta in run(cutting.list())] == ["a"], f"{CUT}: nor lists one"
        for bad in BAD_IDS:
            with raises(InvalidSessionIdError, f"{CUT}: an invalid id is rejected: {bad!r}"):
                run(cutting.truncate(bad, 0))  # type: ignore[arg-type]
        run(cutting.truncate("a", 1, expected=before.revision))
        after = run(cutting.load("a"))
        assert after is not None, f"{CUT}: at the expected revision"
        assert texts(after.messages) == ["one"], f"{CUT}: at the expected revision"

    def test_truncate_then_write(self, store: SessionStore) -> None:
        cutting = _cutting(store)
        run(cutting.save("a", [msg(text) for text in _words(4)]))
        run(cutting.truncate("a", 2))
        if isinstance(cutting, AppendableSessionStore):
            run(cutting.append("a", [msg("x"), msg("y"), msg("z")]))
            expected = ["m0", "m1", "x", "y", "z"]
        else:
            run(cutting.save("a", [msg("m0"), msg("m1"), msg("x"), msg("y"), msg("z")]))
            expected = ["m0", "m1", "x", "y", "z"]
        stored = run(cutting.load("a"))
        assert stored is not None, f"{CUT}: writes after it continue"
        assert texts(stored.messages) == expected, f"{CUT}: writes after it continue"

    def test_read_tail_resolves_the_fork_chain(self, store: SessionStore) -> None:
        run(_chain(store))
        history = run(_history(store, "c"))
        for count in range(len(history) + 2):
            tail = run(read_tail(store, "c", count))
            assert tail is not None, f"{READ}: read_tail('c', {count}) returned None"
            wanted = history[max(0, len(history) - count) :] if count else []
            assert texts(tail.messages) == wanted, f"{READ}: count={count}, through parent and grandparent"
            assert tail.metadata.id == "c", f"{READ}: the session's own metadata"
        assert run(read_tail(store, "absent", 2)) is None, f"{READ}: None for an absent session"
        with raises(ValueError, f"{READ}: a negative count raises ValueError naming it", match="count"):
            run(read_tail(store, "c", -1))

    def test_read_tail_of_original_library_forks(self, store: SessionStore) -> None:
        run(store.save("p", [msg("a", id="x1"), msg("b", id="x2"), msg("c", id="x3")]))
        run(store.save("f", [msg("own")], {"parent_id": "p", "fork_message_id": "x2"}))
        tail = run(read_tail(store, "f", 2))
        assert tail is not None, f"{READ}: cut after fork_message_id"
        assert texts(tail.messages) == ["b", "own"], f"{READ}: cut after fork_message_id"

    def test_truncate_keeps_the_forks_history(self, store: SessionStore) -> None:
        run(_chain(store))
        before = {session: run(_history(store, session)) for session in ("g", "p", "c")}
        run(truncate(store, "p", 1))  # p1 goes: c inherits p's first 4, kept
        assert run(_history(store, "p")) == before["p"][:-1], f"{KEEP}: p lost its last message"
        assert run(_history(store, "c")) == before["c"], f"{KEEP}: c's history is unchanged"
        run(truncate(store, "p", 1))  # p0 goes: c inherited it, so it keeps it first
        assert run(_history(store, "p")) == before["p"][:-2], f"{KEEP}: p lost its own messages"
        assert run(_history(store, "c")) == before["c"], f"{KEEP}: c kept the message it inherited"
        fork = run(store.load("c"))
        assert fork is not None, f"{KEEP}: c is detached, holding its history"
        assert fork.metadata.detached, f"{KEEP}: c is detached, holding its history"
        tail = run(read_tail(store, "p", 2))
        assert tail is not None, f"{READ}: read_tail('p', 2) returned None"
        run(truncate(store, "p", 2, expected=tail.revision))  # into what p inherits from g
        parent = run(store.load("p"))
        assert parent is not None, f"{KEEP}: p is rewritten detached"
        assert parent.metadata.detached, f"{KEEP}: p is rewritten detached"
        assert texts(parent.messages) == ["g0"], f"{KEEP}: p holds the rest of its resolved history"
        assert run(_history(store, "g")) == before["g"], f"{KEEP}: the grandparent is untouched"

    def test_truncate_refuses(self, store: SessionStore) -> None:
        run(_chain(store))
        tail = run(read_tail(store, "c", 1))
        assert tail is not None, f"{READ}: read_tail('c', 1) returned None"
        with raises(
            ValueError, f"{KEEP}: beyond the resolved history raises ValueError naming both", match="6.*5"
        ):
            run(truncate(store, "c", 6))
        with raises(ValueError, f"{KEEP}: a negative count raises ValueError naming it", match="count"):
            run(truncate(store, "c", -1))
        with raises(SessionNotFoundError, f"{KEEP}: an absent session raises SessionNotFoundError"):
            run(truncate(store, "absent", 1))
        run(store.save("c", [msg("c0"), msg("c1")]))
        with raises(ConflictError, f"{KEEP}: a session that moved on since expected raises ConflictError"):
            run(truncate(store, "c", 1, expected=tail.revision))
        assert run(_history(store, "c"))[-2:] == ["c0", "c1"], f"{KEEP}: a refused truncate removes nothing"
        run(truncate(store, "c", 2))
        assert run(_history(store, "c")) == ["g0", "g1", "g2", "p0"], f"{KEEP}: without expected it removes"
