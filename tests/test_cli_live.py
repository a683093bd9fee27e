"""The command on a store in use: ``rename`` of a session an agent is writing meanwhile reads it
again and sets the label, rather than failing with the conflict its first read ran into; the
agent's messages all stay."""

from __future__ import annotations

import argparse
from pathlib import Path

from simulacra_session import FileSessionStore
from simulacra_session.cli.browse import _rename
from simulacra_session.models import StoredSession


class _Busy(FileSessionStore):
    """A store whose session another writer (a second store on the same directory: an agent's
    process) appends to right after each of the first ``busy`` loads, before the label is saved."""

    def __init__(self, root: Path, busy: int) -> None:
        super().__init__(root)
        self.agent = FileSessionStore(root)
        self.busy = busy

    async def load(self, id: str) -> StoredSession | None:
        stored = await super().load(id)
        if self.busy:
            self.busy -= 1
            await self.agent.append(id, [{"role": "assistant", "content": f"meanwhile {self.busy}"}])
        return stored


async def test_a_rename_racing_a_writer_reads_again_and_keeps_its_messages(tmp_path: Path) -> None:
    store = _Busy(tmp_path, busy=3)
    await store.agent.save("w", [{"role": "user", "content": "start"}])
    assert await _rename(store, argparse.Namespace(id="w", label="renamed")) == 0
    stored = await FileSessionStore(tmp_path).load("w")
    assert stored is not None
    assert stored.metadata.label == "renamed"
    assert [message["content"] for message in stored.messages] == [
        "start",
        "meanwhile 2",
        "meanwhile 1",
        "meanwhile 0",
    ]
