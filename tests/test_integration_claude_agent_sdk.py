"""ClaudeAgentSessionStore: the Claude Agent SDK's SessionStore over every bundled store.

The SDK's own conformance kit with every optional method, over memory, file (jsonl, json),
SQLite, PostgreSQL, MariaDB, an adapter store (no append) and a store with the four
required methods only; keys of any shape; retried batches (the SDK's own mirror retrying
a failed append) written once; delete and subkeys through the fork index; the SDK's store
helpers giving over it what they give over the SDK's InMemorySessionStore. Steps open the
store afresh, as a restarted process would.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from claude_agent_sdk import (
    ClaudeAgentOptions,
    SessionKey,
    fold_session_summary,
    list_sessions_from_store,
    project_key_for_directory,
)
from claude_agent_sdk import InMemorySessionStore as SdkMemoryStore
from claude_agent_sdk import SessionStore as SdkSessionStore
from claude_agent_sdk._internal.session_resume import materialize_resume_session
from claude_agent_sdk._internal.transcript_mirror_batcher import TranscriptMirrorBatcher
from claude_agent_sdk.testing import run_session_store_conformance
from claude_agent_sdk.types import SessionStoreEntry

from claude_agent_samples import (
    KEY,
    Backing,
    Reads,
    ReplyLost,
    Unlisted,
    claude,
    entry,
    marker,
    opened,
    sdk_view,
    transcript,
)
from integration_stores import KINDS, Processes, missing_framework
from session_samples import server_url, sql_table
from simulacra_session import (
    InMemorySessionStore,
    InvalidSessionIdError,
)
from simulacra_session.history import resolve_history, save_from
from simulacra_session.ids import validate_session_id
from simulacra_session.integrations.claude_agent_sdk import INTEGRATION, ClaudeAgentSessionStore


@pytest.fixture(params=[*KINDS, "plain"])
async def backing(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backing]:
    with ExitStack() as tables:
        async with AsyncExitStack() as stores:
            yield Backing(request.param, tmp_path, tables, stores)


async def test_the_sdk_conformance_kit_passes_with_every_optional_method(backing: Backing) -> None:
    for method in ("list_sessions", "list_session_summaries", "delete", "list_subkeys"):
        assert method in vars(ClaudeAgentSessionStore)  # the kit runs a method's contracts when defined

    async def fresh() -> SdkSessionStore:
        return ClaudeAgentSessionStore(await backing.fresh())

    await run_session_store_conformance(fresh, skip_optional=frozenset())


NASTY = [
    ("proj", "sess", None),
    ("a/b", "c", None),
    ("a", "b/c", None),
    ("a", "b", "c"),
    ("a/b", "c", "d"),
    ("a", "b/c", "d"),
    ("a", "b", "c/d"),
    ("p", "s", "subagents/agent-1"),
    ("p", "s", "subagents/agent-1/../../x"),
    ("", "", None),
    ("", "s", "subagents/x"),
    ("ünïcødé ✓", "日本語/セッション", "subagents/🤖 agent"),
    ("x" * 3000, "y" * 300, "z" * 1000),
    ("x" * 3000, "y" * 299 + "z", None),
    ("proj", "valid-session-id", None),  # a valid id as it is: still a key of its own
    ("proj", "looks.k0123456789abcdef0123456789abcdef", None),  # as the ids made from keys end
    ('","', '"]', None),
    ('["claude-agent-sdk"', "x", None),
    ("proj", "..", "."),
    ("proj", " spaces \t and\nnewlines ", "tab\there"),
]


def key_of(project: str, session: str, subpath: str | None) -> SessionKey:
    key: SessionKey = {"project_key": project, "session_id": session}
    if subpath is not None:
        key["subpath"] = subpath
    return key


async def test_any_keys_are_sessions_of_their_own_and_come_back_as_given(backing: Backing) -> None:
    keys = [key_of(*parts) for parts in NASTY]
    ids = [ClaudeAgentSessionStore.store_id(key) for key in keys]
    assert len(set(ids)) == len(keys)
    assert all(validate_session_id(id) == id for id in ids)
    projects = {key["project_key"] for key in keys}
    assert not {ClaudeAgentSessionStore.project_id(project) for project in projects} & set(ids)
    await backing.fresh()
    for n, key in enumerate(keys):  # each in a store opened afresh
        await (await claude(backing)).append(key, [entry(f"n{n}", n=n)])
    store = await claude(backing)
    for n, key in enumerate(keys):
        loaded = await store.load(key)
        assert loaded is not None
        assert [line["n"] for line in loaded] == [n]  # type: ignore[typeddict-item]
    for project in projects:
        mains = sorted(
            key["session_id"] for key in keys if key["project_key"] == project and "subpath" not in key
        )
        assert sorted(found["session_id"] for found in await store.list_sessions(project)) == mains
        sessions = {key["session_id"] for key in keys if key["project_key"] == project}
        for session in sessions:
            subpaths = [
                key["subpath"]
                for key in keys
                if (key["project_key"], key["session_id"]) == (project, session) and "subpath" in key
            ]
            parent = {"project_key": project, "session_id": session}
            assert await store.list_subkeys(parent) == sorted(subpaths)  # type: ignore[arg-type]
    stored = await store.store.load(ids[11])
    assert stored is not None
    meta = stored.metadata.to_json_dict()
    assert (meta["integration"], meta["key"]) == (INTEGRATION, dict(keys[11]))


async def test_sessions_form_a_tree_of_detached_children(backing: Backing) -> None:
    store = ClaudeAgentSessionStore(await backing.fresh())
    sub: SessionKey = {**KEY, "subpath": "subagents/agent-1"}
    await store.append(KEY, [entry("main")])
    await store.append(sub, [entry("sub")])
    project, main, child = [
        await store.store.load(id)
        for id in (store.project_id(KEY["project_key"]), store.store_id(KEY), store.store_id(sub))
    ]
    assert project is not None
    assert main is not None
    assert child is not None
    assert (project.messages, project.metadata.parent_id) == ([], None)
    assert project.metadata.to_json_dict()["key"] == {"project_key": KEY["project_key"]}
    assert (main.metadata.parent_id, main.metadata.detached) == (project.metadata.id, True)
    assert (child.metadata.parent_id, child.metadata.detached) == (main.metadata.id, True)
    resolved = await resolve_history(store.store, child.metadata.id)
    assert resolved is not None
    assert (resolved.inherited, resolved.messages) == (0, child.messages)


async def test_a_retried_batch_is_stored_once_entries_without_uuid_as_given(backing: Backing) -> None:
    await backing.fresh()
    a, b, c, d = (entry(text) for text in "abcd")
    batch = [a, marker("title"), b]
    await (await claude(backing)).append(KEY, batch)
    await (await claude(backing)).append(KEY, batch)  # retried after a restart
    await (await claude(backing)).append(KEY, [b, c, c])  # overlapping a stored batch, repeating itself
    await (await claude(backing)).append(KEY, [a, b])  # nothing new: nothing written
    store = await claude(backing)
    assert await store.load(KEY) == [a, marker("title"), b, marker("title"), c]
    for _ in range(5):  # others append, fewer than dedupe_window entries: still recognized
        await store.append(KEY, [entry("other")])
    await store.append(KEY, [c, d])
    loaded = await store.load(KEY)
    assert loaded is not None
    assert (loaded[-1], loaded.count(c)) == (d, 1)


async def test_a_reimport_from_the_start_is_stored_once_with_no_window(backing: Backing) -> None:
    """The SDK's catch-up re-import replays a transcript from its start: its batches meet their
    earlier copies beyond any window, and an adapter made with ``dedupe_window=None`` (every
    batch checked against the whole transcript) stores none of them again."""
    await backing.fresh()
    transcript = [entry(f"line {n}") for n in range(60)]
    batches = [transcript[start : start + 10] for start in range(0, 60, 10)]
    windowed = ClaudeAgentSessionStore((await claude(backing)).store, dedupe_window=5)
    for batch in batches:
        await windowed.append(KEY, batch)
    whole = ClaudeAgentSessionStore(windowed.store, dedupe_window=None)
    for batch in batches:  # the re-import
        await whole.append(KEY, batch)
    assert await whole.load(KEY) == transcript


async def test_concurrent_writers_neither_lose_duplicate_nor_interleave_batches(backing: Backing) -> None:
    first = await backing.fresh()
    writers = [
        ClaudeAgentSessionStore(first if backing.shares_one_object else await backing.reopen())
        for _ in range(4)
    ]
    batches = [[entry(f"{w}.{n}") for n in range(3)] for w in range(4)]
    # every batch twice at once, by its writer and another one: a retry racing the first try
    await asyncio.gather(
        *(writer.append(KEY, batch) for writer, batch in zip(writers, batches, strict=True)),
        *(
            writer.append(KEY, batch)
            for writer, batch in zip(writers[1:] + writers[:1], batches, strict=True)
        ),
    )
    loaded = await (await claude(backing)).load(KEY)
    assert loaded is not None
    assert len(loaded) == 12
    runs = [loaded[start : start + 3] for start in range(0, 12, 3)]
    assert sorted(runs, key=lambda run: str(run[0]["text"])) == batches  # type: ignore[typeddict-item]
    summaries = await (await claude(backing)).list_session_summaries(KEY["project_key"])
    assert [summary["session_id"] for summary in summaries] == [KEY["session_id"]]


async def test_appends_read_a_tail_of_the_batch_and_window_never_the_transcript() -> None:
    reads = Reads()
    store = ClaudeAgentSessionStore(reads, dedupe_window=10)
    for n in range(60):  # a transcript grown to 240 entries, each batch read against a tail
        await store.append(KEY, [entry(f"{n}.{i}") for i in range(3)] + [marker(str(n))])
    assert store.store_id(KEY) not in reads.loaded
    assert set(reads.tails) == {14}  # the batch and the window, however long the transcript
    assert len(reads.tails) == 61  # one a batch, and one before the first created the session
    await store.append({**KEY, "subpath": "subagents/a"}, [marker("no uuid")])
    assert reads.tails[61:] == [0]  # nothing to check or fold: only whose session it is read


async def test_the_sdk_lists_sessions_from_summaries_without_reading_transcripts() -> None:
    reads = Reads()
    store = ClaudeAgentSessionStore(reads)
    cwd = "/work/listed"
    for n in range(3):
        session = str(uuid.UUID(int=n))
        key: SessionKey = {"project_key": project_key_for_directory(cwd), "session_id": session}
        await store.append(key, transcript(session, cwd))
    reads.loaded.clear()
    listed = await list_sessions_from_store(store, directory=cwd)
    assert sorted(info.session_id for info in listed) == [str(uuid.UUID(int=n)) for n in range(3)]
    assert {info.first_prompt for info in listed} == {"2 + 2?"}
    assert reads.loaded == []


async def test_the_sdk_mirror_retrying_a_landed_batch_stores_it_once(tmp_path: Path) -> None:
    lossy = ReplyLost()
    store = ClaudeAgentSessionStore(lossy)
    errors: list[str] = []

    async def on_error(key: SessionKey | None, error: str) -> None:
        errors.append(error)

    mirror = TranscriptMirrorBatcher(store=store, projects_dir=str(tmp_path), on_error=on_error)
    lines = [entry("hello"), marker("a title"), entry("hi")]
    mirror.enqueue(str(tmp_path / KEY["project_key"] / f"{KEY['session_id']}.jsonl"), lines)
    await mirror.flush()
    assert (errors, lossy.lost) == ([], 1)  # the SDK retried after the failure, and it worked
    # the entries with a uuid once; the marker, which has none, as often as it came (the SDK's rule)
    assert await store.load(KEY) == [*lines, marker("a title")]


async def test_delete_cascades_and_listing_uses_the_fork_index(backing: Backing) -> None:
    store = ClaudeAgentSessionStore(await backing.fresh())
    sub1: SessionKey = {**KEY, "subpath": "subagents/agent-1"}
    sub2: SessionKey = {**KEY, "subpath": "subagents/nested/agent-2"}
    other: SessionKey = {**KEY, "session_id": "other"}
    other_sub: SessionKey = {**other, "subpath": "subagents/agent-1"}
    elsewhere: SessionKey = {**KEY, "project_key": "elsewhere"}
    entry_x = entry("x")
    for key in (KEY, sub1, sub2, other, other_sub, elsewhere):
        await store.append(key, [entry_x])
    before = {meta.id for meta in await store.store.list()}
    store = await claude(backing)
    assert await store.list_subkeys(KEY) == ["subagents/agent-1", "subagents/nested/agent-2"]
    await store.delete(sub1)
    assert await store.list_subkeys(KEY) == ["subagents/nested/agent-2"]
    await store.delete(KEY)
    gone = {store.store_id(key) for key in (KEY, sub1, sub2)}
    assert {meta.id for meta in await store.store.list()} == before - gone
    assert [found["session_id"] for found in await store.list_sessions(KEY["project_key"])] == ["other"]
    assert await store.list_subkeys(other) == ["subagents/agent-1"]
    assert await store.load(elsewhere) == [entry_x] == await store.load(other_sub)
    await store.delete(KEY)  # deleting what is gone is no error


async def test_delete_leaves_forks_made_of_a_transcript_the_history_they_inherit(backing: Backing) -> None:
    store = ClaudeAgentSessionStore(await backing.fresh())
    sub: SessionKey = {**KEY, "subpath": "subagents/agent-1"}
    lines, sub_lines = [entry("a"), entry("b")], [entry("s")]
    await store.append(KEY, lines)
    await store.append(sub, sub_lines)
    plain = store.store  # forks as SessionManager.fork makes them: attached, no metadata of ours
    for fork, parent, inherited in (("fork-main", KEY, 2), ("fork-sub", sub, 1)):
        attached = {"parent_id": store.store_id(parent), "fork_message_count": inherited}
        await plain.save(fork, [entry(fork)], attached)
    forks = {}
    for fork in ("fork-main", "fork-sub"):
        resolved = await resolve_history(plain, fork, strict=True)
        assert resolved is not None
        forks[fork] = resolved.messages
    assert forks["fork-main"][:2] == lines
    assert forks["fork-sub"][:1] == sub_lines

    await (await claude(backing)).delete(KEY)
    assert await store.load(KEY) is None
    assert await store.load(sub) is None
    for fork, history in forks.items():
        resolved = await resolve_history(await backing.reopen(), fork, strict=True)  # the parent is gone
        assert resolved is not None
        assert resolved.messages == history


async def test_lookups_ask_the_fork_index_not_the_whole_store(tmp_path: Path) -> None:
    store = ClaudeAgentSessionStore(Unlisted(tmp_path))
    sub: SessionKey = {**KEY, "subpath": "subagents/agent-1"}
    for key in (KEY, sub):
        await store.append(key, [entry("x")])
    assert [found["session_id"] for found in await store.list_sessions(KEY["project_key"])] == [
        KEY["session_id"]
    ]
    assert len(await store.list_session_summaries(KEY["project_key"])) == 1
    assert await store.list_subkeys(KEY) == ["subagents/agent-1"]
    await store.delete(KEY)
    assert await store.load(sub) is None


async def test_summaries_are_the_sdk_fold_stale_after_entries_around_it_until_the_next_append(
    backing: Backing,
) -> None:
    store = ClaudeAgentSessionStore(await backing.fresh())
    lines = [
        entry("first", timestamp="2026-01-01T00:00:00.000Z", cwd="/w", message={"content": "Fix the bug"}),
        marker("A title"),
        entry("more", gitBranch="main"),
        entry("around", customTitle="written around the adapter"),
        entry("last", gitBranch="fix"),
    ]

    async def summary_and_mtime() -> tuple[dict[str, Any], int]:
        (summary,) = await store.list_session_summaries(KEY["project_key"])
        (listed,) = await store.list_sessions(KEY["project_key"])
        return summary["data"], summary["mtime"] - listed["mtime"]

    await store.append(KEY, lines[:1])
    await store.append(KEY, lines[1:3])
    folded = fold_session_summary(fold_session_summary(None, KEY, lines[:1]), KEY, lines[1:3])
    assert await summary_and_mtime() == (folded["data"], 0)
    stored = await store.store.load(store.store_id(KEY))
    assert stored is not None
    await save_from(store.store, stored, {}, [*stored.messages, lines[3]])  # not through the adapter
    assert (await summary_and_mtime())[1] < 0  # stale: the SDK reads the transcript instead
    await store.append(KEY, lines[4:])  # folded again from every entry
    assert await summary_and_mtime() == (fold_session_summary(None, KEY, lines)["data"], 0)


async def test_the_sdk_store_helpers_see_what_they_see_over_the_sdk_memory_store(backing: Backing) -> None:
    reference = SdkMemoryStore()

    async def sdk_store() -> SdkSessionStore:
        return reference

    async def ours() -> SdkSessionStore:
        return await claude(backing)

    expected = await sdk_view(sdk_store, "/work/project")
    await backing.fresh()
    assert await sdk_view(ours, "/work/project") == expected
    assert expected[-2:] == [[True], []]  # the fork is left; the subagent went with its session


async def test_the_sdk_resumes_from_the_store_the_newest_session_and_its_subagents(
    backing: Backing, tmp_path: Path
) -> None:
    cwd = str(tmp_path / "project")
    sessions = [str(uuid.UUID(int=n)) for n in (2, 1)]  # the newest first among equal mtimes too
    key: SessionKey = {"project_key": project_key_for_directory(cwd), "session_id": sessions[1]}
    helper = [entry("sidechain", isSidechain=True)]
    await backing.fresh()
    lines = {session: transcript(session, cwd) for session in sessions}
    for session in sessions:  # the second is the newest
        await (await claude(backing)).append({**key, "session_id": session}, lines[session])
    await (await claude(backing)).append({**key, "subpath": "subagents/agent-h"}, helper)
    options = ClaudeAgentOptions(
        session_store=await claude(backing),
        cwd=cwd,
        continue_conversation=True,
        env={"CLAUDE_CONFIG_DIR": str(tmp_path / "config")},
    )
    resumed = await materialize_resume_session(options)  # what the SDK does before starting the CLI
    assert resumed is not None
    try:
        assert resumed.resume_session_id == sessions[1]
        files = resumed.config_dir / "projects" / key["project_key"]
        main = files / f"{sessions[1]}.jsonl"
        assert [json.loads(line) for line in main.read_text().splitlines()] == lines[sessions[1]]
        sub = files / sessions[1] / "subagents" / "agent-h.jsonl"
        assert [json.loads(line) for line in sub.read_text().splitlines()] == helper
    finally:
        await resumed.cleanup()


WRITER = """
import asyncio, json, sys
from claude_agent_samples import opened
from simulacra_session.integrations.claude_agent_sdk import ClaudeAgentSessionStore

async def main(where, key, batches):
    async with opened(where) as store:
        print("ready", flush=True)
        told.readline()  # the writers start at once
        for batch in batches:
            await ClaudeAgentSessionStore(store).append(key, batch)

asyncio.run(main(*json.loads(sys.argv[1])))
"""


@pytest.mark.parametrize("kind", ["jsonl", "json", "sqlite", "postgres", "mysql"])
def test_writer_processes_retrying_each_others_batches_store_each_entry_once(
    kind: str, tmp_path: Path
) -> None:
    with ExitStack() as tables:
        where = {"kind": kind, "root": str(tmp_path)}
        if kind not in ("jsonl", "json"):
            server = f"sqlite:///{tmp_path / 'sessions.db'}" if kind == "sqlite" else server_url(kind)
            url = sa.make_url(tables.enter_context(sql_table(server)))
            where["table"] = str(url.query["table"])
            where["url"] = url.difference_update_query(["table"]).render_as_string(hide_password=False)
        batches = [[[entry(f"{w}.{n}.{i}") for i in range(3)] for n in range(3)] for w in range(2)]
        argvs = [  # its own batches twice, the other's once
            [json.dumps([where, KEY, [*mine, *theirs, *mine]])]
            for mine, theirs in zip(batches, batches[::-1], strict=True)
        ]
        with Processes(WRITER, argvs) as writers:
            assert writers.lines() == [b"ready\n"] * 2, writers.finish()
            writers.say("go")
            ends = writers.finish()
        assert [status for status, _ in ends] == [0, 0], ends

        async def stored() -> list[SessionStoreEntry] | None:
            async with opened(where) as store:
                return await ClaudeAgentSessionStore(store).load(KEY)

        loaded = asyncio.run(stored())
    assert loaded is not None
    assert len(loaded) == 18  # every entry once, each batch whole
    runs = [loaded[start : start + 3] for start in range(0, 18, 3)]
    assert sorted(runs, key=lambda run: str(run[0]["text"])) == [run for runs in batches for run in runs]  # type: ignore[typeddict-item]


async def test_bad_arguments_name_the_value_at_fault() -> None:
    with pytest.raises(ValueError, match="dedupe_window must be 0 or more, got -1"):
        ClaudeAgentSessionStore(InMemorySessionStore(), dedupe_window=-1)
    bad = cast(SessionKey, {"project_key": 7, "session_id": "s"})
    with pytest.raises(
        InvalidSessionIdError, match="invalid Claude Agent SDK key's project_key 7: expected a str"
    ):
        await ClaudeAgentSessionStore(InMemorySessionStore()).load(bad)


def test_a_missing_sdk_names_the_extra_to_install() -> None:
    said = missing_framework("claude_agent_sdk", "simulacra_session.integrations.claude_agent_sdk")
    assert said == "claude_agent_sdk is not installed: pip install 'simulacra-session[claude-agent-sdk]'"


def test_example_runs_and_continues_after_a_restart(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "examples" / "claude_agent_sdk_example.py"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [
        subprocess.run(
            [sys.executable, example], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        )
        for _ in range(2)
    ]
    assert runs[0].stdout.splitlines()[0] == "2 messages; last: '4'"
    assert runs[1].stdout.splitlines()[0] == "4 messages; last: '4'"  # the turn stored before, and this one
    assert runs[1].stdout.splitlines()[-1] == "1 session(s) after deleting the fork"
