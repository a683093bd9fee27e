"""What commands print for people and machines: rich tables and trees on a console (colours
and boxes on a terminal, plain whole lines in a pipe), JSON, a progress bar on a terminal only,
and binary outputs written whole.

Only the commands' handlers import it (rich and the transfer code come with it): the parser,
``--help``, ``--version`` and a usage error need ``output`` alone. Every byte printed reaches
the output or fails the command, as ``output`` says."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .._backend import dumps
from ..transfer import Progress as OnProgress
from ..transfer import write_all
from .output import drop, named

__all__ = ["Output", "console", "print_json", "progress_bar"]

_PIPE_WIDTH = 1000


class Output:
    """A binary output written whole (``write_all``), its errors naming it: ``stdout`` or a path."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.stream = stream
        self.name = name

    def write(self, data: bytes) -> int:
        try:
            write_all(self.stream, data)
        except OSError as error:
            raise named(error, self.name) from error
        return len(data)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as error:
            raise named(error, self.name) from error


class _TextOutput:
    """The text file rich prints to: ``stream``'s bytes written whole, through ``Output``.
    On stderr, what fails to be written is dropped, as ``say``'s lines are."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self.stream = stream
        self.output = Output(stream.buffer, name)
        self.encoding = stream.encoding

    def write(self, text: str) -> int:
        with self._failing():
            self.stream.flush()  # what was printed before, through the stream itself
            self.output.write(text.encode(self.encoding, self.stream.errors or "strict"))
        return len(text)

    def flush(self) -> None:
        with self._failing():
            self.output.flush()

    @contextmanager
    def _failing(self) -> Iterator[None]:
        """Meanwhile, a failed write names the output (stdout), or is dropped (stderr)."""
        try:
            yield
        except OSError as error:
            if self.output.name != "stderr":
                raise named(error, self.output.name) from error
            drop(self.stream)

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()


class _Console(Console):
    """rich's console, but a reader leaving the pipe is a ``BrokenPipeError`` for the command to
    report (exit 141), where rich itself would exit 1, the status of a problem left."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def console(*, stderr: bool = False) -> Console:
    """A console for people: colours and boxes on a terminal, plain text in a pipe."""
    stream = sys.stderr if stderr else sys.stdout
    file = _TextOutput(stream, "stderr" if stderr else "stdout") if hasattr(stream, "buffer") else stream
    where = _Console(file=file, highlight=False)  # type: ignore[arg-type]  # a text file in all but name
    if not where.is_terminal:  # a pipe: whole lines, never cut at 80 columns
        where = _Console(file=file, highlight=False, width=_PIPE_WIDTH)  # type: ignore[arg-type]
    return where


def print_json(value: Any) -> None:
    """``value`` as one line of JSON on stdout (UTF-8; lone surrogates as ``\\udxxx`` escapes)."""
    out = Output(sys.stdout.buffer, "stdout")
    try:
        sys.stdout.flush()  # what was printed before, through the stream itself
    except OSError as error:
        raise named(error, out.name) from error
    out.write(dumps(value) + b"\n")
    out.flush()


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
