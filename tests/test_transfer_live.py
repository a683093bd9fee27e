"""Moving a store in use: a session another process deletes while a whole-store export or copy
runs is left out, as if deleted before it began, never a failure of the whole run; the forks
it leaves keep the history the delete wrote into them."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from session_samples import populate
from simulacra_session import FileSessionStore, InMemorySessionStore, SessionNotFoundError
from simulacra_session.history import resolve_history
from simulacra_session.protocols import SessionStore
from simulacra_session.transfer import Progress, copy_sessions, export_sessions, import_sessions


def _deleting(root: Path, session_id: str) -> Progress:
    """A progress callback that, once the first session is done, has another process delete
    ``session_id`` through the command (its attached forks detached first, as it does)."""

    def progress(done: int, total: int | None) -> None:
        if done == 1:
            command = [
                sys.executable,
                "-m",
                "simulacra_session",
                "--store",
                str(root),
                "delete",
                "-y",
                session_id,
            ]
            subprocess.run(command, check=True, capture_output=True, timeout=300)

    return progress


async def _histories(store: SessionStore) -> dict[str, list[str]]:
    """Each session's history, as message ids, inherited messages included."""
    found = {}
    for meta in await store.list():
        resolved = await resolve_history(store, meta.id)
        assert resolved is not None
        found[meta.id] = [message["id"] for message in resolved.messages]
    return found


_AFTER = {  # root deleted: its forks keep what they inherited from it
    "plain": ["p1", "p2", "p3"],
    "detached": ["r1", "d1"],
    "fork": ["r1", "r2", "f1"],
    "grandchild": ["r1", "r2", "f1", "g1"],
}


async def test_a_session_deleted_during_a_whole_store_export_is_left_out(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path / "s")
    await populate(store)
    left_out: list[str] = []
    out = io.BytesIO()
    count = await export_sessions(
        store,
        out,
        progress=_deleting(tmp_path / "s", "root"),
        on_unreadable=lambda sid, _: left_out.append(sid),
    )
    assert (count, left_out) == (4, [])
    out.seek(0)
    target = InMemorySessionStore()
    assert (await import_sessions(target, out)).written == 4
    assert await _histories(target) == _AFTER
    assert [meta.id for meta in await target.list()] == [meta.id for meta in await store.list()]


async def test_a_session_deleted_during_a_copy_is_left_out(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path / "s")
    await populate(store)
    target = InMemorySessionStore()
    result = await copy_sessions(store, target, progress=_deleting(tmp_path / "s", "root"))
    assert result.written == 4
    assert await _histories(target) == _AFTER
    assert await _histories(target) == await _histories(store)


async def test_a_session_asked_for_by_name_and_deleted_meanwhile_is_an_error(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path / "s")
    await populate(store)
    with pytest.raises(SessionNotFoundError, match="session not found: root"):
        await copy_sessions(
            store, InMemorySessionStore(), ["plain", "root"], progress=_deleting(tmp_path / "s", "root")
        )
