"""Peers measured beside simulacra-session in the benchmarks.

``OriginalFileStore`` ports the original TypeScript library's ``FileSessionStore`` (json
format) line for line: ``save`` reads and parses the whole file, merges the metadata, writes
it back pretty-printed with a plain write (no temp file, no fsync), then redoes the fork
link; ``list`` reads and parses every ``{id}.json`` file whole to take its metadata.

``LangGraphThread`` drives LangGraph's ``SqliteSaver`` the way the Pregel loop does for a
graph whose state is a message list: one checkpoint per step, holding the whole list.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from datetime import datetime, timezone
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import LATEST_VERSION, ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.sqlite import SqliteSaver

__all__ = ["LangGraphThread", "OriginalFileStore", "sqlite_durability"]


def sqlite_durability(conn: sqlite3.Connection) -> dict[str, str]:
    """A SQLite connection's durability settings, for a benchmark's ``extra_info``.

    ``synchronous`` is per connection; neither SQLite peer sets it, so a fresh connection
    to the same file reports what the peer's own connections use.
    """
    (journal_mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    (synchronous,) = conn.execute("PRAGMA synchronous").fetchone()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {"sqlite": sqlite3.sqlite_version, "journal_mode": journal_mode, "synchronous": names[synchronous]}


class OriginalFileStore:
    """The original library's file store, as its source does it, in Python."""

    def __init__(self, root: str) -> None:
        self._root = root

    def _load(self, session_id: str) -> dict[str, Any] | None:
        try:
            with open(os.path.join(self._root, f"{session_id}.json"), encoding="utf-8") as file:
                data: dict[str, Any] = json.load(file)
        except (OSError, ValueError):
            return None
        return {"metadata": {"id": session_id, **data["metadata"]}, "messages": data["messages"]}

    def _read_session(self, path: str, session_id: str) -> dict[str, Any] | None:
        try:
            with open(path, encoding="utf-8") as file:
                data: dict[str, Any] = json.load(file)
            return {"id": session_id, **data["metadata"]}
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def _list(self) -> list[dict[str, Any]]:
        os.makedirs(self._root, exist_ok=True)
        sessions = []
        with os.scandir(self._root) as entries:  # readdir(root, { withFileTypes: true })
            for entry in entries:
                if not entry.is_file(follow_symlinks=False) or not entry.name.endswith(".json"):
                    continue
                path = os.path.join(self._root, entry.name)
                session = self._read_session(path, entry.name[: -len(".json")])
                if session:
                    sessions.append(session)
        sessions.sort(key=lambda session: session["updated_at"], reverse=True)  # stable, like Array.sort
        return sessions

    def _save(self, session_id: str, messages: list[Any], metadata: dict[str, Any] | None) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        os.makedirs(self._root, exist_ok=True)
        existing = self._load(session_id)
        existing_metadata = existing["metadata"] if existing else {}
        parent_id = (metadata or {}).get("parent_id") or existing_metadata.get("parent_id")
        merged = {
            **existing_metadata,
            "created_at": existing_metadata.get("created_at", now),
            "updated_at": now,
            "message_count": len(messages),
            **(metadata or {}),
        }
        merged.pop("id", None)
        path = os.path.join(self._root, f"{session_id}.json")
        with open(path, "w", encoding="utf-8") as file:
            file.write(json.dumps({"metadata": merged, "messages": messages}, indent=2, ensure_ascii=False))
        if parent_id:
            fork_dir = os.path.join(self._root, f"{parent_id}-forks")
            os.makedirs(fork_dir, exist_ok=True)
            link = os.path.join(fork_dir, f"{session_id}.json")
            with contextlib.suppress(OSError):  # "doesn't exist yet"
                os.unlink(link)
            with contextlib.suppress(OSError):  # "hard links can fail across filesystems"
                os.link(path, link)

    async def save(
        self, session_id: str, messages: list[Any], metadata: dict[str, Any] | None = None
    ) -> None:
        """Save like the original: the whole session, every time."""
        await asyncio.to_thread(self._save, session_id, list(messages), metadata)

    async def list(self) -> list[dict[str, Any]]:
        """List like the original: every session file read and parsed whole, newest first."""
        return await asyncio.to_thread(self._list)


class LangGraphThread:
    """One LangGraph thread whose state is a list of message dicts, on ``SqliteSaver``.

    Each ``append`` is one Pregel step: the ``messages`` channel gets a new value (an
    appending reducer returns a new list) and a new version, and the step's checkpoint,
    holding the whole list in ``channel_values``, is ``put`` with that version in
    ``new_versions``, its parent being the previous checkpoint. This is LangGraph's cheaper
    case: ``MessagesState``'s ``add_messages`` would turn the dicts into LangChain message
    objects, which ``put`` serializes more slowly.
    """

    def __init__(self, saver: SqliteSaver, thread_id: str) -> None:
        self._saver = saver
        self._config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        self._messages: list[Any] = []
        self._version: str | None = None
        self._step = -1

    @property
    def config(self) -> RunnableConfig:
        """The config naming the thread's latest checkpoint."""
        return self._config

    def append(self, messages: list[Any]) -> None:
        """Add messages to the state and put the step's checkpoint (durable when it returns)."""
        self._messages = [*self._messages, *messages]
        version = self._saver.get_next_version(self._version, None)
        seen: dict[str, ChannelVersions] = {}
        if self._version is not None:
            seen["agent"] = {"messages": self._version}
        checkpoint: Checkpoint = {
            "v": LATEST_VERSION,
            "id": str(uuid6(clock_seq=self._step)),
            "ts": datetime.now(timezone.utc).isoformat(),
            "channel_values": {"messages": self._messages},
            "channel_versions": {"messages": version},
            "versions_seen": seen,
            "updated_channels": ["messages"],
        }
        metadata: CheckpointMetadata = {
            "source": "input" if self._step < 0 else "loop",
            "step": self._step,
            "parents": {},
        }
        self._config = self._saver.put(self._config, checkpoint, metadata, {"messages": version})
        self._version = version
        self._step += 1
