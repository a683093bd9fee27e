"""Reading a journal from its end: the last messages of a session without reading the rest.

The reader starts at the journal's last record (a state record: its commit record, or the
header of a journal without one), whose own checksum vouches for the metadata it returns,
and walks back line by line, reading the file backwards in growing chunks. Each record it
passes (commit, truncation or seal) must verify, and so must the lines between two of them
against the later one's batch checksum seeded with the earlier one's checksum: so every
byte from the first message it returns to the journal's end is checked, as ``load``
checks them. It stops at the first record before the messages it returns, which writes
put at most ``records.SEAL_EVERY`` bytes of lines apart: the cost depends on what it returns
and on what follows (later messages, messages truncated since, records), not on the
journal's length.

What it does not check is what lies before that record. A journal damaged there alone
loads (``load``) as its last state before the damage, with ``StoredSession.damage``, while
its tail reads as the state its last record commits. Anything the reader finds that does not
verify, or a journal it cannot walk (version 1, a torn tail), is left to ``load``: the
caller reads the whole file instead (``None``).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..._backend import loads_lines
from ..._beneath import open_nofollow
from ...errors import CorruptSessionError
from ...models import StoredSession, metadata_from_stored
from .files import OPEN_RO, read_from, regular
from .journal import FORMAT_VERSION, _commit_record, check_version
from .records import COMMIT_PREFIX, SEAL_PREFIX, checksum

if TYPE_CHECKING:
    from . import FileSessionStore

__all__ = ["Tail", "load_tail_sync", "read_tail", "tail_of"]

_CHUNK = 16 * 1024  # the first read from the end; each further one doubles, up to _MAX_CHUNK
_MAX_CHUNK = 1 << 20
_HEADER = 64  # the bytes read from the start for the header's version


@dataclass(frozen=True)
class Tail:
    """The last state of a journal and messages ``[start, stop)`` of it, oldest first."""

    metadata: dict[str, Any]
    messages: list[Any]
    start: int
    size: int  # bytes of the lines of ``messages``, newlines included


class _Backwards:
    """A file's bytes from some offset to ``size``, read backwards in growing chunks."""

    __slots__ = ("data", "fd", "offset", "want")

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.offset = size  # where ``data`` starts in the file
        self.data = b""
        self.want = _CHUNK

    def more(self) -> bool:
        """Read the chunk before ``data``; ``False`` at the start of the file (or when it shrank)."""
        if self.offset == 0:
            return False
        start = max(0, self.offset - self.want)
        chunk = read_from(self.fd, start, self.offset - start, to_end=False)
        if len(chunk) != self.offset - start:
            return False  # cut short meanwhile (a torn tail cut off): ``load`` judges
        self.data, self.offset = chunk + self.data, start
        self.want = min(self.want * 2, _MAX_CHUNK)
        return True

    def line_before(self, end: int) -> int | None:
        """Where the line ending just before the file offset ``end`` (its newline at ``end - 1``)
        starts; ``None`` when it cannot be read."""
        while True:
            found = self.data.rfind(b"\n", 0, max(end - 1 - self.offset, 0))
            if found >= 0:
                return self.offset + found + 1
            if self.offset == 0:
                return 0
            if not self.more():
                return None

    def slice(self, start: int, end: int) -> bytes:
        """The file's bytes ``[start, end)`` (read already)."""
        return self.data[start - self.offset : end - self.offset]


def _count(record: dict[str, Any]) -> int | None:
    found = record.get("message_count")
    return found if type(found) is int and found >= 0 else None


def read_tail(fd: int, size: int, count: int, end: int | None) -> Tail | None:
    """The journal ``fd``'s (of ``size`` bytes) last state and its messages ``[max(0, stop - count),
    stop)``, ``stop`` being ``end`` clamped to the state's ``message_count``; ``None`` when
    anything read does not verify or fit (the caller loads the whole journal instead).
    """
    try:
        if check_version(read_from(fd, 0, min(size, _HEADER), to_end=False), "") != FORMAT_VERSION:
            return None
    except CorruptSessionError:  # another version: ``load`` names the file
        return None
    reader = _Backwards(fd, size)
    if not reader.more() or not reader.data.endswith(b"\n"):
        return None
    position = reader.line_before(size)
    if position is None:
        return None
    line = reader.slice(position, size - 1)
    top = _commit_record(line, FORMAT_VERSION)
    total = _count(top) if top is not None else None
    if top is None or total is None or (position == 0 and total != 0):
        return None
    stop = total if end is None else min(end, total)
    start = max(0, stop - count)
    wanted: list[bytes] = []
    floor = index = total  # messages from ``floor`` on were removed; ``index``: the next line's, plus one
    committed = 0  # lines read since the last state record
    above, above_start = line, position  # the record whose lines are being read
    line_end = position
    while position > 0 and (len(wanted) < stop - start or line_end != above_start):
        position = reader.line_before(line_end)
        if position is None:
            return None
        line = reader.slice(position, line_end - 1)
        if not (position == 0 or line.startswith(COMMIT_PREFIX)):  # a message line
            index, committed = index - 1, committed + 1
            if index < 0:
                return None
            if start <= index < min(stop, floor):
                wanted.append(line)
            line_end = position
            continue
        seed = checksum(line)  # the record before ``above``: its lines must chain on it
        batch = reader.slice(line_end, above_start)
        if seed is None or above[-21:-13] != b"%08x" % zlib.crc32(batch, seed):
            return None
        if not line.startswith(SEAL_PREFIX):
            record = _commit_record(line, FORMAT_VERSION)
            kept = 0 if position == 0 else _count(record) if record is not None else None
            if kept is None or record is None or (kept != index if committed else kept < index):
                return None
            floor, index, committed = min(floor, index), kept, 0
        above, above_start = line, position
        line_end = position
    if len(wanted) != stop - start:
        return None
    try:
        parsed, _ = loads_lines(b"".join(text + b"\n" for text in reversed(wanted)))
    except ValueError:
        return None
    messages = [m[1] if isinstance(m, list) and len(m) == 2 and m[0] == "message" else m for m in parsed]
    return Tail(top, messages, start, sum(len(text) + 1 for text in wanted))


def tail_of(stored: StoredSession, count: int, end: int | None) -> StoredSession:
    """``stored`` with its messages ``[max(0, stop - count), stop)`` alone, ``stop`` being ``end``
    clamped to its ``message_count``."""
    total = len(stored.messages)
    stop = total if end is None else min(end, total)
    messages = stored.messages[max(0, stop - count) : stop]
    return StoredSession(stored.metadata, messages, stored.parent_copy, stored.damage)


def load_tail_sync(
    store: FileSessionStore, session_id: str, count: int, end: int | None
) -> StoredSession | None:
    """``FileSessionStore.load_tail`` in a worker thread: a journal read from its end
    (``read_tail``), else the session loaded whole (a ``.json`` document: one read, parsed
    whole) and cut."""
    store._case.check(session_id)
    store._residue.first_use(session_id, lock=True)
    layout = store._layout
    newer = layout.newer_file(session_id)
    if newer is not None and newer[1] == "jsonl":
        path = layout.path(session_id, "jsonl")
        try:
            fd = open_nofollow(path, OPEN_RO)
        except FileNotFoundError:  # converted or deleted meanwhile: loaded as it is now
            fd = -1
        if fd >= 0:
            try:
                read = regular(fd, path)
                found = read_tail(fd, read.st_size, count, end)
            finally:
                os.close(fd)
            if found is not None and store._case.owns(session_id, "jsonl", read.st_ino):
                try:
                    return StoredSession(metadata_from_stored(session_id, found.metadata), found.messages)
                except ValidationError:
                    pass  # ``load`` names the file
    stored = store._load_sync(session_id)
    return None if stored is None else tail_of(stored, count, end)
