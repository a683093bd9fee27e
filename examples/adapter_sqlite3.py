"""An ``AdapterSessionStore`` over plain ``sqlite3``: the four functions a data layer provides.

Run it: ``python examples/adapter_sqlite3.py`` saves a session into ``./adapter-sessions.db``
and reads it back. The store does the merging, checks and copying; the adapter moves rows.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

from simulacra_session import AdapterSessionStore, SessionManager, SessionRow, SimpleConversation


class Sqlite3Adapter:
    """Rows in one table; every method is sync (they run on the event loop: keep them quick)."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, metadata TEXT NOT NULL,"
            " messages TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )

    def list(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT id, metadata FROM sessions ORDER BY updated_at DESC")
        return [{"id": id, "metadata": metadata} for id, metadata in rows]  # JSON text is fine

    def load(self, id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT metadata, messages FROM sessions WHERE id = ?", (id,)).fetchone()
        return None if row is None else {"metadata": row[0], "messages": row[1]}

    def upsert(self, row: SessionRow) -> None:
        with self.db:  # one transaction
            self.db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " metadata = excluded.metadata, messages = excluded.messages,"
                " updated_at = excluded.updated_at",
                (row["id"], json.dumps(row["metadata"]), json.dumps(row["messages"]), row["updated_at"]),
            )

    def delete(self, id: str) -> bool:
        with self.db:
            return self.db.execute("DELETE FROM sessions WHERE id = ?", (id,)).rowcount > 0


async def main() -> None:
    store = AdapterSessionStore(Sqlite3Adapter("adapter-sessions.db"))
    conversation = SimpleConversation()
    async with SessionManager(store, conversation) as session:
        session_id = session.start_new()
        conversation.append(
            {"role": "user", "content": [{"type": "text", "text": "Hello through an adapter"}]}
        )
    listed = await store.list()
    print(f"{len(listed)} session(s); newest: {listed[0].label!r}")
    stored = await store.load(session_id)
    assert stored is not None
    print(f"session {session_id}: {len(stored.messages)} message(s)")


if __name__ == "__main__":
    asyncio.run(main())
