"""The ``simulacra-session`` command (also ``python -m simulacra_session``).

    simulacra-session [--store URL] COMMAND ...

Look at sessions (``list``, ``show``, ``tree``), tidy them (``rename``, ``delete``), move them
between stores (``export``, ``import``, ``copy``), check and repair a store (``doctor``,
``compact``), and measure auto-save latency (``bench``). ``--store`` names a directory or a URL
(see ``urls``); it defaults to ``$SIMULACRA_SESSION_STORE``, else ``./sessions``. Exit status:
0 done, 1 a problem left: ``doctor`` left one, or an ``export``, ``copy`` or ``compact`` of the
whole store left out the sessions it could not read (each named on stderr; or a delete was not
confirmed), 2 an error, reported in one line naming the id, path or URL at fault (``stdout`` or
the ``-o`` file for an output that cannot be written; ``--help`` and ``--version`` too; a
command changing the store has done so by then, only its report is lost), 141 the reader of the
output left (``| head``), quietly, 130 interrupted (Ctrl-C, SIGINT), 143 terminated (SIGTERM):
either undoes what it was doing as an error does (an ``export -o FILE`` leaves no temp file,
and FILE as it was).

The parser (``commands``) imports a command's handler only when it runs: ``--help``,
``--version`` and a usage error import neither rich nor the handlers' modules (what the
package's ``__init__`` imports, it imports first).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from collections.abc import Iterator, Sequence

from ..errors import SessionError
from .commands import parser
from .output import drop, named, one_line, say
from .signals import Terminated, interruptible
from .urls import CommandError

__all__ = ["main"]


def _message(error: BaseException) -> str:
    """One line for an error: what went wrong, naming the id, path or URL."""
    if isinstance(error, OSError) and error.filename is not None:
        text = f"{error.filename}: {error.strerror or error}"
    elif isinstance(error, (CommandError, SessionError, OSError, ValueError, TypeError)):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    return one_line(text) or type(error).__name__


class _Closed(io.BufferedIOBase):
    """A standard stream the command was started without: reading or writing it fails naming it."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def _fail(self) -> OSError:
        return OSError(errno.EBADF, os.strerror(errno.EBADF), self.name)

    def read(self, size: int | None = -1, /) -> bytes:
        raise self._fail()

    def read1(self, size: int = -1, /) -> bytes:
        raise self._fail()

    def write(self, data: object, /) -> int:
        raise self._fail()


@contextlib.contextmanager
def _standard_streams() -> Iterator[None]:
    """Meanwhile, a standard stream the command was started without (``>&-``, a daemon's
    closed descriptors; Python makes it ``None``) is one that fails naming it (stdin, stdout:
    exit 2, as for any output that cannot be written), or drops what is written (stderr). Its
    descriptor is ``/dev/null``'s, so no session file opened takes its number."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    kept = sys.stdin, sys.stdout, sys.stderr
    if sys.stdin is None:
        sys.stdin = io.TextIOWrapper(_Closed("stdin"), encoding="utf-8")
    if sys.stdout is None:
        sys.stdout = io.TextIOWrapper(_Closed("stdout"), encoding="utf-8", write_through=True)
    dropped = open(os.devnull, "w", encoding="utf-8") if sys.stderr is None else None  # noqa: SIM115
    if dropped is not None:
        sys.stderr = dropped
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = kept
        if dropped is not None:
            dropped.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status. A standard output or error that failed
    is left writing to ``/dev/null``: what it held could not be written, and the process's
    exit would try again and fail (status 120)."""
    with _standard_streams(), interruptible():
        return _stdout_flushed(_main(argv))


def _stdout_flushed(status: int) -> int:
    """``status``, once what stdout still holds is written. What it cannot take is dropped
    (``drop``); a failure not reported yet is the command's: 141 for a reader gone, else 2
    naming stdout (as every output's)."""
    try:
        sys.stdout.flush()
        return status
    except OSError as error:
        failed = error
    drop(sys.stdout)
    if status not in (0, 1):  # failed already: stdout itself, an error, a signal
        return status
    if isinstance(failed, BrokenPipeError):
        return 141
    say(_message(named(failed, "stdout")))
    return 2


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = parser().parse_args(argv)  # its --help and --version can fail writing stdout
        from .logged import report_warnings  # once parsed: --help, --version need no logging

        with report_warnings():
            status: int = args.run(args)
    except Terminated:
        say("terminated")
        return 143  # 128 + SIGTERM, what a shell reports for a command the signal stopped
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except BrokenPipeError:  # the reader left (``export | head``): stop quietly, as Unix tools do
        return 141  # 128 + SIGPIPE, what a shell reports for a tool the signal stopped
    except (SystemExit, MemoryError):
        raise
    except Exception as error:  # never a traceback: one line naming what is at fault
        say(_message(error))
        return 2
    return status
