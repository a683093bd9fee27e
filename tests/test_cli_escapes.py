"""Stored text holding terminal control sequences (a label derived from a prompt, a tool's
result fetched from a web page, a model's output) is shown, not obeyed: ``list``, ``show`` and
``tree`` print its control characters as visible symbols, so none reaches the terminal to set
its title, clear it, or write the clipboard (OSC 52). Newlines and tabs stay what they are."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cli_runs import run_cli
from simulacra_session import FileSessionStore
from simulacra_session.cli.output import clean

_OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"  # write "echo pwned" to the clipboard
_TITLE = "\x1b]0;title\x07"
_C1 = "\x9b31m"  # CSI as one C1 character


def _store(root: Path) -> None:
    text = f"hi {_OSC52} there\x1b[2J\nsecond\tline {_C1}"
    tool = {"type": "tool_result", "tool": f"fetch{_TITLE}", "result": f"page {_OSC52}"}
    messages = [{"role": "user", "content": text}, {"role": "assistant", "content": [tool]}]
    asyncio.run(FileSessionStore(root).save("evil", messages, {"label": f"L\x1b[31mRED{_TITLE}\x7f"}))


@pytest.mark.parametrize("command", [["list"], ["show", "evil"], ["tree"]])
def test_control_characters_are_shown_not_sent_to_the_terminal(tmp_path: Path, command: list[str]) -> None:
    _store(tmp_path / "s")
    shown = run_cli("--store", str(tmp_path / "s"), *command)
    assert shown.status == 0, shown.err
    assert not [char for char in shown.out if (ord(char) < 32 and char != "\n") or 0x7F <= ord(char) < 0xA0]
    assert "L␛[31mRED␛]0;title␇␡" in shown.out
    if command[0] == "show":
        assert "    hi ␛]52;c;ZWNobyBwd25lZA==␇ there␛[2J\n    second" in shown.out
        assert "← fetch␛]0;title␇: page ␛]52;c;ZWNobyBwd25lZA==␇" in shown.out


def test_clean_keeps_newlines_tabs_and_text() -> None:
    assert clean("a\tb\nc é ☕ 日本") == "a\tb\nc é ☕ 日本"
    assert clean("\x00\x1b\x7f\x85\x9f") == "␀␛␡\ufffd\ufffd"
    assert clean("\ud800x") == "\ufffdx"
