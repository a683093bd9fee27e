"""Claude Agent SDK transcripts in a simulacra-session store, read back through the SDK.

Run it: ``python examples/claude_agent_sdk_example.py`` keeps its sessions in
``./claude-sessions`` (a FileSessionStore). A real agent passes the store to the SDK,
which mirrors every transcript entry into it as the CLI writes them::

    options = ClaudeAgentOptions(session_store=ClaudeAgentSessionStore(store))

This example needs no CLI and no network: it appends one turn of entries as the SDK's
mirror does (a batch retried after a failure, a subagent's transcript), then reads,
renames, forks and deletes through the SDK's own store helpers. Each run adds a turn to
the same session, so a second run continues the conversation the first one stored.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any, cast

from claude_agent_sdk import (
    SessionKey,
    delete_session_via_store,
    fork_session_via_store,
    get_session_messages_from_store,
    list_sessions_from_store,
    list_subagents_from_store,
    project_key_for_directory,
    rename_session_via_store,
)
from claude_agent_sdk.types import SessionStoreEntry

from simulacra_session import FileSessionStore
from simulacra_session.integrations.claude_agent_sdk import ClaudeAgentSessionStore

SESSION = "6f1c2a9e-5b7d-4e3f-9a1b-2c3d4e5f6a7b"  # the SDK's session ids are UUIDs


def entry(kind: str, text: str, parent: str | None, **extra: Any) -> SessionStoreEntry:
    """A transcript line as the CLI writes it (the SDK passes them through as they are)."""
    line = {
        "type": kind,
        "uuid": str(uuid.uuid4()),
        "parentUuid": parent,
        "sessionId": SESSION,
        "timestamp": "2026-01-01T00:00:00.000Z",
        "cwd": os.getcwd(),
        "isSidechain": False,
        "message": {"role": kind, "content": [{"type": "text", "text": text}]},
        **extra,
    }
    return cast(SessionStoreEntry, line)  # the SDK's type names only three of the keys


async def main() -> None:
    store = ClaudeAgentSessionStore(FileSessionStore("claude-sessions"))
    key: SessionKey = {"project_key": project_key_for_directory(os.getcwd()), "session_id": SESSION}

    # one turn, as the SDK's transcript mirror appends it: the prompt continues the last entry
    turns = [line for line in await store.load(key) or [] if line["type"] in ("user", "assistant")]
    question = entry("user", "What is 2 + 2?", turns[-1]["uuid"] if turns else None)
    answer = entry("assistant", "4", question["uuid"])
    await store.append(key, [question, answer])
    await store.append(key, [question, answer])  # a retried batch: its entries are stored once
    helper = entry("user", "check the sum", None, isSidechain=True, agentId="checker")
    await store.append({**key, "subpath": "subagents/agent-checker"}, [helper])

    # read it back the way the SDK does, from the store alone
    messages = await get_session_messages_from_store(store, SESSION)
    print(f"{len(messages)} messages; last: {messages[-1].message['content'][0]['text']!r}")
    print("subagents:", await list_subagents_from_store(store, SESSION))
    await rename_session_via_store(store, SESSION, "Arithmetic")
    fork = await fork_session_via_store(store, SESSION, title="Arithmetic, again")
    for info in await list_sessions_from_store(store):
        print(f"{info.session_id}: {info.summary} (first prompt {info.first_prompt!r})")
    await delete_session_via_store(store, fork.session_id)  # the fork goes, with its subagents
    print(f"{len(await list_sessions_from_store(store))} session(s) after deleting the fork")


if __name__ == "__main__":
    asyncio.run(main())
