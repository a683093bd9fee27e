"""What the command prints: JSON for machines, rich tables and trees for people, a progress
bar on a terminal only, and the library's warnings as one line each on stderr.

Every byte printed reaches the output or fails the command: a reader leaving mid-write is a
``BrokenPipeError`` (exit 141), a full disk an ``OSError`` naming the output (``stdout`` or
the ``-o`` file), never the store."""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .._backend import dumps
from ..transfer import Progress as OnProgress
from ..transfer import write_all

__all__ = [
    "Output",
    "clean",
    "console",
    "drop",
    "named",
    "one_line",
    "print_json",
    "print_text",
    "progress_bar",
    "quiet_warnings",
    "report_warnings",
    "say",
    "unreadable_listed",
    "warn",
]

_LOG = logging.getLogger("simulacra_session")
_PIPE_WIDTH = 1000
_VALIDATION = re.compile(r"\d+ validation errors? for \S+$")  # pydantic's first line


def named(error: OSError, name: str) -> OSError:
    """``error`` naming ``name`` (the output it happened on) when it names no file itself."""
    if error.filename is not None:
        return error
    return OSError(error.errno, error.strerror or str(error), name)


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


class _OneLine(logging.Handler):
    """The library's warnings, one line each on stderr (its logger has no handler of its own)."""

    def emit(self, record: logging.LogRecord) -> None:
        warn(record.getMessage())


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


class _Unreadable(logging.Handler):
    """Gathers the paths a store's listing skipped as unreadable (its warning's ``unreadable``)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.paths: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        path = getattr(record, "unreadable", None)
        if isinstance(path, str):
            self.paths.add(path)


@contextmanager
def unreadable_listed() -> Iterator[set[str]]:
    """Meanwhile, the paths of the session files a store's ``list()`` skipped as unreadable
    (named on stderr by its warning): a whole-store command left them out too."""
    handler = _Unreadable()
    _LOG.addHandler(handler)
    try:
        yield handler.paths
    finally:
        _LOG.removeHandler(handler)


@contextmanager
def quiet_warnings() -> Iterator[None]:
    """Silence the library's warnings meanwhile (what they say is reported otherwise)."""
    level = _LOG.level
    _LOG.setLevel(logging.ERROR)
    try:
        yield
    finally:
        _LOG.setLevel(level)
