"""What the conformance tests share: messages to save, a loop runner, a contract-naming
``raises``, the invalid ids, and the ``store`` fixture every suite overrides."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from ..messages import JsonObject, Message
from ..protocols import SessionStore

__all__ = ["BAD_IDS", "StoreFixture", "assistant", "msg", "raises", "run", "texts"]

T = TypeVar("T")

#: Values every store method must reject with ``InvalidSessionIdError`` before any I/O.
BAD_IDS: list[object] = [
    *["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "x" * 129, "a\n", "a b", "\u00e9"],
    *[7, None, b"a"],
]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion in a new event loop (``asyncio.run``)."""
    return asyncio.run(coro)


def msg(text: str, role: str = "user", **extra: Any) -> Message:
    """A message with one text block, from the user unless ``role`` says otherwise."""
    return {"role": role, "content": [{"type": "text", "text": text}], **extra}  # type: ignore[return-value]


def assistant(text: str, **extra: Any) -> Message:
    """An assistant message with one text block."""
    return msg(text, "assistant", **extra)


def texts(messages: Sequence[JsonObject]) -> list[str]:
    """The text of each message's first content block."""
    return [m["content"][0]["text"] for m in messages]


@contextmanager
def raises(expected: type[BaseException], contract: str, match: str | None = None) -> Iterator[None]:
    """Expect the block to raise ``expected`` (its message searched for the regular
    expression ``match``); otherwise fail with an ``AssertionError`` naming ``contract``,
    so that a store's author reads which rule the store broke."""
    name = expected.__name__
    try:
        yield
    except expected as error:
        if match is not None and not re.search(match, str(error)):
            raise AssertionError(
                f"{contract}: {name} raised, but its message {str(error)!r} does not match {match!r}"
            ) from error
        return
    except Exception as error:
        raise AssertionError(f"{contract}: expected {name}, got {type(error).__name__}: {error}") from error
    raise AssertionError(f"{contract}: expected {name}, nothing was raised")


class StoreFixture:
    """The ``store`` fixture that each suite's tests take; a subclass overrides it."""

    @pytest.fixture
    def store(self) -> SessionStore:
        """Override: a fresh, empty store for each test (a generator fixture may clean up)."""
        raise NotImplementedError("override the store fixture in your subclass")
