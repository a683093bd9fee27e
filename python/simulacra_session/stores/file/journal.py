"""The journal file format: one session per ``{id}.jsonl``, one JSON value per line.

Lines, in order::

    ["simulacra-session",1,{metadata}]     header: format name, version, metadata
    {message}                              a message (a JSON object, written as is)
    ["message",value]                      a message that is not a JSON object (rare)
    ["metadata",{metadata}]                commit record: ends every append

A full write is the header, the messages and (when there are messages) a commit record,
written atomically to a new file. An append adds message lines and one commit record in
one write, so the inode, and the fork index's hard link to it, never change.

The committed state is the last complete commit record (or the header) and the
``message_count`` message lines before it. Anything after it is a torn append from a
crash: it is dropped when read, and truncated before the next append.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..._backend import dumps, loads, loads_lines
from ...errors import CorruptSessionError
from ...messages import Message
from ...models import auto_saved_metadata, merge_metadata, metadata_from_stored
from .._codec import encode_messages, encode_metadata
from .files import naming, pwrite_all

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Journal",
    "JournalState",
    "build_append",
    "check_version",
    "compaction_due",
    "encode_append",
    "encode_full",
    "message_lines",
    "parse_journal",
    "tail_metadata",
    "write_known",
]

FORMAT_NAME = "simulacra-session"
FORMAT_VERSION = 1

_HEADER_PREFIX = b'["' + FORMAT_NAME.encode() + b'",'
_COMMIT_PREFIX = b'["metadata",'
_MESSAGE_PREFIX = b'["message",'
_log = logging.getLogger("simulacra_session")


@dataclass(frozen=True)
class Journal:
    """What a journal file holds once its torn tail (if any) is set aside.

    ``committed_end`` is the byte offset just past the last commit record: an append
    truncates the file there first when ``torn`` bytes follow it.
    """

    metadata: dict[str, Any]
    messages: list[Any]
    committed_end: int
    torn: int
    superseded: int
    last_commit: int


def encode_full(metadata: bytes, lines: list[bytes]) -> tuple[bytes, int, int]:
    """The whole file for a session: header, message ``lines``, commit record.

    ``metadata`` is the metadata's JSON. Returns the bytes, the size of the metadata they
    already supersede (the header's, when a commit record follows) and the size of the last.
    """
    header = b'["%b",%d,%b]' % (FORMAT_NAME.encode(), FORMAT_VERSION, metadata)
    if not lines:
        return header + b"\n", 0, len(header) + 1
    commit = b'["metadata",%b]' % metadata
    return b"\n".join([header, *lines, commit]) + b"\n", len(header) + 1, len(commit) + 1


def _commit_record(line: bytes) -> dict[str, Any] | None:
    """The metadata of a commit record or header line, ``None`` when the line is neither.

    A header must name this format version (see ``check_version``).
    """
    header = line.startswith(_HEADER_PREFIX)
    if not header and not line.startswith(_COMMIT_PREFIX):
        return None
    try:
        record = loads(line)
    except ValueError:
        return None
    if not (
        isinstance(record, list) and len(record) == (3 if header else 2) and isinstance(record[-1], dict)
    ):
        return None
    if header:
        check_version(line, "")
    return record[-1]


def check_version(data: bytes, path: str) -> None:
    """``CorruptSessionError`` (naming ``path``, when given) unless ``data``, from a journal's
    start, has a header of this format version: a later version is not read as this one."""
    comma = data.find(b",", len(_HEADER_PREFIX))
    if not data.startswith(_HEADER_PREFIX) or comma < 0:  # none, or cut: not a version to judge
        return
    version = data[len(_HEADER_PREFIX) : comma].strip(b" \t\r\n")
    if version != b"%d" % FORMAT_VERSION:
        where = f" in {path}" if path else ""
        raise CorruptSessionError(f"unsupported journal version {version.decode(errors='replace')}{where}")


def parse_journal(data: bytes, path: str) -> Journal:
    """Read a journal, dropping a torn tail (with a warning naming ``path``).

    Raises ``CorruptSessionError`` naming ``path`` when the committed part is damaged.
    Works on offsets into ``data``: only the lines it looks at are copied out.
    """
    check_version(data, path)
    # The last complete commit record (or the header), looked for from the end backwards.
    complete = data.rfind(b"\n") + 1  # what follows is empty, or a torn partial line
    end = complete
    metadata: dict[str, Any] | None = None
    while end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        metadata = _commit_record(data[start : end - 1])
        if metadata is not None:
            break
        end = start
    if metadata is None or not (start == 0 or data.startswith(_HEADER_PREFIX)):
        raise CorruptSessionError(f"corrupt session file {path}: no journal header")
    torn = len(data) - end
    if torn:
        _log.warning("dropping %d bytes of an incomplete save at the end of %s", torn, path)
    body = data.find(b"\n") + 1 if start > 0 else 0  # the message lines are data[body:start]
    last_commit = end - start
    try:
        parsed, superseded = loads_lines(data, body, start, _COMMIT_PREFIX)
    except ValueError:  # also when a line holds several values: read it as before
        parsed, superseded = _joined_lines(data[body:start], path)
    superseded += body  # the header's metadata, when a commit record followed it
    messages = [m[1] if isinstance(m, list) and len(m) == 2 and m[0] == "message" else m for m in parsed]
    count = metadata.get("message_count")
    if count != len(messages):
        raise CorruptSessionError(
            f"corrupt session file {path}: {len(messages)} messages, metadata says {count!r}"
        )
    return Journal(metadata, messages, end, torn, superseded, last_commit)


def _joined_lines(lines: bytes, path: str) -> tuple[list[Any], int]:
    """The message lines read as the items of one JSON array, and the commit records' size."""
    body = lines.split(b"\n")[:-1]
    message_lines = [line for line in body if not line.startswith(_COMMIT_PREFIX)]
    superseded = sum(len(line) + 1 for line in body if line.startswith(_COMMIT_PREFIX))
    try:
        parsed = loads(b"[" + b",".join(message_lines) + b"]")
    except ValueError as error:
        raise CorruptSessionError(f"corrupt session file {path}: {error}") from None
    assert isinstance(parsed, list)
    return parsed, superseded


def tail_metadata(tail: bytes, starts_file: bool) -> dict[str, Any] | None:
    """The committed metadata found in the last bytes of a journal, without reading messages.

    ``tail`` holds the file's last bytes (all of it when ``starts_file``). Returns ``None``
    when no complete commit record lies within it; the caller then reads the whole file.
    """
    end = tail.rfind(b"\n")  # complete lines end with one: what follows is empty or torn
    first = 0 if starts_file else tail.find(b"\n") + 1  # the tail's first line may be cut
    while end >= first:  # from the last line backwards, copying out only the line looked at
        start = tail.rfind(b"\n", 0, end) + 1
        metadata = _commit_record(tail[start:end])
        if metadata is not None:
            return metadata
        end = start - 1
    return None


def message_lines(messages: Sequence[Message], offset: int) -> list[bytes]:
    """Message lines: objects as they are, other JSON values wrapped as ``["message", v]``."""
    lines = encode_messages(messages, offset)
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            lines[index] = _MESSAGE_PREFIX + lines[index] + b"]"
    return lines


def encode_append(messages: Sequence[Message], offset: int, meta_json: bytes) -> tuple[bytes, int]:
    """The bytes appending ``messages`` (after ``offset`` stored ones) and a commit record of
    ``meta_json`` to a journal, and the commit record's size (newline included)."""
    lines = message_lines(messages, offset)
    commit = _COMMIT_PREFIX + meta_json + b"]\n"
    lines.append(commit)
    return b"\n".join(lines), len(commit)


@dataclass(slots=True)
class JournalState:
    """What this process knows of a journal file, so an append needs no read."""

    path: str
    inode: int
    end: int  # committed size: an append writes here
    meta: dict[str, Any]  # the committed metadata, as stored (no id)
    count: int
    superseded: int  # bytes of metadata records that later ones replaced
    tail: bytes  # the newest metadata record, newline included: the file must end with it
    stamp: tuple[str, int] | None = None  # ``updated_at`` and its instant, when an auto-save made it

    def advance(
        self,
        payload: bytes,
        meta: dict[str, Any],
        added: int,
        commit: int,
        stamp: tuple[str, int] | None = None,
    ) -> None:
        """``payload`` (``added`` messages, then a commit record of ``commit`` bytes, holding
        ``meta``, stamped ``stamp`` when known) was appended: what is known of the file follows."""
        self.end += len(payload)
        self.meta = meta
        self.stamp = stamp
        self.count += added
        self.superseded += len(self.tail)
        self.tail = payload[-commit:]


def compaction_due(state: JournalState) -> bool:
    """Whether superseded metadata records outweigh the rest of the journal."""
    return state.superseded > state.end - state.superseded


#: An append built from a journal's state: its bytes, the size of its commit record, the
#: metadata that record holds and its stamp (an auto-save's).
Built = tuple[bytes, int, dict[str, Any], tuple[str, int] | None]


def build_append(
    session_id: str, state: JournalState, messages: Sequence[Message], given: Mapping[str, Any] | None
) -> Built | None:
    """An append to the journal ``state`` knows, for the event loop; ``None`` when ``given``
    moves the session to another parent (the fork index must change too: a worker thread
    does that)."""
    count = state.count + len(messages)
    if not given:  # an auto-save: merge_metadata's rule, without the model
        meta, stamp = auto_saved_metadata(state.meta, count, state.stamp)
        return (*encode_append(messages, state.count, dumps(meta)), meta, stamp)
    existing = metadata_from_stored(session_id, state.meta)
    merged = merge_metadata(session_id, existing, count, given)
    if merged.parent_id != existing.parent_id:
        return None
    return (*encode_append(messages, state.count, encode_metadata(merged)), merged.to_json_dict(), None)


def write_known(fd: int, state: JournalState, payload: bytes) -> bool:
    """Append ``payload`` to the open, locked journal if it is the one ``state`` describes:
    its inode, its size, and the record it ends with (a file that reused the inode number at
    the same size differs there). ``False``: nothing written. The one check-and-write of
    every journal append, on the event loop or in a worker thread."""
    stat = os.fstat(fd)
    if stat.st_ino != state.inode or stat.st_size != state.end:
        return False
    tail = state.tail
    if hasattr(os, "pread") and os.pread(fd, len(tail), state.end - len(tail)) != tail:
        return False
    with naming(state.path):
        pwrite_all(fd, payload, state.end)
    return True
