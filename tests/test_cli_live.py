"""The command on a store in use: ``rename`` of a session an agent is writing meanwhile reads it
again and sets the label, and ``delete`` of a parent whose fork an agent is writing reads the
fork again to write what it inherits into it, rather than failing with the conflict the first
read ran into; the agent's messages all stay."""

from __future__ import annotations

import argparse
from pathlib import Path

from simulacra_session import FileSessionStore
from simulacra_session.cli.browse import _delete, _rename
from simulacra_session.models import StoredSession


class _Busy(FileSessionStore):
    """A store whose session ``busy_id`` another writer (a second store on the same directory:
    an agent's process) appends to right after each of its first ``busy`` loads, before the
    command saves what it read."""

    def __init__(self, root: Path, busy: int, busy_id: str = "w") -> None:
        super().__init__(root)
        self.agent = FileSessionStore(root)
        self.busy = busy
        self.busy_id = busy_id

    async def load(self, id: str) -> StoredSession | None:
        stored = await super().load(id)
        if self.busy and id == self.busy_id:
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


async def test_a_delete_racing_a_writer_of_a_fork_keeps_the_forks_history(tmp_path: Path) -> None:
    store = _Busy(tmp_path, busy=2, busy_id="fork")
    await store.agent.save("root", [{"role": "user", "content": "r1"}, {"role": "user", "content": "r2"}])
    await store.agent.save(
        "fork", [{"role": "user", "content": "f1"}], {"parent_id": "root", "fork_message_count": 2}
    )
    assert await _delete(store, argparse.Namespace(id="root", yes=True)) == 0
    reader = FileSessionStore(tmp_path)
    assert await reader.load("root") is None
    fork = await reader.load("fork")
    assert fork is not None
    assert fork.metadata.detached is True
    assert [message["content"] for message in fork.messages] == [
        "r1",
        "r2",
        "f1",
        "meanwhile 1",
        "meanwhile 0",
    ]
