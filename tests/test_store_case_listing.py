"""Listings on a case-insensitive file system (exFAT, mounted: ``case_insensitive_fs``).

``list()`` and ``forks()`` read the root's names, then each file by its name: where names
compare without case, ``Alice``'s name opens ``alice``'s file once ``Alice`` is deleted and
``alice`` made. The names read are confirmed after the files, under the root's shared lock
(which a creator waits for), so no id is ever listed with another id's metadata.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from case_insensitive_fs import case_insensitive_dir, exfat_mount
from simulacra_session import FileSessionStore, _backend
from simulacra_session.stores.file import listing as listing_module
from simulacra_session.stores.file.case import CaseGuard
from simulacra_session.stores.file.listing import Listing

__all__ = ["case_insensitive_dir", "exfat_mount"]  # the fixtures, used by name

FORMATS = ["jsonl", "json"]
SUFFIX = {"jsonl": ".jsonl", "json": ".json"}


def test_a_listing_never_shows_an_id_whose_name_opened_another_ids_file(
    case_insensitive_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``list()`` reads the root's names, then each file by its name: ``Alice`` deleted and
    ``alice`` made in between, ``Alice.jsonl`` opens ``alice``'s journal. ``Alice`` is left
    out (deleted, as the next listing shows), never listed with ``alice``'s metadata."""
    root = case_insensitive_dir
    mine, theirs = FileSessionStore(root), FileSessionStore(root)
    asyncio.run(theirs.save("Alice", [{"role": "user", "content": "Alice's"}]))
    asyncio.run(theirs.save("bob", [{"role": "user", "content": "bob's"}] * 2))
    stamps = _backend.stamps  # what the listing calls
    swapped: list[bool] = []

    def swap_then_stamp(at: str, names: list[str]) -> list[Any]:
        if not swapped:
            swapped.append(True)
            asyncio.run(theirs.delete("Alice"))
            asyncio.run(theirs.save("alice", [{"role": "user", "content": "alice's"}] * 3))
        return stamps(at, names)

    monkeypatch.setattr(listing_module, "stamps", swap_then_stamp)
    listed = asyncio.run(mine.list())
    monkeypatch.undo()
    assert swapped == [True]
    assert [(m.id, m.message_count) for m in listed] == [("bob", 2)]
    assert sorted((m.id, m.message_count) for m in asyncio.run(mine.list())) == [("alice", 3), ("bob", 2)]


@pytest.mark.parametrize("target", FORMATS)
def test_a_session_converted_while_its_name_is_confirmed_stays_listed(
    case_insensitive_dir: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    """Its file read, ``Alice`` is converted before the listing confirms the names it read:
    found under its other name then, it is read there and listed."""
    root = case_insensitive_dir
    source = "json" if target == "jsonl" else "jsonl"
    mine = FileSessionStore(root)
    theirs = FileSessionStore(root, format=source)  # type: ignore[arg-type]
    asyncio.run(theirs.save("Alice", [{"role": "user", "content": "Alice's"}]))
    learn = CaseGuard.compares_without_case
    converted: list[bool] = []

    def convert_then_learn(guard: CaseGuard, names: Any) -> bool:
        if guard is mine._case and not converted:
            converted.append(asyncio.run(theirs.convert("Alice", target)))  # type: ignore[arg-type]
        return learn(guard, names)

    monkeypatch.setattr(CaseGuard, "compares_without_case", convert_then_learn)
    listed = asyncio.run(mine.list())
    monkeypatch.undo()
    assert converted == [True]
    assert [(m.id, m.message_count) for m in listed] == [("Alice", 1)]
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["Alice" + SUFFIX[target]]


def test_a_swap_while_a_converted_session_is_read_again_is_not_seen(
    case_insensitive_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Alice`` converted while its names are confirmed is read again under its other name.
    A first version took the root's lock a second time for that read: ``Alice`` deleted and
    ``alice`` made in between, it listed ``Alice`` with ``alice``'s label. The read is now
    under the same lock as the names, and the other writer's create waits for it: ``Alice``
    is listed as it was, or not at all (deleted), never with ``alice``'s label."""
    root = case_insensitive_dir
    mine, theirs = FileSessionStore(root), FileSessionStore(root, format="json")
    asyncio.run(mine.save("Alice", [{"role": "user", "content": "Alice's"}], {"label": "Alice's label"}))
    asyncio.run(theirs.load("Alice"))
    learn, look_again = CaseGuard.compares_without_case, Listing._look_again
    swap = threading.Thread(target=lambda: asyncio.run(_swap(theirs)))

    def convert_then_learn(guard: CaseGuard, names: Any) -> bool:
        if guard is mine._case and not swap.is_alive():
            asyncio.run(theirs.convert("Alice", "json"))
        return learn(guard, names)

    def swap_then_look(listing: Listing, session_id: str) -> Any:
        swap.start()
        swap.join(2)  # waits for the root's lock (now); a first version let it through
        return look_again(listing, session_id)

    monkeypatch.setattr(CaseGuard, "compares_without_case", convert_then_learn)
    monkeypatch.setattr(Listing, "_look_again", swap_then_look)
    listed = asyncio.run(mine.list())
    monkeypatch.undo()
    swap.join(30)
    assert [(m.id, m.label) for m in listed] in ([], [("Alice", "Alice's label")])  # deleted, or not yet
    assert [(m.id, m.label) for m in asyncio.run(mine.list())] == [("alice", "alice's label")]


async def _swap(store: FileSessionStore) -> None:
    assert await store.delete("Alice")
    await store.save("alice", [{"role": "user", "content": "alice's"}], {"label": "alice's label"})
