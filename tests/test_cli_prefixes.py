"""Session ids abbreviated on the command line, as git and docker take them (``cli/prefixes``):
every command naming sessions (show, tree, rename, delete, export, copy, compact) takes a
unique prefix of an id for the session and works on, and prints, its whole id; an ambiguous
prefix names the ids it matches and does nothing; a prefix of no session is not found; an id a
session has is that session even when it starts others' ids. On the file store (both formats)
and SQLite."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli_runs import run_cli, store_snapshot
from session_samples import message
from simulacra_session.cli import main
from simulacra_session.cli.urls import open_store

KINDS = ["jsonl", "json", "sqlite"]

ONE = "3b4d9e1c-0a1f-4c2e-9d3b-5e6f7a8b9c01"
TWO = "3b4d9e1c-7e2d-4b1a-8c4f-0a1b2c3d4e5f"  # shares 9 characters with ONE
PARENT = "7f00aa11-2b3c-4d5e-8f90-a1b2c3d4e5f6"
FORK = "c0ffee00-1111-4222-8333-444455556666"
SHORT = "abcd"  # a session's id, and the start of LONG's
LONG = "abcd-long"
IDS = [ONE, TWO, PARENT, FORK, SHORT, LONG, "zz"]


@contextmanager
def prefixed_store(kind: str, tmp_path: Path, name: str = "store") -> Iterator[str]:
    """The URL of a store of ``kind`` holding ``IDS`` (``FORK`` a fork of ``PARENT``)."""
    where = tmp_path / name
    url = {"jsonl": str(where), "json": f"file:{where}?format=json", "sqlite": f"sqlite:///{where}.db"}[kind]

    async def fill() -> None:
        opened = open_store(url, create=True)
        try:
            for session_id in IDS:
                if session_id != FORK:
                    await opened.store.save(session_id, [message("user", f"hello from {session_id}")])
            await opened.store.save(
                FORK, [message("user", "forked")], {"parent_id": PARENT, "fork_message_count": 1}
            )
        finally:
            await opened.close()

    asyncio.run(fill())
    yield url


def _ids(url: str) -> list[str]:
    return sorted(item["id"] for item in run_cli("--store", url, "list", "--json").json())


def _first_text(url: str, given: str) -> str:
    text: str = run_cli("--store", url, "show", given, "--json").json()["messages"][0]["content"][0]["text"]
    return text


def _exported(out: str) -> list[str]:
    return [json.loads(line)["id"] for line in out.splitlines()[1:]]


@pytest.mark.parametrize("kind", KINDS)
def test_a_unique_prefix_names_the_session_in_every_command(kind: str, tmp_path: Path) -> None:
    with prefixed_store(kind, tmp_path) as url:
        shown = run_cli("--store", url, "show", "7f00")
        assert shown.status == 0, shown.err
        assert f"session {PARENT}" in shown.out  # the header names the whole id
        assert run_cli("--store", url, "show", "7f00aa11-2b", "--json").json()["id"] == PARENT
        assert _first_text(url, "c0ff") == "hello from " + PARENT  # the fork, what it inherits first

        tree = run_cli("--store", url, "tree", "7f00", "--json").json()
        assert tree == [
            {"id": PARENT, "label": None, "children": [{"id": FORK, "label": None, "children": []}]}
        ]
        assert PARENT in run_cli("--store", url, "tree", "7f00").out

        renamed = run_cli("--store", url, "rename", "7f00", "Renamed")
        assert renamed.status == 0, renamed.err
        assert renamed.out.strip() == f"renamed {PARENT}: Renamed"
        labels = {item["id"]: item["label"] for item in run_cli("--store", url, "list", "--json").json()}
        assert labels[PARENT] == "Renamed"

        exported = run_cli("--store", url, "export", "3b4d9e1c-0", "3b4d9e1c-7", SHORT)
        assert exported.status == 0, exported.err
        assert sorted(_exported(exported.out)) == sorted([ONE, TWO, SHORT])

        copied = str(tmp_path / "copied")
        done = run_cli("copy", url, copied, "c0ff", "--json")  # the fork, and what it inherits from
        assert done.json()["written"] == 2
        assert _ids(copied) == sorted([PARENT, FORK])

        if kind != "sqlite":
            compacted = run_cli("--store", url, "compact", "3b4d9e1c-0", "c0ff")
            assert compacted.status == 0, compacted.err
            assert "compacted 2 session(s)" in compacted.out

        deleted = run_cli("--store", url, "delete", "3b4d9e1c-7", "--yes")
        assert deleted.status == 0, deleted.err
        assert deleted.out.strip() == f"deleted {TWO}"
        assert TWO not in _ids(url)
        assert run_cli("--store", url, "show", "3b4d", "--json").json()["id"] == ONE  # unique now


@pytest.mark.parametrize("kind", KINDS)
def test_an_ambiguous_prefix_names_the_matches_and_does_nothing(kind: str, tmp_path: Path) -> None:
    with prefixed_store(kind, tmp_path) as url:
        before = store_snapshot(url, millis=kind == "json")
        output = tmp_path / "out.jsonl"
        target = tmp_path / "target"
        for command in (
            ["--store", url, "show", "3b4d"],
            ["--store", url, "tree", "3b4d9e1c"],
            ["--store", url, "rename", "3b4d", "x"],
            ["--store", url, "delete", "3b4d", "--yes"],
            ["--store", url, "delete", "3b4d"],
            ["--store", url, "export", PARENT, "3b4d", "-o", str(output)],
            ["copy", url, str(target), PARENT, "3b4d"],
            ["--store", url, "compact", PARENT, "3b4d"],
        ):
            if "compact" in command and kind == "sqlite":
                continue  # nothing to compact in a database
            prefix = "3b4d9e1c" if "tree" in command else "3b4d"
            assert run_cli(*command).error_line() == (
                f"simulacra-session: session id prefix {prefix} is ambiguous: "
                f"2 sessions start with it: {ONE}, {TWO}"
            ), command
        assert not output.exists()
        assert not target.exists()  # not even made
        assert store_snapshot(url, millis=kind == "json") == before


@pytest.mark.parametrize("kind", KINDS)
def test_an_ambiguous_prefix_names_the_first_few_matches(kind: str, tmp_path: Path) -> None:
    with prefixed_store(kind, tmp_path) as url:
        many = [f"5eed{index:04d}-x" for index in range(8)]
        for session_id in many:
            assert run_cli("--store", url, "import", "-", stdin=_export_of(session_id)).status == 0
        line = run_cli("--store", url, "show", "5eed").error_line()
        assert line.endswith(f"8 sessions start with it: {', '.join(many[:5])} and 3 more")


def _export_of(session_id: str) -> str:
    """An export holding one session ``session_id``."""
    record = {
        "id": session_id,
        "metadata": {
            "created_at": "2025-01-01T00:00:00.000000Z",
            "updated_at": "2025-01-01T00:00:00.000000Z",
            "message_count": 1,
        },
        "messages": [message("user", "seed")],
    }
    header = {"format": "simulacra-session-export", "version": 1, "sessions": 1}
    return json.dumps(header) + "\n" + json.dumps(record) + "\n"


@pytest.mark.parametrize("kind", KINDS)
def test_a_prefix_of_no_session_is_not_found(kind: str, tmp_path: Path) -> None:
    with prefixed_store(kind, tmp_path) as url:
        before = store_snapshot(url, millis=kind == "json")
        for given in ("9999", "3b4d9e1c-0a1f-4c2e-9d3b-5e6f7a8b9c01-not", "7f00ab"):
            for command in (
                ["--store", url, "show", given],
                ["--store", url, "tree", given],
                ["--store", url, "rename", given, "x"],
                ["--store", url, "delete", given, "--yes"],
                ["--store", url, "delete", given],  # before asking
                ["--store", url, "export", PARENT, given],
                ["copy", url, str(tmp_path / "target"), given],
            ):
                line = run_cli(*command).error_line()
                assert line == f"simulacra-session: session not found: {given}", command
        if kind != "sqlite":
            assert "session not found: 9999" in run_cli("--store", url, "compact", "9999").error_line()
        assert store_snapshot(url, millis=kind == "json") == before
        # copy looks in SRC, never in DST
        other = f"sqlite:///{tmp_path / 'other.db'}"
        assert run_cli("copy", url, other, "3b4d9e1c-0").status == 0  # ONE alone
        assert "session not found: 7f00" in run_cli("copy", other, url, "7f00").error_line()
        replaced = run_cli("copy", other, url, "3b4d", "--on-conflict", "replace", "--json")
        assert replaced.json()["replaced"] == 1  # unique in SRC, though not in DST


@pytest.mark.parametrize("kind", KINDS)
def test_a_prefix_needs_four_characters(kind: str, tmp_path: Path) -> None:
    with prefixed_store(kind, tmp_path) as url:
        for given in ("7", "7f", "7f0"):
            line = run_cli("--store", url, "show", given).error_line()
            needs = "(a prefix of an id needs at least 4 characters)"
            assert line == f"simulacra-session: session not found: {given} {needs}"
        assert "session not found: 7f0 (" in run_cli("--store", url, "delete", "7f0", "-y").error_line()
        assert "session not found: 7f0 (" in run_cli("--store", url, "export", "7f0").error_line()
        assert PARENT in _ids(url)
        assert "invalid session id ''" in run_cli("--store", url, "show", "").error_line()  # never a prefix
        assert run_cli("--store", url, "show", "zz", "--json").json()["id"] == "zz"  # an id, however short


@pytest.mark.parametrize("kind", KINDS)
def test_an_id_a_session_has_wins_over_being_a_prefix(kind: str, tmp_path: Path) -> None:
    with prefixed_store(kind, tmp_path) as url:
        assert run_cli("--store", url, "show", SHORT, "--json").json()["id"] == SHORT
        assert run_cli("--store", url, "tree", SHORT, "--json").json()[0]["id"] == SHORT
        assert run_cli("--store", url, "rename", SHORT, "Short").out.strip() == f"renamed {SHORT}: Short"
        assert _exported(run_cli("--store", url, "export", SHORT).out) == [SHORT]
        copied = str(tmp_path / "copied")
        assert run_cli("copy", url, copied, SHORT).status == 0
        assert _ids(copied) == [SHORT]
        if kind != "sqlite":
            assert "compacted 1 session(s)" in run_cli("--store", url, "compact", SHORT).out
        assert run_cli("--store", url, "delete", SHORT, "-y").out.strip() == f"deleted {SHORT}"
        assert LONG in _ids(url)
        # gone, its id is a unique prefix of LONG's
        assert run_cli("--store", url, "show", SHORT, "--json").json()["id"] == LONG


class _Terminal(io.StringIO):
    """A stdin that says it is a terminal, holding the answer typed."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("kind", KINDS)
def test_the_delete_question_names_the_whole_id(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with prefixed_store(kind, tmp_path) as url:
        refused = run_cli("--store", url, "delete", "7f00")  # no terminal to ask on
        assert refused.error_line() == (
            f"simulacra-session: not deleting {PARENT}: confirm with --yes (stdin is not a terminal)"
        )
        monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
        assert main(["--store", url, "delete", "7f00"]) == 1
        assert f"delete session {PARENT}? (its forks keep their history) [y/N] " in capsys.readouterr().err
        assert PARENT in _ids(url)
        monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
        assert main(["--store", url, "delete", "7f00"]) == 0
        said = capsys.readouterr()
        assert f"delete session {PARENT}? " in said.err
        assert said.out.strip() == f"deleted {PARENT}"
        assert PARENT not in _ids(url)
        assert _first_text(url, FORK) == "hello from " + PARENT  # the fork kept its history
