"""Twin of ``rust/src/slug.rs``: a session's label from its first user message."""

from __future__ import annotations

import re

from ..errors import SerializationError

__all__ = ["derive_slug"]

#: What ``str.isspace`` counts as whitespace (Rust's set plus U+001C..U+001F).
_WHITESPACE = re.compile(
    "[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
)


def derive_slug(text: str, limit: int = 50) -> str | None:
    """A label from a first user message: whitespace collapsed, cut at a word boundary."""
    if not isinstance(text, str):
        raise TypeError(f"'{type(text).__name__}' object is not an instance of 'str'")
    if not isinstance(limit, int):
        raise TypeError(f"'{type(limit).__name__}' object cannot be interpreted as an integer")
    if not -(2**63) <= limit < 2**63:  # the compiled one takes a 64-bit integer
        raise OverflowError("Python int too large to convert to C long")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SerializationError("cannot derive a slug from str with a lone surrogate") from None
    collapsed = _WHITESPACE.sub(" ", text).strip(" ")
    if not collapsed:
        return None
    if len(collapsed) <= limit:
        return collapsed
    if collapsed[limit] == " ":
        return collapsed[:limit]
    cut = collapsed.rfind(" ", 0, limit)
    return collapsed[:cut] if cut > 0 else collapsed[:limit]
