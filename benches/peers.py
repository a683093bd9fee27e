"""Peers measured beside simulacra-session in the benchmarks.

``OriginalFileStore`` ports the original TypeScript library's ``FileSessionStore.save``
(json format) line for line: read and parse the whole file, merge the metadata, write it
back pretty-printed with a plain write (no temp file, no fsync), then redo the fork link.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from datetime import datetime, timezone
from typing import Any

__all__ = ["OriginalFileStore"]


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
