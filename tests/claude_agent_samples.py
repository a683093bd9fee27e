"""What the tests of ClaudeAgentSessionStore write and where: transcript lines, stores
opened afresh (``Backing``), and real stores that record or fail what they are asked."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, cast

from claude_agent_sdk import (
    SessionKey,
    delete_session_via_store,
    fork_session_via_store,
    get_session_info_from_store,
    get_session_messages_from_store,
    get_subagent_messages_from_store,
    list_sessions_from_store,
    list_subagents_from_store,
    project_key_for_directory,
    rename_session_via_store,
    tag_session_via_store,
)
from claude_agent_sdk import SessionStore as SdkSessionStore
from claude_agent_sdk.types import SessionStoreEntry

from integration_stores import Opener, reopener
from simulacra_session import (
    FileSessionStore,
    InMemorySessionStore,
    JsonObject,
    Revision,
    SessionMetadata,
    SessionStore,
    StoredSession,
)
from simulacra_session.integrations.claude_agent_sdk import ClaudeAgentSessionStore

__all__ = [
    "KEY",
    "Backing",
    "PlainStore",
    "Reads",
    "ReplyLost",
    "Unlisted",
    "claude",
    "entry",
    "marker",
    "opened",
    "sdk_view",
    "transcript",
]

KEY: SessionKey = {"project_key": "-home-me-project", "session_id": "3f0c1d2e-4b5a-6978-8a9b-0c1d2e3f4a5b"}


def entry(text: str, **extra: Any) -> SessionStoreEntry:
    """A transcript line with a ``uuid``, as most lines the CLI writes carry."""
    return cast(SessionStoreEntry, {"type": "user", "uuid": str(uuid.uuid4()), "text": text, **extra})


def marker(text: str) -> SessionStoreEntry:
    """A transcript line without a ``uuid`` (a title, a tag, a mode marker)."""
    return cast(SessionStoreEntry, {"type": "custom-title", "customTitle": text})


class PlainStore:
    """A store with the four methods ``SessionStore`` requires and nothing more (no append,
    no fork index, no revisions), over a real in-memory store: how a user's own store looks."""

    def __init__(self) -> None:
        self._inner = InMemorySessionStore()

    async def list(self, *, limit: int | None = None, offset: int = 0) -> list[SessionMetadata]:
        return await self._inner.list(limit=limit, offset=offset)

    async def load(self, id: str) -> StoredSession | None:
        return await self._inner.load(id)

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> Revision | None:
        return await self._inner.save(id, messages, metadata)

    async def delete(self, id: str) -> bool:
        return await self._inner.delete(id)


class Backing:
    """Store objects of one kind: ``fresh()`` over new, empty storage; ``reopen()`` a new
    object over the storage ``fresh()`` last made, as a restarted process opens it."""

    def __init__(self, kind: str, tmp_path: Path, tables: ExitStack, stores: AsyncExitStack) -> None:
        self.kind = kind
        self._tmp = tmp_path
        self._tables = tables  # SQL tables, dropped once the stores are closed
        self._stores = stores
        self._made = 0
        self._opener: Opener | None = None
        self._plain = PlainStore()

    @property
    def shares_one_object(self) -> bool:
        """Whether writers share one store object: an in-memory store is its storage, and an
        adapter store checks revisions within its object only."""
        return self.kind in ("memory", "plain", "adapter")

    async def fresh(self) -> SessionStore:
        self._made += 1
        if self.kind == "plain":
            self._plain = PlainStore()
        else:
            root = self._tmp / f"s{self._made}"
            root.mkdir()
            self._opener = self._tables.enter_context(reopener(self.kind, root))
        return await self.reopen()

    async def reopen(self) -> SessionStore:
        if self._opener is None:
            return self._plain
        return await self._stores.enter_async_context(self._opener())


async def claude(backing: Backing) -> ClaudeAgentSessionStore:
    """The adapter over the storage's store, opened afresh."""
    return ClaudeAgentSessionStore(await backing.reopen())


class Reads(InMemorySessionStore):
    """A real in-memory store that records what is read: whole sessions and tails."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.tails: list[int] = []

    async def load(self, id: str) -> StoredSession | None:
        self.loaded.append(id)
        return await super().load(id)

    async def load_tail(self, id: str, count: int, *, end: int | None = None) -> StoredSession | None:
        self.tails.append(count)
        return await super().load_tail(id, count, end=end)


class ReplyLost(InMemorySessionStore):
    """A real in-memory store whose first append of entries lands, then fails, as a
    connection lost before the database's reply would."""

    lost = 0

    async def append(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Any = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        revision = await super().append(id, messages, metadata, expected=expected)
        if messages and not self.lost:
            self.lost += 1
            raise ConnectionError("the reply was lost")
        return revision


class Unlisted(FileSessionStore):
    """A real file store that fails if anyone lists all its sessions."""

    async def list(self, *, limit: int | None = None, offset: int = 0) -> list[SessionMetadata]:
        raise AssertionError("listed every session instead of asking the fork index")


def transcript(session: str, cwd: str) -> list[SessionStoreEntry]:
    """One turn of a transcript as the CLI writes it: prompt and answer, chained by uuid."""
    question = str(uuid.uuid4())
    common = {"sessionId": session, "cwd": cwd, "isSidechain": False, "timestamp": "2026-01-01T00:00:00.000Z"}
    lines: list[dict[str, Any]] = [
        {
            "type": "user",
            "uuid": question,
            "parentUuid": None,
            "message": {"role": "user", "content": "2 + 2?"},
        },
        {
            "type": "assistant",
            "uuid": str(uuid.uuid4()),
            "parentUuid": question,
            "message": {"role": "assistant", "content": [{"type": "text", "text": "4"}]},
        },
    ]
    return [cast(SessionStoreEntry, {**common, **line}) for line in lines]


@asynccontextmanager
async def opened(where: Mapping[str, str]) -> AsyncIterator[SessionStore]:
    """A store over what ``where`` names: ``{"kind": "jsonl"|"json", "root": path}`` or
    ``{"kind": ..., "url": SQLAlchemy URL, "table": name}``, in a test or a process it starts."""
    if where["kind"] in ("jsonl", "json"):
        yield FileSessionStore(where["root"], format="jsonl" if where["kind"] == "jsonl" else "json")
        return
    from simulacra_session.stores.sql import SqlSessionStore

    async with SqlSessionStore(where["url"], table=where["table"]) as store:
        yield store


async def sdk_view(store: Callable[[], Awaitable[SdkSessionStore]], cwd: str) -> list[Any]:
    """What the SDK's store helpers make of a session written, renamed, tagged, forked and
    deleted through ``store`` (a fresh object each step); times and new ids left out."""
    session = "0b5e6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d"
    key: SessionKey = {"project_key": project_key_for_directory(cwd), "session_id": session}
    await (await store()).append(key, transcript(session, cwd))
    sidechain = cast(
        SessionStoreEntry, {**transcript(session, cwd)[0], "isSidechain": True, "agentId": "helper"}
    )
    await (await store()).append({**key, "subpath": "subagents/agent-helper"}, [sidechain])
    await rename_session_via_store(await store(), session, "Sums", directory=cwd)
    await tag_session_via_store(await store(), session, "math", directory=cwd)
    fork = await fork_session_via_store(await store(), session, directory=cwd)
    seen: list[Any] = []
    for info in await list_sessions_from_store(await store(), directory=cwd):
        seen.append(
            (info.session_id == session, info.summary, info.custom_title, info.tag, info.first_prompt)
        )
    found = await get_session_info_from_store(await store(), session, directory=cwd)
    seen.append(None if found is None else (found.summary, found.tag, found.cwd, found.created_at))
    seen.append(
        [m.message for m in await get_session_messages_from_store(await store(), session, directory=cwd)]
    )
    seen.append(await list_subagents_from_store(await store(), session, directory=cwd))
    helper = await get_subagent_messages_from_store(await store(), session, "helper", directory=cwd)
    seen.append([m.message for m in helper])
    await delete_session_via_store(await store(), session, directory=cwd)
    seen.append(
        [
            info.session_id == fork.session_id
            for info in await list_sessions_from_store(await store(), directory=cwd)
        ]
    )
    seen.append(await list_subagents_from_store(await store(), session, directory=cwd))
    return seen
