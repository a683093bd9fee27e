"""The library's warnings (its ``simulacra_session`` logger) while a command runs: one line
each on stderr (``report_warnings``, around every command), silenced (``quiet_warnings``), or
the paths of the session files a listing skipped gathered (``unreadable_listed``).

Imported once the arguments are parsed: ``--help``, ``--version`` and a usage error need no
logging."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from .output import warn

__all__ = ["quiet_warnings", "report_warnings", "unreadable_listed"]

_LOG = logging.getLogger("simulacra_session")


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
