"""What the command prints: JSON for machines, rich tables and trees for people, a progress
bar on a terminal only, and the library's warnings as one line each on stderr."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .._backend import dumps
from ..transfer import Progress as OnProgress

__all__ = ["clean", "console", "print_json", "progress_bar", "quiet_warnings", "report_warnings"]

_LOG = logging.getLogger("simulacra_session")
_PIPE_WIDTH = 1000


def console(*, stderr: bool = False) -> Console:
    """A console for people: colours and boxes on a terminal, plain text in a pipe."""
    where = Console(stderr=stderr, highlight=False)
    if not where.is_terminal:  # a pipe: whole lines, never cut at 80 columns
        where = Console(stderr=stderr, highlight=False, width=_PIPE_WIDTH)
    return where


def print_json(value: Any) -> None:
    """``value`` as one line of JSON on stdout (UTF-8; lone surrogates as ``\\udxxx`` escapes)."""
    sys.stdout.flush()
    sys.stdout.buffer.write(dumps(value) + b"\n")
    sys.stdout.buffer.flush()


def clean(text: str) -> str:
    """``text`` printable on any terminal: a lone surrogate (as the original library can
    write in a label) shown as U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


@contextmanager
def progress_bar(description: str) -> Iterator[OnProgress | None]:
    """A progress callback drawing a bar on stderr when it is a terminal; ``None`` otherwise."""
    where = console(stderr=True)
    if not where.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=where, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


class _OneLine(logging.Handler):
    """The library's warnings, one line each on stderr (its logger has no handler of its own)."""

    def emit(self, record: logging.LogRecord) -> None:
        message = clean(record.getMessage()).splitlines()
        sys.stderr.write(f"simulacra-session: warning: {message[0] if message else ''}\n")


@contextmanager
def report_warnings() -> Iterator[None]:
    """Meanwhile, the library's warnings go to stderr as one line each, and nowhere else."""
    handler, propagate = _OneLine(logging.WARNING), _LOG.propagate
    _LOG.addHandler(handler)
    _LOG.propagate = False
    try:
        yield
    finally:
        _LOG.removeHandler(handler)
        _LOG.propagate = propagate


@contextmanager
def quiet_warnings() -> Iterator[None]:
    """Silence the library's warnings meanwhile (what they say is reported otherwise)."""
    level = _LOG.level
    _LOG.setLevel(logging.ERROR)
    try:
        yield
    finally:
        _LOG.setLevel(level)
