"""The command on a damaged store and on what the integrations store: a fork cycle is in the
tree, marked; an export or compaction of the whole store does all it can, naming each session
it cannot read (exit 1); ``show`` reads the messages of every bundled integration."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from cli_runs import run_cli
from simulacra_session import FileSessionStore


def _store(root: Path) -> FileSessionStore:
    return FileSessionStore(root)


def test_a_fork_cycle_is_in_the_tree_marked(tmp_path: Path) -> None:
    """Two sessions whose parents are each other (a hand edit, a damaged copy): ``list`` shows
    them, so ``tree`` does too, one as a root marked as a cycle, the other its fork."""
    store = _store(tmp_path / "s")
    attached = {"fork_message_count": 1, "detached": False}

    async def fill() -> None:
        await store.save("plain", [{"role": "user", "content": "p"}])
        await store.save("a", [{"role": "user", "content": "a"}], {"parent_id": "b", **attached})
        await store.save("b", [{"role": "user", "content": "b"}], {"parent_id": "a", **attached})

    asyncio.run(fill())
    url = str(tmp_path / "s")
    tree = run_cli("--store", url, "tree", "--json").json()
    assert tree == [
        {"id": "plain", "label": None, "children": []},
        {"id": "b", "label": None, "children": [{"id": "a", "label": None, "children": []}], "cycle": True},
    ]
    human = run_cli("--store", url, "tree")
    assert human.status == 0
    assert "b    1 (+1) messages" in human.out
    assert "fork cycle: its parent a leads back to it" in human.out
    assert "└── a " in human.out


def _torn(root: Path) -> FileSessionStore:
    """Three healthy sessions and one, ``torn``, whose only write lost its last bytes."""
    store = _store(root)

    async def fill() -> None:
        for index in range(3):
            await store.save(f"ok{index}", [{"role": "user", "content": f"fine {index}"}])
        await store.save("torn", [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])

    asyncio.run(fill())
    journal = root / "torn.jsonl"
    journal.write_bytes(journal.read_bytes()[:-5])
    return store


def test_a_whole_store_export_leaves_out_what_it_cannot_read_and_says_so(tmp_path: Path) -> None:
    """One damaged session does not stop the backup of the others: they are exported (an
    export import takes whole), the damaged one named with its path on stderr, exit 1. To a
    file, that export goes to ``FILE.partial``: ``FILE`` keeps the last whole export, with the
    damaged session as it was then. Asked for by name, it fails the export (exit 2)."""
    store = _store(tmp_path / "s")
    url = str(tmp_path / "s")
    asyncio.run(store.save("torn", [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]))
    backup, partial = tmp_path / "backup.jsonl", tmp_path / "backup.jsonl.partial"
    assert run_cli("--store", url, "export", "-o", str(backup)).status == 0
    whole = backup.read_bytes()
    _torn(tmp_path / "s")
    assert "corrupt session file" in run_cli("--store", url, "show", "torn").error_line()
    for output in (["-o", str(backup)], []):
        exported = run_cli("--store", url, "export", *output)
        assert exported.status == 1
        warning, *summary = exported.err.splitlines()
        assert warning.startswith("simulacra-session: warning: skipping session file")  # by list()
        assert str(tmp_path / "s" / "torn.jsonl") in warning
        assert summary[-1].startswith("exported 3 session(s)")
        assert "left out 1 unreadable" in summary[-1]
    assert f"to {partial}; left out 1 unreadable" in run_cli("--store", url, "export", "-o", str(backup)).err
    assert backup.read_bytes() == whole, "the last whole export, kept"
    assert partial.read_bytes().split(b"\n", 1)[1] == exported.out.encode().split(b"\n", 1)[1]
    restored = run_cli("--store", str(tmp_path / "old"), "import", str(backup), "--json")
    assert restored.json() == {"written": 1, "replaced": 0, "skipped": 0, "passed_over": 0}
    imported = run_cli("--store", str(tmp_path / "copy"), "import", str(partial), "--json")
    assert imported.json() == {"written": 3, "replaced": 0, "skipped": 0, "passed_over": 0}
    listed = run_cli("--store", str(tmp_path / "copy"), "list", "--json").json()
    assert sorted(item["id"] for item in listed) == ["ok0", "ok1", "ok2"]
    named = run_cli("--store", url, "export", "ok0", "torn", "-o", str(backup))
    assert named.status == 2
    assert "simulacra-session: corrupt session file" in named.err.splitlines()[-1]
    assert backup.read_bytes() == whole
    partial.unlink()
    others = run_cli("--store", url, "export", "ok0", "-o", str(backup))  # went to .partial, exit 1
    assert (others.status, others.err.splitlines()[-1]) == (0, f"exported 1 session(s) to {backup}")
    assert [json.loads(line)["id"] for line in backup.read_text().splitlines()[1:]] == ["ok0"]
    assert not partial.exists()


def test_a_whole_store_compaction_does_the_rest_and_names_what_it_cannot_read(tmp_path: Path) -> None:
    store = _torn(tmp_path / "s")
    url = str(tmp_path / "s")
    compacted = run_cli("--store", url, "compact")
    assert compacted.status == 1
    assert compacted.err.startswith("simulacra-session: warning: skipping session file")  # by list()
    assert str(tmp_path / "s" / "torn.jsonl") in compacted.err
    assert compacted.out.startswith("compacted 3 session(s); left out 1 unreadable")
    loaded = asyncio.run(store.load("ok2"))
    assert loaded is not None
    assert loaded.messages == [{"role": "user", "content": "fine 2"}]
    assert "corrupt session file" in run_cli("--store", url, "compact", "ok1", "torn").error_line()


#: One message of each bundled integration, as it stores it, and what ``show`` must print of it.
_INTEGRATION_ITEMS = [
    (  # LangChain: message_to_dict
        {"type": "human", "data": {"content": "Weather in Paris?", "additional_kwargs": {}, "type": "human"}},
        ["[0] human", "    Weather in Paris?"],
    ),
    (
        {
            "type": "ai",
            "data": {
                "content": "",
                "type": "ai",
                "tool_calls": [
                    {"name": "weather", "args": {"city": "Paris"}, "id": "t1", "type": "tool_call"}
                ],
            },
        },
        ["[1] ai", '    → weather({"city":"Paris"})'],
    ),
    (  # openai-agents: Runner items
        {"type": "function_call", "name": "get_weather", "arguments": '{"city": "Paris"}', "call_id": "c1"},
        ["[2] function_call", '    → get_weather({"city": "Paris"})'],
    ),
    (
        {"type": "function_call_output", "call_id": "c1", "output": "18C, sunny"},
        ["[3] function_call_output", '"output":"18C, sunny"'],
    ),
    (
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "18C."}]},
        ["[4] assistant", "    18C."],
    ),
    (  # Claude Agent SDK: transcript entries
        {"type": "user", "uuid": "u1", "message": {"role": "user", "content": "Hello Claude"}},
        ["[5] user", "    Hello Claude"],
    ),
    (
        {
            "type": "assistant",
            "message": {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Hi."},
                    {"type": "tool_use", "name": "ls", "input": {"p": "."}},
                ],
            },
        },
        ["[6] assistant", "    Hi.", '    → ls({"p":"."})'],
    ),
    (  # pydantic-ai: ModelMessagesTypeAdapter
        {
            "kind": "request",
            "parts": [{"part_kind": "user-prompt", "content": "Sum 2 and 3", "timestamp": "t"}],
        },
        ["[7] request", "    Sum 2 and 3"],
    ),
    (
        {
            "kind": "response",
            "parts": [{"part_kind": "tool-call", "tool_name": "add", "args": {"a": 2, "b": 3}}],
        },
        ["[8] response", '    → add({"a":2,"b":3})'],
    ),
    ({"x": [1, 2]}, ["[9] ?", '    {"x":[1,2]}']),  # anything else: itself, abbreviated
]


def test_show_prints_what_the_integrations_store(tmp_path: Path) -> None:
    """Messages without a top-level ``content`` (every integration's but openai-agents' plain
    messages) are shown by their role or type and their text, else a JSON excerpt: never
    ``? / null``."""
    items = [item for item, _ in _INTEGRATION_ITEMS]
    asyncio.run(_store(tmp_path / "s").save("agent-run", items))
    shown = run_cli("--store", str(tmp_path / "s"), "show", "agent-run")
    assert shown.status == 0, shown.err
    lines = shown.out.splitlines()
    assert "null" not in shown.out
    for _, expected in _INTEGRATION_ITEMS:
        for part in expected:
            assert any(part in line for line in lines), (part, shown.out)


def test_a_whole_store_copy_leaves_out_what_it_cannot_read_and_says_so(tmp_path: Path) -> None:
    """A copy of the whole store (a move to SQLite, say, before the old directory goes) does all
    it can, as an export does: a session it cannot read, whether the listing skipped it or
    loading it failed, is named on stderr and counted, and the exit status is 1, never 0 as if
    the store had moved whole. The target's own unreadable files are not counted. Asked for by
    name, an unreadable session fails the copy (exit 2)."""
    _torn(tmp_path / "s")  # ok0, ok1, ok2 and torn: skipped by the listing
    damaged = _store(tmp_path / "s")
    asyncio.run(damaged.save("damaged", [{"role": "user", "content": "abc"}]))
    journal = tmp_path / "s" / "damaged.jsonl"  # listed (its commit record verifies), not loadable
    journal.write_bytes(journal.read_bytes().replace(b'"content":"abc"', b'"content":"xyz"'))
    _torn(tmp_path / "into")  # the target's own damaged file: not the copy's to count
    url = str(tmp_path / "s")
    for target, options in (
        (str(tmp_path / "into"), ["--on-conflict", "skip"]),
        (f"sqlite:///{tmp_path}/t.db", []),
    ):
        copied = run_cli("copy", url, target, *options)
        assert copied.status == 1, copied.err
        assert str(tmp_path / "s" / "torn.jsonl") in copied.err
        assert "session damaged not copied: corrupt session file" in copied.err
        assert "Traceback" not in copied.err
        assert copied.out.strip().endswith("; left out 2 unreadable (see the warnings, and doctor)")
    listed = run_cli("--store", f"sqlite:///{tmp_path}/t.db", "list", "--json").json()
    assert sorted(item["id"] for item in listed) == ["ok0", "ok1", "ok2"]
    as_json = run_cli("copy", url, f"sqlite:///{tmp_path}/j.db", "--json")
    assert as_json.status == 1
    assert as_json.json() == {"written": 3, "replaced": 0, "skipped": 0, "passed_over": 0}
    named = run_cli("copy", url, str(tmp_path / "named"), "ok0", "damaged")
    assert named.status == 2
    assert "simulacra-session: corrupt session file" in named.err.splitlines()[-1]
