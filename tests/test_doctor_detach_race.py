"""``doctor --repair`` detaching a fork whose parent is gone, on the memory and SQL stores,
while another writer appends to the fork between the repair's read and its write: the
append stays. The repair writes through ``restore`` over the revision it read (``expected``),
and reads again when refused; the file store did so already (``tests/test_doctor_live.py``),
the others restored unconditionally and dropped the append."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from simulacra_session import InMemorySessionStore, JsonObject, Revision, SessionMetadata
from simulacra_session.doctor import check_store
from simulacra_session.stores.sql import SqlSessionStore
from simulacra_session.testing import msg, texts


class _Meanwhile:
    """A store whose first ``restore`` of ``fork`` lets another writer append to it first, as a
    process appending between the repair's read and its write would."""

    interleaved = False

    async def restore(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: SessionMetadata,
        *,
        expected: Revision | None = None,
    ) -> None:
        if id == "fork" and not self.interleaved:
            self.interleaved = True
            await self.append("fork", [msg("appended meanwhile")])  # type: ignore[attr-defined]
        await super().restore(id, messages, metadata, expected=expected)  # type: ignore[misc]


class _Memory(_Meanwhile, InMemorySessionStore):
    pass


class _Sql(_Meanwhile, SqlSessionStore):
    pass


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_an_append_between_the_repairs_read_and_write_stays(tmp_path: Path, kind: str) -> None:
    store = _Memory() if kind == "memory" else _Sql(f"sqlite:///{tmp_path / 'sessions.db'}")
    await store.save("parent", [msg("inherited")])
    await store.save("fork", [msg("own")], {"parent_id": "parent", "fork_message_count": 1})
    await store.delete("parent")
    try:
        report = await check_store(store, repair=True)
        assert store.interleaved
        assert [(problem.kind, problem.session_id, problem.repaired) for problem in report.problems] == [
            ("missing_parent", "fork", True)
        ]
        stored = await store.load("fork")
        assert stored is not None
        assert texts(stored.messages) == ["own", "appended meanwhile"]
        assert stored.metadata.detached
        assert (await check_store(store)).ok
    finally:
        if isinstance(store, SqlSessionStore):
            await store.close()
