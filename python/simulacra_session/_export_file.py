"""Reading an export (``transfer``'s format): its header checked, its session lines parsed
one at a time, from a path or a binary stream (spooled to a temporary file when it is read
twice and cannot seek). Every fault is a ``CorruptSessionError`` naming the file and line.

A read that fails names the export (its path, a stream's name such as ``<stdin>``), and a
temporary file (``spool``: in ``$TMPDIR``) that fails names itself and its directory: an
``OSError`` naming no file would be taken for a store's (a database driver's socket error)."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import IO

from ._backend import loads
from ._shown import shown
from .errors import CorruptSessionError, SessionError
from .ids import validate_session_id
from .models import StoredSession, metadata_from_stored
from .stores._restore import checked_restore

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "Spool", "named_faults", "opened", "records", "spool"]

EXPORT_FORMAT = "simulacra-session-export"
EXPORT_VERSION = 1
_CHUNK = 1 << 20  # bytes copied at a time to or from a temporary file
_MOST = 2**63 - 1  # the largest count a header may give (what a session's counts go up to)


@contextmanager
def named_faults(where: str) -> Iterator[None]:
    """Meanwhile, an ``OSError`` naming no file names ``where``: the export read (a file that
    fails to read, stdin) or a temporary file, never taken for the store's."""
    try:
        yield
    except OSError as error:
        if error.filename is not None or error.errno is None:  # named, or no system error
            raise
        raise type(error)(error.errno, error.strerror or str(error), where) from error


def _temp_faults() -> AbstractContextManager[None]:
    """Meanwhile, an ``OSError`` naming no file names the temporary file, by its directory."""
    return named_faults(f"a temporary file in {tempfile.gettempdir()} ($TMPDIR)")


class Spool:
    """A temporary file data waits in, to be read from its start: an export's sessions until
    its header can count them, stdin until it is read again. Its errors name it."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def write(self, data: bytes, /) -> int:
        with _temp_faults():
            return self._file.write(data)

    def rewound(self) -> IO[bytes]:
        """The file, at its start."""
        with _temp_faults():
            self._file.seek(0)
        return self._file

    def chunks(self) -> Iterator[bytes]:
        """What it holds, from its start, a chunk at a time."""
        file = self.rewound()
        while True:
            with _temp_faults():
                chunk = file.read(_CHUNK)
            if not chunk:
                return
            yield chunk


@contextmanager
def spool() -> Iterator[Spool]:
    """A new ``Spool`` (in ``$TMPDIR``), gone at the end."""
    with _temp_faults():
        file = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    try:
        yield Spool(file)
    except BaseException:
        with suppress(OSError):  # closing flushes what failed to be written: raised already
            file.close()
        raise
    with _temp_faults():
        file.close()


def _parse_record(line: bytes, at: str) -> StoredSession:
    """One session line of an export; ``CorruptSessionError`` naming ``at`` (file and line)."""
    try:
        record = loads(line)
    except ValueError as error:
        raise CorruptSessionError(f"{at}: {error}") from None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("metadata"), dict)
        or not isinstance(record.get("messages"), list)
    ):
        raise CorruptSessionError(f"{at}: expected an object with 'id', 'metadata' and 'messages'")
    messages = record["messages"]
    try:
        session_id = validate_session_id(record.get("id"))
        stored = metadata_from_stored(session_id, record["metadata"])
        metadata = checked_restore(session_id, messages, stored)[0]  # the messages: this line's list
    except (ValueError, SessionError) as error:
        raise CorruptSessionError(f"{at}: {error}") from None
    return StoredSession(metadata, messages)


def records(file: IO[bytes], where: str) -> tuple[int | None, Iterator[StoredSession]]:
    """The session count an export's header announces, and its sessions, read a line at a time."""
    with named_faults(where):
        first = file.readline()
    try:
        header = loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise CorruptSessionError(f"{where}: not a simulacra-session export (its first line is no header)")
    version, total = header.get("version"), header.get("sessions")
    if type(version) is not int or version != EXPORT_VERSION:  # not True, 1.0 or "1"
        raise CorruptSessionError(
            f"{where}: export version {shown(version)}; this release reads version {EXPORT_VERSION}"
        )
    if total is not None and (type(total) is not int or not 0 <= total <= _MOST):
        raise CorruptSessionError(f"{where}: its header's session count {shown(total)} is no count")

    def sessions() -> Iterator[StoredSession]:
        count = 0
        for number in itertools.count(2):
            with named_faults(where):
                line = file.readline()
            if not line:
                break
            if line.strip():
                count += 1
                yield _parse_record(line, f"{where}:{number}")
        if total is not None and count != total:
            raise CorruptSessionError(
                f"{where}: {count} sessions where its header announces {total}: cut short?"
            )

    return total, sessions()


@contextmanager
def opened(source: str | os.PathLike[str] | IO[bytes], rereads: bool) -> Iterator[tuple[IO[bytes], str]]:
    """``source`` as a binary file and its name; a stream read twice (``rereads``) that cannot
    seek is spooled to a temporary file first."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as file:
            yield file, os.fspath(source)
        return
    where = str(getattr(source, "name", "<stream>"))
    with named_faults(where):
        seekable = source.seekable()
    if not rereads or seekable:
        yield source, where
        return
    with spool() as spooled:
        while True:
            with named_faults(where):
                chunk = source.read(_CHUNK)
            if not chunk:
                break
            spooled.write(chunk)
        yield spooled.rewound(), where
