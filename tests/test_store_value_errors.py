"""A message (or metadata) value JSON cannot hold is refused by every store with a
``SerializationError`` naming the session as well as the value's path in it (before, only the
path: a caller writing several sessions could not tell whose it was), on a save, an append
(the path counting the messages stored before) and a restore; nothing is written."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from integration_stores import KINDS, reopener
from simulacra_session import SerializationError
from simulacra_session.models import SessionMetadata
from simulacra_session.protocols import AppendableSessionStore, RestorableSessionStore, SessionStore
from simulacra_session.testing import msg, run, texts

STAMP = "2025-01-02T03:04:05.678Z"
BAD = {"role": "user", "content": ["fine", datetime(2025, 1, 2, tzinfo=timezone.utc)]}


def _refused(session_id: str, index: int) -> pytest.RaisesExc[SerializationError]:
    """The error of ``BAD`` as the message ``index`` of session ``session_id``."""
    where = re.escape(f"at $.messages[{index}].content[1]")
    return pytest.raises(SerializationError, match=rf"^session {session_id}: .*datetime.* {where}$")


async def _check(store: SessionStore) -> None:
    await store.save("kept", [msg("a"), msg("b")])
    with _refused("fresh", 1):
        await store.save("fresh", [msg("a"), BAD])
    if isinstance(store, AppendableSessionStore):
        with _refused("kept", 3):
            await store.append("kept", [msg("c"), BAD])
    if isinstance(store, RestorableSessionStore):
        fields = {"created_at": STAMP, "updated_at": STAMP, "message_count": 1}
        with _refused("restored", 0):
            await store.restore("restored", [BAD], SessionMetadata(id="restored", **fields))
    with pytest.raises(SerializationError, match=r"^session kept: .*datetime.* at \$\.when$"):
        await store.save("kept", [msg("a"), msg("b"), msg("c")], {"when": BAD["content"][1]})
    assert [meta.id for meta in await store.list()] == ["kept"], "nothing else written"
    stored = await store.load("kept")
    assert stored is not None
    assert texts(stored.messages) == ["a", "b"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_value_json_cannot_hold_is_refused_naming_its_session(kind: str, tmp_path: Path) -> None:
    async def body() -> None:
        with reopener(kind, tmp_path) as opener:
            async with opener() as store:
                await _check(store)

    run(body())
