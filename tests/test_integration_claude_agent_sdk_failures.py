"""ClaudeAgentSessionStore when things go wrong around it: an SDK too old for it names the
version it needs, and a batch whose session another writer deletes on every attempt raises
instead of being dropped."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import claude_agent_sdk
import claude_agent_sdk.types
import pytest
from claude_agent_sdk import SessionKey

from claude_agent_samples import KEY, entry, marker
from simulacra_session import (
    ConflictError,
    InMemorySessionStore,
    JsonObject,
    Revision,
    SessionNotFoundError,
)
from simulacra_session.integrations.claude_agent_sdk import ClaudeAgentSessionStore

ADAPTER = "simulacra_session.integrations.claude_agent_sdk"


@pytest.mark.parametrize(
    ("module", "name"),
    [(claude_agent_sdk, "fold_session_summary"), (claude_agent_sdk.types, "SessionListSubkeysKey")],
)
def test_an_sdk_before_0_1_65_names_the_version_needed(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str
) -> None:
    monkeypatch.delattr(module, name)  # as the SDK was before its session summaries
    monkeypatch.delitem(sys.modules, ADAPTER)  # imported afresh; put back after the test
    with pytest.raises(ImportError) as raised:
        importlib.import_module(ADAPTER)
    said = str(raised.value)
    assert said.startswith("claude-agent-sdk 0.1.65 or later is needed")
    assert f"cannot import name {name!r}" in said
    assert said.endswith("pip install --upgrade 'simulacra-session[claude-agent-sdk]'")


class Vanishing(InMemorySessionStore):
    """A real in-memory store where another writer deletes each session this adapter creates
    (its append of nothing) right after, the first ``times`` times (every time: ``None``)."""

    def __init__(self, times: int | None = None) -> None:
        super().__init__()
        self.times = times
        self.deleted = 0

    async def append(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Any = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        revision = await super().append(id, messages, metadata, expected=expected)
        if not messages and (self.times is None or self.deleted < self.times):
            self.deleted += 1
            await self.delete(id)
        return revision


class VanishingUnrevisioned(Vanishing):
    """``Vanishing`` with an ``append`` that neither checks revisions nor gives one."""

    async def append(  # type: ignore[override]
        self, id: str, messages: Sequence[JsonObject], metadata: Any = None
    ) -> None:
        await super().append(id, messages, metadata)


SUBAGENT: SessionKey = {**KEY, "subpath": "subagents/agent-a"}


@pytest.mark.parametrize("key", [KEY, SUBAGENT], ids=["main", "subagent"])
async def test_a_session_deleted_on_every_attempt_raises_naming_it_nothing_written(key: SessionKey) -> None:
    store = Vanishing()
    claude = ClaudeAgentSessionStore(store)
    with pytest.raises(ConflictError) as raised:
        await claude.append(key, [entry("lost"), marker("lost too")])
    assert raised.value.session_id == claude.store_id(key)
    assert raised.value.actual is None
    assert f"session {claude.store_id(key)} changed since it was read" in str(raised.value)
    assert "the store holds no session" in str(raised.value)
    assert store.deleted == 64  # once an attempt
    assert await claude.load(key) is None


async def test_on_a_store_giving_no_revisions_the_session_is_named_not_found() -> None:
    claude = ClaudeAgentSessionStore(VanishingUnrevisioned())
    with pytest.raises(SessionNotFoundError, match=f"session not found: {claude.store_id(KEY)}"):
        await claude.append(KEY, [entry("lost")])


async def test_a_session_deleted_a_few_times_then_kept_gets_the_batch_once() -> None:
    store = Vanishing(times=3)
    claude = ClaudeAgentSessionStore(store)
    batch = [entry("kept"), marker("kept too")]
    await claude.append(KEY, batch)
    await claude.append(KEY, batch)  # a retry: the entry with a uuid is stored once
    assert store.deleted == 3
    assert await claude.load(KEY) == [*batch, batch[1]]
