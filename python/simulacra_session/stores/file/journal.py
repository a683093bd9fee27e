"""The journal file format: one session per ``{id}.jsonl``, one JSON value per line.

Lines, in order (format version 2)::

    ["simulacra-session",2,{metadata},"c"]      header: format name, version, metadata
    {message}                                   a message (a JSON object, written as is)
    ["message",value]                           a message that is not a JSON object (rare)
    ["metadata",null,"b","c"]                   seal record: after each 64 KiB of message lines
    ["metadata",{metadata},"b","c"]             commit record: ends every append

``c`` is each record's checksum and ``b`` the checksum of the message lines a commit or
seal record follows (8 hex digits each; see ``records``). A full write is the header, the
messages and (when there are messages) a commit record, written atomically to a new file.
An append adds message lines and one commit record in one write, so the inode, and the
fork index's hard link to it, never change. A commit record keeps the first
``message_count`` of the messages before it: an append's keeps them all, and a truncation
record (``truncation``) commits no line and keeps fewer.

The committed state is the last commit record (or the header) that verifies, with every
record and line before it, and its ``message_count`` messages. What follows it is an append
a crash cut short, or damage (``torn.cut_short`` tells which): it is left out when read
(with a warning and ``Journal.damage``), and, when damage, a copy of the file is kept
before the next write cuts or replaces it. Version 1 (the same lines without checksums) is
still read, as it always was, and rewritten in version 2 by the first write. ``tail``
reads a journal from its end.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..._backend import dumps, loads, loads_lines
from ..._shown import shown
from ...errors import CorruptSessionError
from ...messages import JsonObject
from ...models import auto_saved_metadata, merge_metadata, metadata_from_stored
from .._codec import TOO_DEEP, encode_messages, encode_metadata, too_deep
from .files import naming, pwrite_all
from .records import COMMIT_PREFIX, MESSAGE_PREFIX, SEAL_PREFIX, batch_seal, checksum, seal, sealed, verified
from .torn import cut_short

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Journal",
    "JournalState",
    "build_append",
    "check_version",
    "compaction_due",
    "describes",
    "encode_append",
    "encode_full",
    "message_lines",
    "parse_journal",
    "tail_metadata",
    "write_known",
]

FORMAT_NAME = "simulacra-session"
FORMAT_VERSION = 2
_VERSIONS = (1, 2)  # read; the first write rewrites version 1 in this one

_HEADER_PREFIX = b'["' + FORMAT_NAME.encode() + b'",'
_COMMIT_PREFIX = COMMIT_PREFIX
_log = logging.getLogger("simulacra_session")


@dataclass(frozen=True)
class Journal:
    """What a journal file holds once its torn tail (if any) is set aside.

    ``committed_end`` is the byte offset just past the last commit record that verifies: an
    append truncates the file there first when ``torn`` bytes follow it (a copy of the file
    kept first unless they are an append cut short: ``torn.keep_damage``), which ``damage``
    then describes.
    """

    metadata: dict[str, Any]
    messages: list[Any]
    committed_end: int
    torn: int
    superseded: int
    last_commit: int
    version: int = FORMAT_VERSION
    damage: CorruptSessionError | None = field(default=None, compare=False)


def encode_full(metadata: bytes, lines: list[bytes]) -> tuple[bytes, int, int]:
    """The whole file for a session: header, message ``lines``, commit record.

    ``metadata`` is the metadata's JSON. Returns the bytes, the size of the metadata they
    already supersede (the header's, when a commit record follows) and the size of the last.
    """
    header = seal(b'["%b",%d,%b,' % (FORMAT_NAME.encode(), FORMAT_VERSION, metadata))
    if not lines:
        return header, 0, len(header)
    joined = b"\n".join(lines) + b"\n"
    batch, commit = _committed(metadata, joined, checksum(header[:-1]) or 0)
    return header + batch + commit, len(header) + len(batch) - len(joined), len(commit)


def _commit(metadata: bytes, batch: bytes | memoryview, seed: int) -> bytes:
    """The commit record of ``metadata`` after the message lines ``batch``, which follow a record
    whose checksum is ``seed``."""
    return seal(b'["metadata",%b,"%b",' % (metadata, batch_seal(batch, seed)))


def _committed(metadata: bytes, batch: bytes, seed: int) -> tuple[bytes, bytes]:
    """The message lines ``batch`` (sealed, when long: ``records.sealed``) after a record whose
    checksum is ``seed``, and the commit record of ``metadata`` that follows them."""
    written, last, seed = sealed(batch, seed)
    return written, _commit(metadata, memoryview(written)[last:], seed)


def _commit_record(line: bytes, version: int) -> dict[str, Any] | None:
    """The metadata of a commit record or header line of a journal of ``version``, ``None`` when
    the line is neither (or, in version 2, does not verify), or cannot be read (``_read_record``).

    A header must name ``version`` (see ``check_version``).
    """
    record = _read_record(line, version)
    return record if isinstance(record, dict) else None


def _read_record(line: bytes, version: int) -> dict[str, Any] | str:
    """``_commit_record``'s metadata, or why there is none: ``""`` when ``line`` is no record
    (or, in version 2, does not verify), else what keeps it from being read (the parser's
    error, or the shape it lacks)."""
    header = line.startswith(_HEADER_PREFIX)
    if not header and not line.startswith(_COMMIT_PREFIX):
        return ""
    if version > 1 and checksum(line) is None:
        return ""
    try:
        record = loads(line)
    except ValueError as error:
        return str(error)
    index = 2 if header else 1  # where the metadata is
    size = 4 if version > 1 else index + 1
    if not (isinstance(record, list) and len(record) == size and isinstance(record[index], dict)):
        shape = "[name, version, {metadata}" if header else '["metadata", {metadata}'
        return f"it is not {shape}{', checksums' if version > 1 else ''}]"
    if header and check_version(line, "") != version:
        return f"its version is not the file's ({version})"
    return record[index]  # type: ignore[no-any-return]


def _unreadable(path: str, data: bytes, start: int, fault: str) -> CorruptSessionError:
    """The error of a journal whose state record at ``start`` (the header, or the commit record
    that is the last to verify) cannot be read for ``fault``: it names the record and why."""
    what = "header" if data.startswith(_HEADER_PREFIX, start) else "commit record"
    if too_deep(fault):
        why = f"{TOO_DEEP} ({fault} of the record); a save now refuses such a value, release 0.1.0 did not"
    else:
        why = f"verifies but cannot be read: {fault}"
    problem = f"corrupt session file {path}: its {what} at offset {start} {why}"
    return CorruptSessionError(problem, path=path, offset=start)


def check_version(data: bytes, path: str) -> int | None:
    """The format version of the header ``data`` (a journal's first bytes) starts with;
    ``None`` when they start with none (or one cut short). ``CorruptSessionError`` (naming
    ``path``, when given) for a version this release does not read, such as a later one."""
    comma = data.find(b",", len(_HEADER_PREFIX))
    if not data.startswith(_HEADER_PREFIX) or comma < 0:  # none, or cut: not a version to judge
        return None
    version = data[len(_HEADER_PREFIX) : comma].strip(b" \t\r\n")
    if version not in (b"%d" % known for known in _VERSIONS):
        where = f" in {path}" if path else ""
        problem = f"unsupported journal version {version.decode(errors='replace')}{where}"
        raise CorruptSessionError(problem, path=path or None, offset=len(_HEADER_PREFIX))
    return int(version)


def parse_journal(data: bytes, path: str) -> Journal:
    """Read a journal: its last state that verifies, and what follows it left out, with a
    warning naming ``path`` (``Journal.damage``).

    Raises ``CorruptSessionError`` naming ``path`` (and, in version 2, the offset) when no
    state verifies, or (in version 1, which has no checksums) the committed part is
    damaged; naming the record and why when the last state record cannot be read (it
    verifies, or in version 1 nests deeper than a load reads: ``TOO_DEEP``; never taken for
    damage, as no earlier state stands in for it). Works on offsets into ``data``: only the
    lines it looks at are copied out.
    """
    if check_version(data, path) == FORMAT_VERSION:
        first = data.find(b"\n") + 1
        seed = checksum(data[: first - 1]) if first else None
        if seed is None:
            problem = f"corrupt session file {path}: its header does not verify (offset 0)"
            raise CorruptSessionError(problem, path=path, offset=0)
        start, end = verified(data, first, seed)
        record = _read_record(data[start : end - 1], FORMAT_VERSION)
        if isinstance(record, str):  # it verifies: written so, never damage
            raise _unreadable(path, data, start, record)
        metadata: dict[str, Any] | None = record
        version = FORMAT_VERSION
    else:  # version 1: the last complete commit record (or the header), looked for from the end
        end = data.rfind(b"\n") + 1  # what follows is empty, or a torn partial line
        metadata = None
        while end > 0:
            start = data.rfind(b"\n", 0, end - 1) + 1
            record = _read_record(data[start : end - 1], 1)
            if isinstance(record, dict):
                metadata = record
                break
            if too_deep(record):  # complete, not damage: no earlier state stands in for it
                raise _unreadable(path, data, start, record)
            end = start
        if metadata is not None and not (start == 0 or data.startswith(_HEADER_PREFIX)):
            metadata = None
        version = 1
    if metadata is None:
        raise CorruptSessionError(f"corrupt session file {path}: no journal header", path=path, offset=0)
    body = data.find(b"\n") + 1 if start > 0 else 0  # the message lines are data[body:start]
    try:
        parsed, superseded = loads_lines(data, body, start, _COMMIT_PREFIX)
    except ValueError:  # also when a line holds several values: read it as before
        parsed, superseded = _joined_lines(data[body:start], path)
    superseded += body  # the header's metadata, when a commit record followed it
    messages = [m[1] if isinstance(m, list) and len(m) == 2 and m[0] == "message" else m for m in parsed]
    count = metadata.get("message_count")
    if version > 1 and type(count) is int and count < len(messages):  # truncation records
        messages, removed = _replay(data, body, end, messages, path)
        superseded += removed
    torn = len(data) - end
    if count != len(messages):  # in version 2: the header of a file whose first commit does not verify
        problem = f"corrupt session file {path}: {len(messages)} messages, metadata says {shown(count)}"
        problem += f"; it does not verify from offset {end}" if torn and version > 1 else ""
        raise CorruptSessionError(problem, path=path, offset=end if torn else start)
    damage = None
    if torn:
        problem = f"{torn} bytes from offset {end} of {path} " + (
            "are an incomplete save cut short by a crash: it loads as its last state, and the next"
            " write cuts them off"
            if version > 1 and cut_short(data, end)
            else "do not verify (damage): it loads as its last state that does, and the next write"
            " keeps a copy of the file"
        )
        _log.warning("%s", problem)
        damage = CorruptSessionError(problem, path=path, offset=end)
    return Journal(metadata, messages, end, torn, superseded, end - start, version, damage)


def _replay(data: bytes, body: int, end: int, lines: list[Any], path: str) -> tuple[list[Any], int]:
    """The messages of the journal ``data`` whose records up to ``end`` removed some of its
    message ``lines`` (those from ``body`` on, parsed), and the bytes of the lines removed.

    A commit record that commits no line, directly after another state record (the header or
    a commit record), keeps the first ``message_count`` of the messages before it: a
    truncation record (an append of metadata alone keeps them all).
    """
    live: list[tuple[int, int]] = []  # index into ``lines`` and size of each message kept
    line = removed = committed = 0  # lines so far, bytes removed, lines since the last state record
    position = body
    while position < end:
        record = data.find(b"\n" + _COMMIT_PREFIX, position - 1) + 1
        sizes = [len(text) + 1 for text in data[position:record].split(b"\n")[:-1]]
        live += zip(range(line, line + len(sizes)), sizes, strict=True)
        line, committed = line + len(sizes), committed + len(sizes)
        position = data.find(b"\n", record) + 1
        if data.startswith(SEAL_PREFIX, record):
            continue
        if not committed:
            read = _read_record(data[record : position - 1], FORMAT_VERSION)
            if isinstance(read, str):
                raise _unreadable(path, data, record, read)
            kept = read.get("message_count")
            if type(kept) is not int or not 0 <= kept <= len(live):
                problem = f"corrupt session file {path}: a record keeps {kept!r} of {len(live)} messages"
                raise CorruptSessionError(problem, path=path, offset=record)
            removed += sum(size for _, size in live[kept:])
            del live[kept:]
        committed = 0
    return [lines[index] for index, _ in live], removed


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


def tail_metadata(tail: bytes, starts_file: bool, version: int | None) -> dict[str, Any] | None:
    """The committed metadata found in the last bytes of a journal of ``version``, without
    reading messages.

    ``tail`` holds the file's last bytes (all of it when ``starts_file``). Returns ``None``
    when no complete commit record lies within it, or (version 2) the last one does not
    verify, or the version is unknown, or the header is the last record and message lines
    follow it (its first write's commit record is cut or damaged: a load finds the file
    corrupt, as the caller will once it reads the whole file).
    """
    if version is None:
        return None
    end = tail.rfind(b"\n")  # complete lines end with one: what follows is empty or torn
    first = 0 if starts_file else tail.find(b"\n") + 1  # the tail's first line may be cut
    lines_after = False  # message lines after the record looked at
    while end >= first:  # from the last line backwards, copying out only the line looked at
        start = tail.rfind(b"\n", 0, end) + 1
        line = tail[start:end]
        metadata = _read_record(line, version)
        if isinstance(metadata, dict):
            header = line.startswith(_HEADER_PREFIX)
            return None if header and lines_after and metadata.get("message_count") != 0 else metadata
        if (version > 1 or too_deep(metadata)) and line.startswith((_COMMIT_PREFIX, _HEADER_PREFIX)):
            return None  # a record that does not verify, or is read by none: load takes the whole file
        lines_after = True
        end = start - 1
    return None


def message_lines(session_id: str, messages: Sequence[JsonObject], offset: int) -> list[bytes]:
    """Message lines of session ``session_id``: objects (any ``Mapping``) as they are, other
    JSON values wrapped as ``["message", v]``."""
    lines = encode_messages(session_id, messages, offset)
    for index, message in enumerate(messages):
        if not isinstance(message, dict) and not isinstance(message, Mapping):
            lines[index] = MESSAGE_PREFIX + lines[index] + b"]"
    return lines


def encode_append(state: JournalState, lines: Sequence[bytes], meta_json: bytes) -> tuple[bytes, int]:
    """The bytes appending message ``lines`` (``message_lines``) and a commit record of
    ``meta_json`` to the journal ``state`` describes, and the commit record's size (newline
    included)."""
    batch, commit = _committed(meta_json, b"\n".join(lines) + b"\n" if lines else b"", state.checksum)
    return batch + commit, len(commit)


@dataclass(slots=True)
class JournalState:
    """What this process knows of a journal file, so an append needs no read."""

    path: str
    inode: int
    end: int  # committed size: an append writes here
    meta: dict[str, Any]  # the committed metadata, as stored (no id)
    count: int
    superseded: int  # bytes of records that later ones replaced, and of messages truncations removed
    tail: bytes  # the newest metadata record, newline included: the file must end with it
    stamp: tuple[str, int] | None = None  # ``updated_at`` and its instant, when an auto-save made it
    version: int = FORMAT_VERSION  # only this version is appended to

    @property
    def checksum(self) -> int:
        """The checksum of the newest record, which an append's commit record chains on."""
        return int(self.tail[-11:-3], 16)

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
    """Whether superseded records and removed messages outweigh the rest of the journal."""
    return state.superseded > state.end - state.superseded


#: An append built from a journal's state: its bytes, the size of its commit record, the
#: metadata that record holds and its stamp (an auto-save's).
Built = tuple[bytes, int, dict[str, Any], tuple[str, int] | None]


def build_append(
    session_id: str, state: JournalState, messages: Sequence[JsonObject], given: Mapping[str, Any] | None
) -> Built | None:
    """An append to the journal ``state`` knows, for the event loop; ``None`` when ``given``
    moves the session to another parent (the fork index must change too: a worker thread
    does that)."""
    count = state.count + len(messages)
    if not given:  # an auto-save: merge_metadata's rule, without the model
        meta, stamp = auto_saved_metadata(state.meta, count, state.stamp)
        lines = message_lines(session_id, messages, state.count)
        return (*encode_append(state, lines, dumps(meta)), meta, stamp)
    existing = metadata_from_stored(session_id, state.meta)
    merged = merge_metadata(session_id, existing, count, given)
    if merged.parent_id != existing.parent_id:
        return None
    lines = message_lines(session_id, messages, state.count)
    return (*encode_append(state, lines, encode_metadata(merged)), merged.to_json_dict(), None)


def describes(fd: int, state: JournalState) -> bool:
    """Whether the open, locked journal ``fd`` is the one ``state`` describes: its inode, its
    size, and the record it ends with (a file that reused the inode number at the same size
    differs there)."""
    stat = os.fstat(fd)
    if stat.st_ino != state.inode or stat.st_size != state.end:
        return False
    tail = state.tail
    return not hasattr(os, "pread") or os.pread(fd, len(tail), state.end - len(tail)) == tail


def write_known(fd: int, state: JournalState, payload: bytes) -> bool:
    """Append ``payload`` to the open, locked journal if it is the one ``state`` describes
    (``describes``). ``False``: nothing written. The one check-and-write of every journal
    append, on the event loop or in a worker thread."""
    if not describes(fd, state):
        return False
    with naming(state.path):
        pwrite_all(fd, payload, state.end)
    return True
