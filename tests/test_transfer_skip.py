"""``on_conflict="skip"`` keeps the target's session: a fork that inherits from it, written
attached, would take the target's history for its own where the target's session is another
conversation under the same id. Such a fork is passed over with a warning (its forks too), as
the forks of a session the target refused are; where the target's session is the one the
source holds (an interrupted run resumed), the fork is written attached, as it was."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from simulacra_session import FileSessionStore
from simulacra_session.history import resolve_history
from simulacra_session.protocols import SessionStore
from simulacra_session.transfer import copy_sessions, export_sessions, import_sessions


async def _source(root: Path) -> FileSessionStore:
    store = FileSessionStore(root)
    await store.save(
        "main", [{"role": "user", "content": "A plan"}, {"role": "assistant", "content": "A reply"}]
    )
    await store.save(
        "fork", [{"role": "user", "content": "fork own"}], {"parent_id": "main", "fork_message_count": 2}
    )
    await store.save(
        "deeper", [{"role": "user", "content": "deeper own"}], {"parent_id": "fork", "fork_message_count": 3}
    )
    await store.save("apart", [{"role": "user", "content": "apart"}])
    return store


async def _history(store: SessionStore, session_id: str) -> list[str] | None:
    resolved = await resolve_history(store, session_id)
    return None if resolved is None else [message["content"] for message in resolved.messages]


@pytest.mark.parametrize("how", ["copy", "import"])
async def test_a_fork_of_a_kept_session_that_differs_is_passed_over(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    source = await _source(tmp_path / "a")
    target = FileSessionStore(tmp_path / "b")
    await target.save(
        "main", [{"role": "user", "content": "B other"}, {"role": "assistant", "content": "B reply"}]
    )
    with caplog.at_level(logging.WARNING, logger="simulacra_session"):
        if how == "copy":
            result = await copy_sessions(source, target, on_conflict="skip")
        else:
            out = io.BytesIO()
            await export_sessions(source, out)
            out.seek(0)
            result = await import_sessions(target, out, on_conflict="skip")
    assert (result.written, result.skipped, result.passed_over) == (1, 3, 2)  # main is there
    assert await _history(target, "main") == ["B other", "B reply"]
    assert await target.load("fork") is None, "it would have inherited B's conversation"
    assert await target.load("deeper") is None
    assert await _history(target, "apart") == ["apart"]
    assert "skipping session fork: it inherits from session main" in caplog.text


@pytest.mark.parametrize("how", ["copy", "import"])
async def test_a_resumed_run_writes_the_forks_attached(tmp_path: Path, how: str) -> None:
    source = await _source(tmp_path / "a")
    target = FileSessionStore(tmp_path / "b")
    await copy_sessions(source, target, ["main"])  # what an interrupted run wrote
    if how == "copy":
        result = await copy_sessions(source, target, on_conflict="skip")
    else:
        out = io.BytesIO()
        await export_sessions(source, out)
        out.seek(0)
        result = await import_sessions(target, out, on_conflict="skip")
    assert (result.written, result.skipped, result.passed_over) == (3, 1, 0)
    for session_id in ("main", "fork", "deeper", "apart"):
        assert await _history(target, session_id) == await _history(source, session_id)
    fork = await target.load("fork")
    assert fork is not None
    assert not fork.metadata.detached


@pytest.mark.parametrize("how", ["copy", "import"])
async def test_replacing_a_session_keeps_the_history_of_the_targets_own_forks(
    tmp_path: Path, how: str
) -> None:
    """``"replace"`` overwrites the target's session; its forks that only the target holds keep
    the history they had (written into them, detached, as a delete does): they took the
    replacing session's messages for what they inherit."""
    source = await _source(tmp_path / "a")
    target = FileSessionStore(tmp_path / "b")
    await target.save(
        "main", [{"role": "user", "content": "B other"}, {"role": "assistant", "content": "B reply"}]
    )
    await target.save(
        "bfork", [{"role": "user", "content": "bfork own"}], {"parent_id": "main", "fork_message_count": 2}
    )
    if how == "copy":
        result = await copy_sessions(source, target, on_conflict="replace")
    else:
        out = io.BytesIO()
        await export_sessions(source, out)
        out.seek(0)
        result = await import_sessions(target, out, on_conflict="replace")
    assert (result.written, result.replaced) == (3, 1)
    assert await _history(target, "bfork") == ["B other", "B reply", "bfork own"]
    for session_id in ("main", "fork", "deeper", "apart"):
        assert await _history(target, session_id) == await _history(source, session_id)
    again = await copy_sessions(source, target, on_conflict="replace")  # the same again: nothing to keep
    assert again.replaced == 4
    fork = await target.load("fork")
    assert fork is not None
    assert not fork.metadata.detached
