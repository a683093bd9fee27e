"""The command end to end (its ``main``, in this process), on file (both formats), SQLite,
PostgreSQL and MariaDB stores: list, show, tree, rename, delete, export, import, copy, compact;
and the round trip file -> PostgreSQL -> json files, through the installed script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runs import KINDS, run_cli, store_of, store_snapshot
from session_samples import IDS, superseded_records


@pytest.mark.parametrize("kind", KINDS)
def test_list_show_and_tree(kind: str, tmp_path: Path) -> None:
    with store_of(kind, tmp_path) as url:
        listed = run_cli("--store", url, "list", "--json").json()
        assert [item["id"] for item in listed] == IDS[::-1]  # most recent first
        for item in listed:
            assert {"id", "label", "created_at", "updated_at", "message_count", "parent_id"} <= item.keys()
        by_id = {item["id"]: item for item in listed}
        assert by_id["root"]["team"] == {"name": "a", "n": [1, 2]}
        assert by_id["root"]["checkpoint_state"] == {"message_id": "r2", "summary": "greetings"}
        assert (by_id["fork"]["parent_id"], by_id["plain"]["parent_id"]) == ("root", None)
        page = run_cli("list", "--limit", "2", "--offset", "1", "--json", "--store", url).json()
        assert [item["id"] for item in page] == IDS[::-1][1:3]

        shown = run_cli("--store", url, "show", "grandchild", "--json").json()
        assert shown["id"] == "grandchild"
        assert [m["id"] for m in shown["messages"]] == ["r1", "r2", "f1", "g1"]  # what it inherits first
        assert shown["inherited"] == 3
        assert shown["metadata"]["parent_id"] == "fork"

        tree = run_cli("--store", url, "tree", "--json").json()
        assert tree == [
            {"id": "plain", "label": "Plain", "children": []},
            {
                "id": "root",
                "label": "Root",
                "children": [
                    {"id": "detached", "label": "Detached", "children": []},
                    {
                        "id": "fork",
                        "label": "Fork",
                        "children": [{"id": "grandchild", "label": None, "children": []}],
                    },
                ],
            },
        ]
        assert (
            run_cli("--store", url, "tree", "fork", "--json").json()[0]["children"][0]["id"] == "grandchild"
        )

        human = run_cli("--store", url, "list")
        assert human.status == 0
        assert all(session_id in human.out for session_id in IDS)
        assert "2 (+2)" not in human.out
        assert "1 (+2)" in human.out
        text = run_cli("--store", url, "show", "plain").out
        assert "naïve café ☕ — 日本語" in text
        assert "thinking: let me look" in text
        assert '→ search({"q":"x"})' in text
        assert "← search: [1]" in text
        assert "grandchild" in run_cli("--store", url, "tree").out


@pytest.mark.parametrize("kind", KINDS)
def test_export_import_and_copy_keep_everything(kind: str, tmp_path: Path) -> None:
    with store_of(kind, tmp_path) as url:
        millis = kind == "json"
        source = store_snapshot(url, millis=millis)
        export = tmp_path / "export.jsonl"
        assert run_cli("--store", url, "export", "-o", str(export)).status == 0
        lines = export.read_bytes().splitlines()
        assert json.loads(lines[0])["sessions"] == 5
        into = str(tmp_path / "imported")
        assert run_cli("--store", into, "import", str(export), "--json").json() == {
            "written": 5,
            "replaced": 0,
            "skipped": 0,
            "passed_over": 0,
        }
        assert store_snapshot(into, millis=millis) == source

        piped = run_cli("--store", url, "export", "root", "plain")
        assert piped.err == ""  # no progress bar, no summary in a pipe
        assert [json.loads(line).get("id") for line in piped.out.splitlines()[1:]] == ["root", "plain"]
        again = run_cli("--store", into, "import", "-", stdin=piped.out)
        assert "2 session(s) already in" in again.error_line()
        skipped = run_cli("--store", into, "import", "-", "--on-conflict", "skip", "--json", stdin=piped.out)
        assert skipped.json() == {"written": 0, "replaced": 0, "skipped": 2, "passed_over": 0}

        copied = f"sqlite:///{tmp_path / 'copied.db'}"
        assert run_cli("copy", url, copied, "--json").json()["written"] == 5
        assert store_snapshot(copied, millis=millis) == source
        conflict = run_cli("copy", url, copied)
        assert "5 session(s) already in" in conflict.error_line()
        assert run_cli("copy", url, copied, "--on-conflict", "replace", "--json").json()["replaced"] == 5


@pytest.mark.parametrize("kind", KINDS)
def test_rename_and_delete_as_the_manager_does(kind: str, tmp_path: Path) -> None:
    with store_of(kind, tmp_path) as url:
        history = run_cli("--store", url, "show", "grandchild", "--json").json()["messages"]
        assert run_cli("--store", url, "rename", "fork", "[b]Renamed[/b]").status == 0
        labels = {item["id"]: item["label"] for item in run_cli("--store", url, "list", "--json").json()}
        assert labels["fork"] == "[b]Renamed[/b]"
        assert "[b]Renamed[/b]" in run_cli("--store", url, "list").out  # text, not rich markup
        refused = run_cli("--store", url, "delete", "root")
        assert "not deleting root: confirm with --yes" in refused.error_line()
        assert run_cli("--store", url, "delete", "root", "--yes").status == 0
        ids = [item["id"] for item in run_cli("--store", url, "list", "--json").json()]
        assert "root" not in ids
        assert run_cli("--store", url, "show", "grandchild", "--json").json()["messages"] == history
        assert "session not found: root" in run_cli("--store", url, "delete", "root", "-y").error_line()


def test_compact_rewrites_journals(tmp_path: Path) -> None:
    with store_of("jsonl", tmp_path) as url:
        journal = Path(url) / "plain.jsonl"
        superseded_records(journal, 50)
        before = store_snapshot(url)
        assert run_cli("--store", url, "doctor", "--json").json()["problems"][0]["kind"] == "compactable"
        assert "compacted 1 session(s)" in run_cli("--store", url, "compact", "plain").out
        assert len(journal.read_bytes().splitlines()) == 5  # header, 3 messages, commit record
        assert run_cli("--store", url, "compact").status == 0
        assert store_snapshot(url) == before
        assert run_cli("--store", url, "doctor", "--json").json() == {"ok": True, "problems": []}


def test_round_trip_file_to_postgres_to_json_files(tmp_path: Path) -> None:
    with store_of("jsonl", tmp_path, "files") as files, store_of("postgres", tmp_path, filled=False) as pg:
        original = store_snapshot(files)
        assert run_cli("copy", files, pg, runner="script").status == 0
        assert store_snapshot(pg) == original  # ids, stamps, metadata, order, resolved histories
        json_files = f"file:{tmp_path / 'json-files'}?format=json"
        # back in this process: the script, started once above, costs an interpreter start
        assert run_cli("copy", pg, json_files).status == 0
        assert store_snapshot(json_files, millis=True) == store_snapshot(files, millis=True)
        document = json.loads((tmp_path / "json-files" / "fork.json").read_text())
        assert document["metadata"]["parent_id"] == "root"  # the original library's own layout
        assert [m["id"] for m in document["messages"]] == ["f1"]
