"""Lone surrogates, as JavaScript strings may hold them (the original library's automatic label
cuts text at 60 UTF-16 units, which can split an emoji): written as lowercase ``\\udxxx``
escapes, exactly as ``JSON.stringify`` writes them, and read back, on both backends
(``test_json_parity`` compares the twins on generated text, surrogates included)."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

#: What Node's JSON.stringify writes for these strings (checked against Node 24).
CASES = [
    ("x\ud83d", b'"x\\ud83d"'),
    ('\udfff\n"\u00e9', b'"\\udfff\\n\\"\xc3\xa9"'),
    ("\ud800\udbffa", b'"\\ud800\\udbffa"'),
    ("\udc00\ud83d", b'"\\udc00\\ud83d"'),
    ("plain \U0001f600", b'"plain \xf0\x9f\x98\x80"'),
]


@pytest.mark.parametrize(("text", "written"), CASES)
def test_dumps_escapes_lone_surrogates_as_javascript_does(
    hotpath: ModuleType, text: str, written: bytes
) -> None:
    assert hotpath.dumps(text) == written
    assert hotpath.dumps({text: [text]}) == b"{" + written + b":[" + written + b"]}"
    assert hotpath.loads(written) == text
    assert hotpath.copy_json({"k": [text]}) == {"k": [text]}


def test_surrogates_in_a_document_of_the_original_library(hotpath: ModuleType) -> None:
    document = b"""{
  "metadata": {"label": "Tell me about \\ud83d", "message_count": 1, "n": -12345678901234567890123},
  "messages": [{"role": "user", "content": [
    {"type": "text", "text": "a \\uD83D\\uDE00 b \\udE00", "x": [1.5e3, true, null]}
  ]}]
}
"""
    parsed: Any = hotpath.loads(document)
    assert parsed["metadata"]["label"] == "Tell me about \ud83d"
    assert parsed["metadata"]["n"] == -12345678901234567890123
    assert parsed["messages"][0]["content"][0] == {
        "type": "text",
        "text": "a \U0001f600 b \ude00",
        "x": [1500.0, True, None],
    }
    assert parsed == json.loads(document)  # as the standard library reads it
    assert hotpath.loads_lines(b'{"a": "\\ud83d"}\n["\\udc00"]\n') == ([{"a": "\ud83d"}, ["\udc00"]], 0)
    rewritten = hotpath.dumps(parsed)
    assert b'"Tell me about \\ud83d"' in rewritten
    assert hotpath.loads(rewritten) == parsed


def test_surrogate_documents_keep_the_limits(hotpath: ModuleType) -> None:
    deep = b"[" * 128 + b'"\\ud800"' + b"]" * 128
    assert hotpath.loads(deep) is not None
    with pytest.raises(ValueError, match="nesting deeper than 128"):
        hotpath.loads(b"[" + deep + b"]")
    assert hotpath.loads(b'{"a": 1, "a": "\\ud800"}') == {"a": "\ud800"}  # the last value, like dict
