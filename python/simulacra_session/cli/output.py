"""What every command prints, the parser's too: lines of text on stdout, errors and warnings
as one line each on stderr, and what a failed write leaves behind.

It imports nothing heavy (no rich, no store, not even logging): ``--help``, ``--version`` and a
usage error need it alone. What handlers print with (rich tables, JSON, a progress bar) is
``printing``'s; the library's warnings reach ``warn`` through ``logged``.
Every byte printed reaches the output or fails the command: a reader leaving mid-write is a
``BrokenPipeError`` (exit 141), a full disk an ``OSError`` naming the output (``stdout`` or
the ``-o`` file), never the store."""

from __future__ import annotations

import os
import re
import sys
from contextlib import suppress
from typing import IO, Any

__all__ = [
    "clean",
    "drop",
    "named",
    "one_line",
    "print_text",
    "say",
    "warn",
]

_VALIDATION = re.compile(r"\d+ validation errors? for \S+$")  # pydantic's first line


def named(error: OSError, name: str) -> OSError:
    """``error`` naming ``name`` (the output it happened on) when it names no file itself."""
    if error.filename is not None:
        return error
    return OSError(error.errno, error.strerror or str(error), name)


def print_text(text: str, end: str = "\n") -> None:
    """``text`` on stdout, as ``print`` would, flushed: a failure names stdout (exit 2), never
    left to Python's exit (exit 120, "Exception ignored")."""
    try:
        sys.stdout.write(text + end)
        sys.stdout.flush()
    except OSError as error:
        raise named(error, "stdout") from error


#: Control characters but newline and tab, shown as symbols: C0 as its control picture
#: (ESC as U+241B), DEL as U+2421, C1 (``\x9b`` opens a sequence too) as U+FFFD.
_CONTROLS = {
    **{code: 0x2400 + code for code in range(32) if chr(code) not in "\n\t"},
    0x7F: 0x2421,
    **dict.fromkeys(range(0x80, 0xA0), 0xFFFD),
}


def clean(text: str) -> str:
    """``text`` printable on any terminal, and shown rather than obeyed by it: a lone surrogate
    (as the original library can write in a label) shown as U+FFFD, and control characters
    (a stored label or tool result holding escape sequences that would set the terminal's
    title, clear it or write its clipboard) as symbols; newlines and tabs are kept."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.translate(_CONTROLS)


def one_line(text: str) -> str:
    """``text`` on one printable line: its first line, or for pydantic's validation error
    ("1 validation error for X", then each field and what is wrong with its value) the fields
    and values too, without the links to its documentation."""
    lines = [line.strip() for line in clean(text).strip().splitlines()]
    if not lines or not _VALIDATION.search(lines[0]):
        return lines[0] if lines else ""
    return ": ".join(line for line in lines if line and not line.startswith("For further information"))


def say(text: str) -> None:
    """``simulacra-session: {text}`` as one line on stderr; dropped if stderr fails (full,
    gone), as it is without one: a warning is written from within the library's work (a
    store's listing logs it), which a failure to show it must not break, nor be taken for the
    store's; an error's line must not change the exit status it comes with."""
    try:
        sys.stderr.write(f"simulacra-session: {text}\n")
        sys.stderr.flush()
    except OSError:
        drop(sys.stderr)


def drop(stream: IO[Any]) -> None:
    """What ``stream`` (stdout, stderr) still holds after a failed write, and whatever is
    written to it after, goes nowhere (its descriptor made ``/dev/null``'s): Python's exit
    would write it again and fail (exit 120, "Exception ignored")."""
    with suppress(OSError, ValueError):  # in memory, closed: there is no descriptor to keep
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)
        stream.flush()


def warn(text: str) -> None:
    """``text`` as one warning line on stderr (see ``say``)."""
    say(f"warning: {one_line(text)}")
