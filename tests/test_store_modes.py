"""Private by default: the file store creates session files 0600 and directories 0700
whatever the umask, or exactly the ``file_mode``/``dir_mode`` it is given."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import simulacra_session.stores.file.index as file_index
from simulacra_session.stores.file import FileSessionStore
from simulacra_session.testing import msg

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


@pytest.fixture(params=[0o000, 0o022, 0o077], ids=["umask000", "umask022", "umask077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process's umask for the test (0o000: the most permissive)."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    """The permission bits of the root and of everything under it."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def exercise(store: FileSessionStore) -> None:
    """Every kind of file and directory the store makes: journals and documents (new, appended,
    rewritten, converted), fork index directories and links."""

    async def main() -> None:
        await store.save("p", [msg("p")])
        await store.append("p", [msg("p2")])
        await store.save("c", [msg("c")], {"parent_id": "p"})
        await store.append("c", [msg("c2")])
        await store.save("c", [msg("c3")], {"parent_id": "p"})
        await store.convert("p", "json")

    asyncio.run(main())


@pytest.mark.parametrize(
    ("options", "file_mode", "dir_mode"),
    [({}, 0o600, 0o700), ({"file_mode": 0o640, "dir_mode": 0o750}, 0o640, 0o750)],
    ids=["default", "group"],
)
def test_modes_are_exact_whatever_the_umask(
    tmp_path: Path, umask: int, options: dict[str, Any], file_mode: int, dir_mode: int
) -> None:
    root = tmp_path / "missing" / "sessions"  # created by the first save, with its parent
    exercise(FileSessionStore(root, **options))
    found = modes(root)
    assert found == {
        ".": dir_mode,
        "p.json": file_mode,
        "c.jsonl": file_mode,
        "p-forks": dir_mode,
        "p-forks/c.jsonl": file_mode,
    }
    assert stat.S_IMODE((tmp_path / "missing").stat().st_mode) == 0o777 & ~umask  # not the store's


def test_the_no_hard_links_marker(tmp_path: Path, umask: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_index, "link_fork", lambda *args: False)
    exercise(FileSessionStore(tmp_path / "sessions", file_mode=0o660))
    assert modes(tmp_path / "sessions")[".no-hard-links"] == 0o660


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("file_mode", 0o1600),  # beyond permission bits
        ("file_mode", 0o400),  # the store could not write its own files
        ("file_mode", -1),
        ("file_mode", True),
        ("file_mode", "0o600"),
        ("dir_mode", 0o600),  # nor enter its directories
        ("dir_mode", 0o7700),
        ("dir_mode", 1.5),
    ],
)
def test_a_bad_mode_is_refused_naming_it(tmp_path: Path, option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option) as caught:
        FileSessionStore(tmp_path, **{option: value})
    shown = f"{value:#o}" if type(value) is int else repr(value)
    assert shown in str(caught.value)
    assert list(tmp_path.iterdir()) == []
