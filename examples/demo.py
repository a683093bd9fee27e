"""Demo: a conversation auto-saved to ./sessions, reloaded in a new process, forked, listed.

Run it with ``python examples/demo.py`` after ``pip install .``. The first process talks and
exits; a second process (started by the first) reloads the session, forks it and lists
everything in the store.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from simulacra_session import (
    BACKEND,
    AssistantMessage,
    FileSessionStore,
    SessionManager,
    SimpleConversation,
    UserMessage,
)

ROOT = Path("sessions")


def user(text: str) -> UserMessage:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def assistant(text: str) -> AssistantMessage:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


async def talk() -> str:
    """First process: every message is saved as soon as it completes."""
    with SimpleConversation() as conversation:
        async with SessionManager(FileSessionStore(ROOT), conversation) as session:
            session_id = session.start_new()
            conversation.append(user("Plan a three-day trip to Lisbon in spring, on foot and by tram."))
            conversation.append(assistant("Day 1: Alfama and the castle. Day 2: Belém. Day 3: Sintra."))
            conversation.append(user("Swap Sintra for Cascais, please."))
            conversation.append(assistant("Day 3: the train along the coast to Cascais, back by sunset."))
    print(f"[process 1] backend={BACKEND} saved session {session_id} to {ROOT}/{session_id}.jsonl")
    return session_id


async def resume(session_id: str) -> None:
    """Second process: reload the session, fork it, and list the store."""
    store = FileSessionStore(ROOT)
    conversation = SimpleConversation()
    async with SessionManager(store, conversation) as session:
        await session.load(session_id)
        print(f"[process 2] reloaded {session_id}: {len(conversation.messages)} messages")
        fork_id = await session.fork(session_id)
        conversation.append(user("Alternative: what if it rains all three days?"))
        await session.flush()
        print(
            f"[process 2] forked into {fork_id}: {len(conversation.messages)} messages, 1 stored in the fork"
        )
        print("[process 2] sessions, most recent first:")
        for meta in await session.list():
            parent = f" (fork of {meta.parent_id[:8]})" if meta.parent_id else ""
            print(f"  {meta.id}  {meta.message_count:>2} msgs  {meta.updated_at}  {meta.label!r}{parent}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--resume":
        asyncio.run(resume(sys.argv[2]))
        return
    session_id = asyncio.run(talk())
    subprocess.run([sys.executable, __file__, "--resume", session_id], check=True)


if __name__ == "__main__":
    main()
