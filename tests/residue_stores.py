"""Factories the residue contract (``simulacra_session.testing.store_residue``) opens in its
writer's process, named ``"residue_stores:<name>"``: kept out of the test modules so that the
writer imports the store and nothing more."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from simulacra_session import FileSessionStore, JsonObject, Revision


def json_file_store(directory: Path) -> FileSessionStore:
    """A file store keeping the original library's ``{id}.json`` documents in ``directory``."""
    return FileSessionStore(directory, format="json")


#: The file store's factory in each of its formats.
FILE_STORES = {
    "jsonl": "simulacra_session.stores.file:FileSessionStore",
    "json": "residue_stores:json_file_store",
}


class LeakyStore(FileSessionStore):
    """A file store whose saves first write a file of their own, removed once the save is
    done: a writer killed meanwhile leaves it, and nothing ever sweeps it."""

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        leak = Path(self.root) / f".{id}.{secrets.token_hex(8)}.leak"
        leak.parent.mkdir(parents=True, exist_ok=True)
        leak.write_bytes(b"a copy of the session")
        await asyncio.sleep(0.05)  # a wide window for a kill to land in
        revision = await super().save(id, messages, metadata, expected=expected)
        leak.unlink()
        return revision
