"""One deterministic corpus of realistic agent messages, shared by every benchmark.

Messages average about 2 KB: user prompts, assistant text with thinking blocks, tool
calls with nested params, and tool results with nested JSON, with some non-ASCII text.
"""

from __future__ import annotations

import random
from typing import Any

__all__ = ["LENGTHS", "conversation", "document", "message", "session_ids"]

LENGTHS = (10, 100, 1000)

_WORDS = (
    "agent session durable fork branch save load label list model response tool result "
    "context window token stream retry latency budget plan step observe reflect answer "
    "naïve café résumé Zürich 東京 данные 🙂 ✓ — “quoted”"
).split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def message(rng: random.Random, index: int) -> dict[str, Any]:
    """The ``index``-th message of a conversation: roles and block kinds rotate."""
    stamp = 1_764_000_000_000 + index * 1_500
    kind = index % 4
    if kind == 0:
        return {
            "role": "user",
            "id": f"msg-{index:06d}",
            "timestamp": stamp,
            "content": [{"type": "text", "text": _text(rng, 300)}],
        }
    if kind == 1:
        return {
            "role": "assistant",
            "id": f"msg-{index:06d}",
            "timestamp": stamp,
            "content": [
                {"type": "thinking", "thought": _text(rng, 120)},
                {"type": "text", "text": _text(rng, 150)},
                {
                    "type": "tool",
                    "tool_request_id": f"call-{index}",
                    "tool": "search",
                    "params": {"query": _text(rng, 8), "limit": 10, "filters": {"lang": ["en", "de"]}},
                },
            ],
        }
    if kind == 2:
        return {
            "role": "user",
            "id": f"msg-{index:06d}",
            "timestamp": stamp,
            "content": [
                {
                    "type": "tool_result",
                    "tool": "search",
                    "tool_request_id": f"call-{index - 1}",
                    "result": {
                        "hits": [
                            {"title": _text(rng, 6), "score": round(rng.random(), 6), "rank": rank}
                            for rank in range(8)
                        ],
                        "took_ms": rng.randint(1, 900),
                        "partial": False,
                    },
                }
            ],
        }
    return {
        "role": "assistant",
        "id": f"msg-{index:06d}",
        "timestamp": stamp,
        "content": [{"type": "text", "text": _text(rng, 320)}],
    }


def conversation(length: int, seed: int = 7) -> list[dict[str, Any]]:
    """``length`` messages, the same every run."""
    rng = random.Random(seed)
    return [message(rng, index) for index in range(length)]


def document(length: int) -> dict[str, Any]:
    """A whole session document, ``{"metadata": ..., "messages": ...}``, of ``length`` messages."""
    return {"metadata": {"created_at": "2026-01-01T00:00:00.000000Z"}, "messages": conversation(length)}


def session_ids(count: int) -> list[str]:
    """``count`` valid, distinct session ids, the same every run."""
    return [f"session-{index:05d}" for index in range(count)]
