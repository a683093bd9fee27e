"""FileSessionStore: one file per session on disk, as a journal or in the original layout.

Layout under ``root``::

    {id}.jsonl                   a session journal (``format="jsonl"``, the default; see ``_journal``)
    {id}.json                    a session document, the original library's layout (``format="json"``)
    {parent_id}-forks/{id}.jsonl hard link to a fork's current file: the fork index (or ``.json``)
    .no-hard-links               marker: the file system has no hard links, forks() scans
    {id}.json.corrupt-<time>     an unreadable file set aside by a save, never deleted

Journal saves append the new messages and a commit record with one write and one
fdatasync, so an auto-save costs what its new messages cost; full rewrites are atomic
renames. A session found in the other format is read, and converted on its next save.
Blocking work runs in a worker thread; a lock per id serializes writes within the process
and ``flock`` on the session file serializes them across processes. ``OSError`` propagates.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any, Literal

from pydantic import ValidationError

from .._backend import BACKEND, atomic_write, dumps, link_fork, read_cached, stamps
from .._lru import LRU
from .._writer import COMPLETE, Complete
from ..errors import CorruptSessionError
from ..ids import SESSION_ID_PATTERN, validate_session_id
from ..messages import Message
from ..models import (
    SessionMetadata,
    StoredSession,
    auto_saved_metadata,
    copy_metadata,
    merge_metadata,
    metadata_from_stored,
)
from . import _journal
from ._codec import (
    check_save_args,
    decode_session,
    encode_messages,
    encode_metadata,
    encode_session,
    page,
)
from ._syncer import Syncer

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer process per root
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileFormat", "FileSessionStore"]

FileFormat = Literal["jsonl", "json"]
_Mode = Literal["save", "append", "compact"]  # what a rewrite writes: see _rewrite
_SUFFIXES: dict[FileFormat, str] = {"jsonl": ".jsonl", "json": ".json"}
_NO_HARD_LINKS = ".no-hard-links"
_TAILS = (4096, 64 * 1024)  # list() reads this much of a journal's end for its metadata, then this
_log = logging.getLogger("simulacra_session")
_fdatasync = getattr(os, "fdatasync", os.fsync)
_FALLBACK = -1  # _write_now: nothing written, take the worker-thread path
_OPEN_RW = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
_OPEN_RO = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_pread = getattr(os, "pread", None)
#: The compiled decoder holds the GIL from start to end, so decoding in a thread would not
#: free the loop meanwhile (and runs ~10% slower there): loads decode on the loop, and read
#: there too when the file is in memory (else in a thread). The pure twin's journal decoding
#: is Python that lets the GIL go between lines: it decodes in a thread.
_DECODE_ON_LOOP = BACKEND == "native"
_WRITES_OFF_LOOP = os.name == "posix"  # where the sync thread can check inodes (FileSyncer.append)
_SYNCER = Syncer()  # one group-commit thread for every store in the process
_SWEEP_SECONDS = 0.1  # how often a waiter for an id lock looks for appends orphaned by a closed loop


def _session_name(name: str) -> tuple[str, FileFormat] | None:
    """The id and format a directory entry stores, or ``None`` for temp files, dotfiles and the rest."""
    if name.startswith("."):
        return None
    for file_format, suffix in _SUFFIXES.items():
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return (stem, file_format) if SESSION_ID_PATTERN.fullmatch(stem) else None
    return None


def _session_files(directory: str) -> builtins.list[tuple[str, str, FileFormat]]:
    """``(name, id, format)`` of each session file in ``directory`` (none when it is missing)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return [(name, *parsed) for name in names if (parsed := _session_name(name)) is not None]


def _fsync_dir(path: str) -> None:
    """Make a directory's entries (creations, renames, unlinks) durable."""
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_from(fd: int, offset: int, size: int, *, to_end: bool = True) -> bytes:
    """``fd``'s bytes from ``offset``: to its end (``size``, its length when last stat'ed, is
    read in one call unless the file grew since), or at most ``size`` of them."""
    want = max(size - offset, 0) + 1 if to_end else size
    if _pread is not None:
        chunks = [_pread(fd, want, offset)]
    else:  # no pread here (Windows): seek, then read
        os.lseek(fd, offset, os.SEEK_SET)
        chunks = [os.read(fd, want)]
    while to_end and len(chunks[-1]) == want:  # it grew: read on to its end
        offset, want = offset + want, 1 << 20
        chunks.append(_pread(fd, want, offset) if _pread is not None else os.read(fd, want))
    return b"".join(chunks)  # a single chunk is returned as it is


_Reader = Callable[[str], tuple[bytes, int, int]]  # a file's bytes, inode and mtime (ns)


def _read_path(path: str) -> tuple[bytes, int, int]:
    """A file's bytes, inode and mtime (ns), read the blocking way."""
    fd = os.open(path, _OPEN_RO)
    try:
        stat = os.fstat(fd)
        return _read_from(fd, 0, stat.st_size), stat.st_ino, stat.st_mtime_ns
    finally:
        os.close(fd)


class _NotInMemory(Exception):
    """Reading the file would wait on the disk: the event loop leaves it to a thread."""


def _read_in_memory(path: str) -> tuple[bytes, int, int]:
    """A file's bytes, inode and mtime (ns) from memory alone, or ``_NotInMemory``."""
    found = read_cached(path)
    if found is None:
        raise _NotInMemory(path)
    return found


@contextmanager
def _naming(path: str) -> Iterator[None]:
    """Re-raise the ``OSError`` of a call that names no file (``pwrite``, ``fdatasync``) naming ``path``."""
    try:
        yield
    except OSError as error:
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror, path) from error


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _follow(future: asyncio.Future[None], step: asyncio.Future[None]) -> None:
    """Settle ``future`` as ``step`` settles; cancelling ``future`` cancels ``step``."""

    def settled(done: asyncio.Future[None]) -> None:
        if future.done():
            return
        if done.cancelled():
            future.cancel()
        elif (error := done.exception()) is not None:
            future.set_exception(error)
        else:
            future.set_result(None)

    if step.done():
        settled(step)
        return
    step.add_done_callback(settled)
    future.add_done_callback(lambda _: step.cancel() if future.cancelled() else None)


def _journal_lines(messages: Sequence[Message], offset: int) -> list[bytes]:
    """Message lines: objects as they are, other JSON values wrapped as ``["message", v]``."""
    lines = encode_messages(messages, offset)
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            lines[index] = b'["message",' + lines[index] + b"]"
    return lines


def _journal_append(messages: Sequence[Message], offset: int, meta_json: bytes) -> tuple[bytes, int]:
    """The bytes appending ``messages`` (after ``offset`` stored ones) and a commit record of
    ``meta_json`` to a journal, and the commit record's size (newline included)."""
    lines = _journal_lines(messages, offset)
    commit = b'["metadata",%b]\n' % meta_json
    lines.append(commit)
    return b"\n".join(lines), len(commit)


@dataclass(frozen=True)
class _Listed:
    """What ``list()`` keeps of one session file while its inode, size and mtime stay the same."""

    parsed: tuple[str, FileFormat]  # the id and format its name stores
    stamp: tuple[int, int, int]  # inode, size, mtime_ns
    metadata: SessionMetadata | None  # handed out as copies only; None: unreadable
    rank: tuple[float, str]  # sort key: most recently updated first, then by id


@dataclass(slots=True)
class _JournalState:
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


def _is_known(fd: int, stat: os.stat_result, state: _JournalState) -> bool:
    """Whether the open journal is the one ``state`` describes: its inode, its size, and the
    record it ends with (a file that reused the inode number at the same size differs there)."""
    if stat.st_ino != state.inode or stat.st_size != state.end:
        return False
    tail = state.tail
    return not hasattr(os, "pread") or os.pread(fd, len(tail), state.end - len(tail)) == tail


def _compaction_due(state: _JournalState) -> bool:
    """Whether superseded metadata records outweigh the rest of the journal."""
    return state.superseded > state.end - state.superseded


#: An append built on the event loop (``_build_append``): its bytes, the size of its commit
#: record, the metadata that record holds and its stamp (an auto-save's).
_Built = tuple[bytes, int, dict[str, Any], tuple[str, int] | None]


@dataclass(slots=True)
class _Pending:
    """An append prepared on the event loop: its bytes, where they go, the state they lead
    to; for a durable one, also the sync thread's token (``_syncer.Landing``)."""

    store: FileSessionStore
    session_id: str
    state: _JournalState
    payload: bytes
    meta: dict[str, Any]
    messages: list[Message]
    given: Mapping[str, Any] | None
    commit: int  # size of its commit record
    lock: threading.Lock  # the id lock, held until the bytes are in the file (or not)
    loop: asyncio.AbstractEventLoop
    stamp: tuple[str, int] | None  # its ``updated_at`` and that instant, for an auto-save
    future: asyncio.Future[None] | None = None
    on_landed: Callable[[asyncio.Future[None]], None] | None = None  # called once ``future`` is done

    @property
    def path(self) -> str:
        """The journal it goes to."""
        return self.state.path

    def landed(self, errno: int, written: bool) -> None:
        self.store._landed(self, errno, written)

    def orphaned(self, errno: int, written: bool) -> None:
        self.store._settle_pending(self, written)

    def resolved(self, future: asyncio.Future[None]) -> None:
        """``future`` is done: tell ``on_landed`` now. Its error is reported as asyncio reports
        a callback's, so the appends landing after it in the same batch still land."""
        if self.on_landed is None:
            return
        try:
            self.on_landed(future)
        except Exception as error:
            context = {"message": f"landing an append to {self.path}", "exception": error}
            self.loop.call_exception_handler(context)


class FileSessionStore:
    """A ``SessionStore`` (with ``forks`` and ``append``) keeping each session in one file.

    ``format="jsonl"`` (default) keeps journals that auto-saves append to; ``"json"`` keeps
    the original library's ``{id}.json`` documents, for directories shared with it.
    ``fsync=False`` keeps every write atomic but skips the fsyncs, trading durability across
    power loss for speed. The root directory is created on the first save.

    The store remembers where each journal it appended to ends, and its metadata, so an
    append needs no read; ``cached_sessions`` bounds how many it remembers (the most
    recently used). An append to a session it forgot reads the file once: keep the bound
    above the number of sessions a process appends to at once.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: bool = True,
        format: FileFormat = "jsonl",
        cached_sessions: int = 10_000,
    ) -> None:
        if format not in _SUFFIXES:
            raise ValueError(f"format must be 'jsonl' or 'json', got {format!r}")
        if isinstance(cached_sessions, bool) or not isinstance(cached_sessions, int) or cached_sessions < 1:
            raise ValueError(f"cached_sessions must be a positive integer, got {cached_sessions!r}")
        self._root = os.fspath(root)
        self._fsync = fsync
        self._format: FileFormat = format
        self._no_hard_links = False
        self._locks: dict[str, tuple[threading.Lock, int]] = {}
        self._locks_guard = threading.Lock()
        self._journals: LRU[str, _JournalState] = LRU(cached_sessions)
        self._listing: dict[str, _Listed] = {}  # by file name, under the root

    @property
    def root(self) -> str:
        """The directory holding the sessions."""
        return self._root

    @property
    def format(self) -> FileFormat:
        """The format new saves are written in."""
        return self._format

    def __repr__(self) -> str:
        return f"FileSessionStore({self._root!r}, fsync={self._fsync}, format={self._format!r})"

    def _path(self, session_id: str, file_format: FileFormat | None = None) -> str:
        return os.path.join(self._root, session_id + _SUFFIXES[file_format or self._format])

    def _other(self) -> FileFormat:
        return "json" if self._format == "jsonl" else "jsonl"

    def _index_dir(self, parent_id: str) -> str:
        return os.path.join(self._root, parent_id + "-forks")

    @contextmanager
    def _locked(self, session_id: str, *, blocking: bool = True) -> Iterator[bool]:
        """Hold the lock of one id (yields whether it was acquired; always, when ``blocking``).

        Locks are dropped when nobody holds or waits for them. A waiter looks for appends
        of closed event loops meanwhile: one may hold the lock, with nobody left to land it.
        """
        with self._locks_guard:
            lock, users = self._locks.get(session_id, (threading.Lock(), 0))
            self._locks[session_id] = (lock, users + 1)
        acquired = lock.acquire(False)
        while blocking and not acquired:
            _SYNCER.sweep()
            acquired = lock.acquire(timeout=_SWEEP_SECONDS)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()
            self._drop_user(session_id, lock)

    @contextmanager
    def _file_locked(self, path: str, *, creating: bool = False) -> Iterator[int | None]:
        """Open ``path`` and hold ``flock`` on the inode it names; ``None`` when it is absent.

        Re-opens when a writer in another process replaced the file while we waited, so the
        lock always covers the current file. This process's lease on it goes first (see
        ``_syncer``); another process's is waited for (250 ms once it idles). With ``creating``
        (the caller creates an absent file), the root directory is locked instead while the
        file is absent: writers in two processes creating one session take turns, and the
        second finds the first's file.
        """
        while True:
            try:
                fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
            except FileNotFoundError:
                if not creating or fcntl is None:
                    yield None
                    return
                self._make_root()
                root = os.open(self._root, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                try:
                    fcntl.flock(root, fcntl.LOCK_EX)
                    if os.path.lexists(path):
                        continue  # created meanwhile: lock the file instead
                    yield None
                    return
                finally:
                    os.close(root)  # closing releases the flock
            try:
                if fcntl is not None:
                    _SYNCER.release(path)  # this process's lease would keep the lock from us
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    try:
                        current = os.stat(path).st_ino
                    except FileNotFoundError:
                        current = -1
                    if current != os.fstat(fd).st_ino:
                        continue  # replaced meanwhile: lock the new file instead
                yield fd
                return
            finally:
                os.close(fd)  # closing releases the flock

    # -- reading -----------------------------------------------------------------------

    def _decode_journal(
        self, session_id: str, data: bytes, path: str, inode: int
    ) -> tuple[StoredSession, _JournalState]:
        """The session a journal holds, and what an append to it needs (now remembered)."""
        journal = _journal.parse_journal(data, path)
        try:
            metadata = metadata_from_stored(session_id, journal.metadata)
        except ValidationError as error:
            raise CorruptSessionError(f"corrupt session file {path}: invalid metadata: {error}") from None
        self._journals[session_id] = state = _JournalState(
            path,
            inode,
            journal.committed_end,
            journal.metadata,
            len(journal.messages),
            journal.superseded,
            data[journal.committed_end - journal.last_commit : journal.committed_end],
        )
        return StoredSession(metadata, journal.messages), state

    def _read_bytes(
        self, session_id: str, file_format: FileFormat, read: _Reader
    ) -> tuple[bytes, int, int] | None:
        """A session file's bytes, inode and mtime (ns), in one format; ``None`` when absent."""
        try:
            return read(self._path(session_id, file_format))
        except FileNotFoundError:
            return None

    def _find(self, session_id: str, read: _Reader = _read_path) -> tuple[FileFormat, bytes, int] | None:
        """The session file's format, bytes and inode: the store's format, or the other one.

        Both exist after a crash between a conversion's write and its removal of the old
        file, or in a directory shared with the original library: the newer one (by mtime,
        the store's format on a tie) holds the session then. ``read`` reads one file
        (``_read_in_memory`` raises ``_NotInMemory`` rather than wait on the disk).
        """
        own = self._read_bytes(session_id, self._format, read)
        other = self._read_bytes(session_id, self._other(), read)
        if own is None and other is None:
            return None
        if own is not None and other is not None:
            _log.warning("session %s is stored in both formats: reading the newer file", session_id)
        if other is None or (own is not None and own[2] >= other[2]):
            assert own is not None
            return self._format, own[0], own[1]
        return self._other(), other[0], other[1]

    def _decode(self, session_id: str, file_format: FileFormat, data: bytes, inode: int) -> StoredSession:
        path = self._path(session_id, file_format)
        if file_format == "jsonl":
            return self._decode_journal(session_id, data, path, inode)[0]
        return decode_session(session_id, data, f"file {path}")

    def _read(self, session_id: str, file_format: FileFormat) -> StoredSession | None:
        found = self._read_bytes(session_id, file_format, _read_path)
        return None if found is None else self._decode(session_id, file_format, *found[:2])

    def _load_sync(self, session_id: str) -> StoredSession | None:
        """The session in the store's format, else in the other one, else ``None``."""
        found = self._find(session_id)
        return None if found is None else self._decode(session_id, *found)

    def _metadata_of(self, session_id: str, file_format: FileFormat, path: str) -> SessionMetadata:
        """A session's metadata for listing, read from the journal's tail when it can be."""
        fd = os.open(path, _OPEN_RO)
        try:
            stat = os.fstat(fd)
            if file_format == "jsonl":
                found = None
                for tail in _TAILS:
                    start = max(0, stat.st_size - tail)
                    end = _read_from(fd, start, stat.st_size)
                    found = _journal.tail_metadata(end, starts_file=start == 0)
                    if found is not None or start == 0:
                        break
                if found is not None:
                    if start > 0:  # the header is not in the tail: its version, read apart
                        _journal.check_version(_read_from(fd, 0, 64, to_end=False), path)
                    try:
                        return metadata_from_stored(session_id, found)
                    except ValidationError as error:
                        raise CorruptSessionError(f"corrupt session file {path}: {error}") from None
                data = _read_from(fd, 0, stat.st_size)
                return self._decode_journal(session_id, data, path, stat.st_ino)[0].metadata
            return decode_session(session_id, _read_from(fd, 0, stat.st_size), f"file {path}").metadata
        finally:
            os.close(fd)

    def _read_listed(
        self, session_id: str, file_format: FileFormat, path: str, stamp: tuple[int, int, int]
    ) -> _Listed | None:
        """Read one file's metadata for the listing cache; ``None`` when the file is gone."""
        parsed = (session_id, file_format)
        try:
            metadata = self._metadata_of(session_id, file_format, path)
        except FileNotFoundError:
            return None
        except (CorruptSessionError, OSError) as error:
            _log.warning("skipping session file %s: %s", path, error)
            return _Listed(parsed, stamp, None, (0.0, session_id))
        return _Listed(parsed, stamp, metadata, (-metadata.updated.timestamp(), session_id))

    def _ranked(self, found: dict[str, tuple[str, FileFormat]]) -> builtins.list[SessionMetadata]:
        """The readable sessions' cached metadata, most recently updated first (hand out copies).

        A file is read only when its inode, size or mtime changed since it was last cached,
        so a warm listing costs a ``stat`` per session (all taken in one ``stamps`` call).
        """
        prefix = os.path.join(self._root, "")
        listing = self._listing
        ranked = []
        files = builtins.list(found.items())
        try:
            stamped = stamps(self._root, [name for _, (name, _) in files]) if files else []
        except FileNotFoundError:  # the root itself, removed since it was listed
            stamped = [None] * len(files)
        for (session_id, (name, file_format)), stamp in zip(files, stamped, strict=True):
            if stamp is None:  # removed since it was listed
                continue
            listed = listing.get(name)
            if listed is None or listed.stamp != stamp:
                listed = self._read_listed(session_id, file_format, prefix + name, stamp)
                if listed is None:
                    continue
                listing[name] = listed
            if listed.metadata is not None:
                ranked.append((listed.rank, listed.metadata))
        ranked.sort(key=itemgetter(0))
        return [metadata for _, metadata in ranked]

    def _newer_file(self, session_id: str) -> tuple[str, FileFormat] | None:
        """The name and format of the session's newer file, as ``_find`` chooses when both
        formats exist (by mtime, the store's format on a tie); ``None`` when neither does."""
        newest: tuple[int, str, FileFormat] | None = None
        for file_format in (self._format, self._other()):
            name = session_id + _SUFFIXES[file_format]
            try:
                mtime = os.stat(os.path.join(self._root, name)).st_mtime_ns
            except FileNotFoundError:
                continue
            if newest is None or mtime > newest[0]:
                newest = (mtime, name, file_format)
        return None if newest is None else newest[1:]

    def _current(self) -> dict[str, tuple[str, FileFormat]]:
        """Each session's file under the root (the newer, as loads read it, when it has both)."""
        try:
            names = os.listdir(self._root)
        except FileNotFoundError:
            names = []
        listing = self._listing
        found: dict[str, tuple[str, FileFormat]] = {}
        both = []
        for name in names:
            listed = listing.get(name)
            parsed = listed.parsed if listed is not None else _session_name(name)
            if parsed is not None:
                if parsed[0] in found:
                    both.append(parsed[0])
                found[parsed[0]] = (name, parsed[1])
        for session_id in both:
            newer = self._newer_file(session_id)
            if newer is None:
                del found[session_id]  # both removed meanwhile
            else:
                found[session_id] = newer
        for stale in listing.keys() - {name for name, _ in found.values()}:
            listing.pop(stale, None)  # another thread listing at once may have dropped it
        return found

    def _list_sync(self, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        return [copy_metadata(metadata) for metadata in page(self._ranked(self._current()), limit, offset)]

    def _uses_index(self) -> bool:
        """Whether the fork index can be trusted (hard links work on this file system)."""
        if not self._no_hard_links:
            self._no_hard_links = os.path.lexists(os.path.join(self._root, _NO_HARD_LINKS))
        return not self._no_hard_links

    def _forks_sync(self, parent_id: str) -> builtins.list[SessionMetadata]:
        if not self._uses_index():
            return [copy_metadata(m) for m in self._ranked(self._current()) if m.parent_id == parent_id]
        found: dict[str, tuple[str, FileFormat]] = {}
        for _, session_id, _ in _session_files(self._index_dir(parent_id)):
            # The canonical file is the truth: an entry outlives its fork's deletion, a change
            # of parent, or a crash between the write and the relink.
            if (canonical := self._newer_file(session_id)) is not None:
                found[session_id] = canonical
        return [copy_metadata(m) for m in self._ranked(found) if m.parent_id == parent_id]

    # -- writing -----------------------------------------------------------------------

    def _make_root(self) -> None:
        """Create the root and missing parents, durably when ``fsync`` is on."""
        if os.path.isdir(self._root):
            return
        missing = []
        path = os.path.abspath(self._root)
        while not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        os.makedirs(self._root, exist_ok=True)
        if self._fsync:
            for created in reversed(missing):
                _fsync_dir(os.path.dirname(created))

    def _set_aside(self, path: str) -> None:
        """Rename an unreadable session file out of the way, keeping it for inspection."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        aside = f"{path}.corrupt-{stamp}"
        counter = 0
        while os.path.lexists(aside):
            counter += 1
            aside = f"{path}.corrupt-{stamp}-{counter}"
        os.rename(path, aside)
        _log.warning("unreadable session file %s moved to %s; saving a new session", path, aside)

    def _link(self, parent_id: str, session_id: str) -> bool:
        """``link_fork``, retried when a concurrent ``delete(parent_id)`` removes the index dir."""
        suffix = _SUFFIXES[self._format]
        for _ in range(2):
            try:
                return link_fork(self._root, parent_id, session_id, self._fsync, suffix)
            except FileNotFoundError:
                pass  # a save after the parent's deletion recreates its index, as this will
        return link_fork(self._root, parent_id, session_id, self._fsync, suffix)

    def _unindex(self, parent_id: str, session_id: str, formats: Sequence[FileFormat]) -> None:
        if not SESSION_ID_PATTERN.fullmatch(parent_id):
            return
        for file_format in formats:
            with suppress(FileNotFoundError):
                os.unlink(os.path.join(self._index_dir(parent_id), session_id + _SUFFIXES[file_format]))

    def _index(self, session_id: str, parent_id: str | None, old_parent_id: str | None) -> None:
        """Point the fork index at the file just written (and away from a former parent)."""
        if old_parent_id is not None and old_parent_id != parent_id:
            self._unindex(old_parent_id, session_id, ("jsonl", "json"))
        if parent_id is None or not SESSION_ID_PATTERN.fullmatch(parent_id) or not self._uses_index():
            return
        if not self._link(parent_id, session_id):
            atomic_write(
                os.path.join(self._root, _NO_HARD_LINKS), b"no hard links: forks() scans every session\n"
            )
            self._no_hard_links = True
            _log.warning("no hard links under %s: forks() will scan every session", self._root)

    def _rewrite(
        self, session_id: str, messages: Sequence[Message], given: Mapping[str, Any] | None, *, mode: _Mode
    ) -> None:
        """Write the whole session atomically in the store's format (caller holds the id lock).

        It holds ``messages`` (``"save"``: an unreadable file is set aside), the stored ones
        then ``messages`` (``"append"``), or what is stored (``"compact"``; nothing is written
        when the session is gone). The stored session is read under the file's ``flock``, so
        no writer in another process can come between the read and the write.
        """
        path = self._path(session_id)
        with self._file_locked(path, creating=mode != "compact"):
            existing: StoredSession | None = None
            corrupt_path = None
            found = self._find(session_id)
            if found is not None:
                try:
                    existing = self._decode(session_id, *found)
                except CorruptSessionError:
                    if mode != "save":
                        raise
                    corrupt_path = self._path(session_id, found[0])
            old = existing.metadata if existing is not None else None
            if mode == "compact":
                if existing is None:
                    return
                messages, merged = existing.messages, existing.metadata
            else:
                if mode == "append" and existing is not None:
                    messages = [*existing.messages, *messages]
                merged = merge_metadata(session_id, old, len(messages), given)
            superseded = last_commit = 0
            if self._format == "json":
                encoded = encode_session(merged, messages)
            else:
                lines = _journal_lines(messages, 0)
                encoded, superseded, last_commit = _journal.encode_full(encode_metadata(merged), lines)
            self._make_root()
            if corrupt_path is not None:
                self._set_aside(corrupt_path)
            self._journals.pop(session_id)
            atomic_write(path, encoded, self._fsync)
            if self._format == "jsonl":
                self._journals[session_id] = _JournalState(
                    path,
                    os.stat(path).st_ino,
                    len(encoded),
                    merged.to_json_dict(),
                    len(messages),
                    superseded,
                    encoded[len(encoded) - last_commit :],
                )
        converted = os.path.lexists(self._path(session_id, self._other()))
        if converted:
            os.unlink(self._path(session_id, self._other()))
            if self._fsync:
                _fsync_dir(self._root)
        if converted and merged.parent_id is not None:
            self._unindex(merged.parent_id, session_id, (self._other(),))
        self._index(session_id, merged.parent_id, old.parent_id if old is not None else None)

    def _save_sync(
        self, session_id: str, messages: builtins.list[Message], given: Mapping[str, Any] | None
    ) -> None:
        with self._locked(session_id):
            self._rewrite(session_id, messages, given, mode="save")

    def _append_sync(
        self, session_id: str, messages: builtins.list[Message], given: Mapping[str, Any] | None
    ) -> None:
        with self._locked(session_id):
            if self._format == "json" or not self._append_journal(session_id, messages, given):
                self._rewrite(session_id, messages, given, mode="append")

    def _compact(self, session_id: str) -> None:
        """Rewrite a journal without its superseded metadata records (caller holds the id lock).

        Best effort: the appends that called for it are written either way, so a failure is
        logged (naming the file) and a later append tries again.
        """
        before = self._journals.get(session_id)
        try:
            self._rewrite(session_id, [], None, mode="compact")
        except (OSError, CorruptSessionError) as error:
            _log.warning("could not compact %s: %s", self._path(session_id), error)
            return
        after = self._journals.get(session_id)
        if before is not None and after is not None:  # the same metadata: its stamp still holds
            after.stamp = before.stamp

    def _append_journal(
        self, session_id: str, messages: builtins.list[Message], given: Mapping[str, Any] | None
    ) -> bool:
        """Append to the session's journal; ``False`` when it has none (nothing written)."""
        path = self._path(session_id)
        with self._file_locked(path) as fd:
            if fd is None:
                return False
            state = self._journals.get(session_id)
            stat = os.fstat(fd)
            if state is None or not _is_known(fd, stat, state):
                data = _read_from(fd, 0, stat.st_size)
                state = self._decode_journal(session_id, data, path, stat.st_ino)[1]
                if state.end != stat.st_size:  # a torn append from a crash: cut it off first
                    os.ftruncate(fd, state.end)
            existing = metadata_from_stored(session_id, state.meta)
            merged = merge_metadata(session_id, existing, state.count + len(messages), given)
            payload, commit = _journal_append(messages, state.count, encode_metadata(merged))
            with _naming(path):
                _pwrite_all(fd, payload, state.end)
                if self._fsync:
                    _fdatasync(fd)
            old_parent = existing.parent_id
            state.advance(payload, merged.to_json_dict(), len(messages), commit)
        if merged.parent_id != old_parent:
            self._index(session_id, merged.parent_id, old_parent)
        if _compaction_due(state):
            self._compact(session_id)  # a new inode: relinked by _index
        return True

    def _hold_now(self, session_id: str) -> threading.Lock | None:
        """The lock of an id taken without waiting; ``None`` when anyone holds or awaits it."""
        with self._locks_guard:
            if session_id in self._locks:
                return None
            lock = threading.Lock()
            lock.acquire()
            self._locks[session_id] = (lock, 1)
        return lock

    def _release(self, session_id: str, lock: threading.Lock) -> None:
        """Release a lock from :meth:`_hold_now`, as leaving :meth:`_locked` does."""
        lock.release()
        self._drop_user(session_id, lock)

    def _drop_user(self, session_id: str, lock: threading.Lock) -> None:
        """One holder or waiter fewer for the lock of ``session_id``; the last drops the lock."""
        with self._locks_guard:
            users = self._locks[session_id][1] - 1
            if users:
                self._locks[session_id] = (lock, users)
            else:
                del self._locks[session_id]

    def _build_append(
        self,
        session_id: str,
        state: _JournalState,
        messages: builtins.list[Message],
        given: Mapping[str, Any] | None,
    ) -> _Built | None:
        """An append to the journal ``state`` knows, as ``_append_journal`` builds it (the
        caller holds the id's lock, or the guard with nobody holding that): see ``_Built``.
        ``None`` when ``given`` moves the session to another parent (the fork index must
        change too: the worker-thread path does that)."""
        count = state.count + len(messages)
        if not given:  # an auto-save: merge_metadata's rule, without the model
            meta, stamp = auto_saved_metadata(state.meta, count, state.stamp)
            return (*_journal_append(messages, state.count, dumps(meta)), meta, stamp)
        existing = metadata_from_stored(session_id, state.meta)
        merged = merge_metadata(session_id, existing, count, given)
        if merged.parent_id != existing.parent_id:
            return None
        return (*_journal_append(messages, state.count, encode_metadata(merged)), merged.to_json_dict(), None)

    def _settle_pending(self, pending: _Pending, written: bool) -> None:
        """The pending append's bytes are in the file (``written``: advance what is known of
        it) or not; either way its lock goes."""
        if written:
            pending.state.advance(
                pending.payload, pending.meta, len(pending.messages), pending.commit, pending.stamp
            )
        self._release(pending.session_id, pending.lock)

    def _write_now(self, pending: _Pending, keep: bool) -> int | None:
        """Write a prepared append from the event loop (a page-cache write), releasing the lock,
        where inodes cannot be checked by the sync thread (not POSIX).

        Returns the open descriptor when ``keep`` (still to make durable), ``None`` when
        done, ``_FALLBACK`` when nothing was written because the file is not the one known
        (missing, replaced, another size, locked by another process).
        """
        written = False
        fd = -1
        try:
            try:
                fd = os.open(pending.path, _OPEN_RW)
            except OSError:
                return _FALLBACK
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return _FALLBACK
            state, stat = pending.state, os.fstat(fd)
            if not _is_known(fd, stat, state):
                return _FALLBACK
            if os.stat(pending.path).st_ino != stat.st_ino:  # replaced by another process
                return _FALLBACK
            with _naming(pending.path):
                _pwrite_all(fd, pending.payload, state.end)
            written = True
            return fd if keep else None
        finally:
            if fd >= 0 and not (written and keep):
                os.close(fd)
            self._settle_pending(pending, written)

    def _compact_if_due(self, session_id: str) -> None:
        """Rewrite a journal whose superseded metadata records outweigh its live data."""
        with self._locked(session_id):
            state = self._journals.get(session_id)
            if state is not None and _compaction_due(state):
                self._compact(session_id)

    def _delete_sync(self, session_id: str) -> bool:
        with self._locked(session_id):
            parents = set()
            existed = False
            for file_format in ("jsonl", "json"):
                path = self._path(session_id, file_format)
                # under the file's lock, as every writer: an append elsewhere lands first
                with self._file_locked(path) if fcntl is not None else nullcontext():
                    try:
                        stored = self._read(session_id, file_format)
                    except CorruptSessionError:
                        stored = None
                    if stored is not None and stored.metadata.parent_id is not None:
                        parents.add(stored.metadata.parent_id)
                    try:
                        os.unlink(path)
                        existed = True
                    except FileNotFoundError:
                        pass
            self._journals.pop(session_id)
            if existed and self._fsync:
                _fsync_dir(self._root)
            for parent_id in parents:
                self._unindex(parent_id, session_id, ("jsonl", "json"))
            with suppress(FileNotFoundError):
                shutil.rmtree(self._index_dir(session_id))
            return existed

    # -- the SessionStore protocol -----------------------------------------------------

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        """Metadata of the readable sessions, most recently updated first.

        Journals are listed from their last bytes, never their messages, and every file's
        metadata is cached while its inode, size and mtime are unchanged. Unreadable files
        are skipped with a warning; temp files, dotfiles, set-aside ``*.corrupt-*`` files and
        names that are not valid ids are ignored. ``limit``/``offset`` page the result.
        """
        return await asyncio.to_thread(self._list_sync, limit, offset)

    async def load(self, id: str) -> StoredSession | None:
        """The session, or ``None`` when absent; ``CorruptSessionError`` naming the path.

        A journal's torn last append (a crash mid-write) is dropped with a warning.
        """
        validate_session_id(id)
        try:  # a warm file is read here: a thread hop costs more than copying it from memory
            found = self._find(id, _read_in_memory)
        except _NotInMemory:
            if not _DECODE_ON_LOOP:
                return await asyncio.to_thread(self._load_sync, id)
            found = await asyncio.to_thread(self._find, id)
        if found is None:
            return None
        if _DECODE_ON_LOOP:
            return self._decode(id, *found)
        return await asyncio.to_thread(self._decode, id, *found)

    async def save(
        self, id: str, messages: Sequence[Message], metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Replace the messages and merge the metadata, atomically; then index a fork.

        An existing file that cannot be parsed is renamed aside (never destroyed) and the
        session starts anew. Errors raised before the write leave the old file intact.
        """
        check_save_args(id, metadata)
        given = dict(metadata) if metadata is not None else None
        await asyncio.to_thread(self._save_sync, id, builtins.list(messages), given)

    async def append(
        self, id: str, messages: Sequence[Message], metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Add messages after the stored ones and merge the metadata, all or nothing.

        In a journal that is one write and one fdatasync, whatever the session's length. The
        write happens on the event loop (a page-cache write); the fdatasync runs on a shared
        background thread that syncs every session appended meanwhile together.
        """
        batch = builtins.list(messages)
        begun = self._append_nowait(id, batch, metadata)
        if isinstance(begun, Complete):
            return
        if begun is not None:
            self._expedite()
            await begun
            return
        check_save_args(id, metadata)  # the task-free path checks only what it takes
        given = dict(metadata) if metadata is not None else None
        await asyncio.to_thread(self._append_sync, id, batch, given)

    def _append_nowait(
        self,
        id: str,
        messages: builtins.list[Message],
        metadata: Mapping[str, Any] | None,
        landed: Callable[[asyncio.Future[None]], None] | None = None,
    ) -> asyncio.Future[None] | Complete | None:
        """Begin ``append`` at once, when it goes to a journal this store knows; the session
        writer calls this to skip a task.

        The bytes are prepared on the event loop; without ``fsync`` they are written there
        too, else the sync thread writes them and makes them durable with the others.
        Returns a future done when the append is complete, ``COMPLETE`` when it is already,
        or ``None`` when nothing was written and ``append`` must do it: an unknown journal,
        the id's lock held or awaited elsewhere, another format, metadata that moves the
        session to another parent, a file that is not the one known. When the sync thread's
        outcome resolves the future, ``landed`` is called with it there and then, an
        event-loop iteration before the future's own callbacks run.
        """
        # Only validated ids have a state, and it holds their path: an id that is not an exact
        # str known here takes ``append``, which checks it.
        state = self._journals.get(id) if type(id) is str else None
        if state is None or self._format != "jsonl":
            return None
        if metadata:  # its parent id must be an id too (the auto-save gives none)
            check_save_args(id, metadata)
        if _WRITES_OFF_LOOP and not self._fsync:
            # Written here and now, so the id's lock is not taken, only checked free under
            # the guard that every taker of it goes through, held until the state moved on.
            with self._locks_guard:
                if id in self._locks:
                    return None
                built = self._build_append(id, state, messages, metadata)
                if built is None:
                    return None
                payload, commit, meta, stamp = built
                code, written = _SYNCER.append_now(state.path, state.inode, state.end, state.tail, payload)
                if written:
                    state.advance(payload, meta, len(messages), commit, stamp)
            if code:
                raise OSError(code, os.strerror(code), state.path)
            return self._finished(id, state, None) if written else None
        lock = self._hold_now(id)
        if lock is None:
            return None
        try:
            built = self._build_append(id, state, messages, metadata)
        except BaseException:
            self._release(id, lock)
            raise
        if built is None:
            self._release(id, lock)
            return None
        payload, commit, meta, stamp = built
        loop = asyncio.get_running_loop()
        pending = _Pending(self, id, state, payload, meta, messages, metadata, commit, lock, loop, stamp)
        if not _WRITES_OFF_LOOP:
            fd = self._write_now(pending, keep=self._fsync)
            if fd == _FALLBACK:
                return None
            durable = _SYNCER.sync_and_close(fd, state.path) if fd is not None else None
            return self._finished(id, state, durable)
        pending.future = future = loop.create_future()
        pending.on_landed = landed
        try:
            _SYNCER.append(state.path, state.inode, state.end, state.tail, payload, pending)
        except BaseException:
            self._settle_pending(pending, written=False)
            raise
        return future

    def _expedite(self) -> None:
        """Someone on the running loop awaits an append begun there: watch for it to land
        (see ``_syncer.Syncer.expedite``); the session writer calls this from ``flush``."""
        _SYNCER.expedite()

    def _landed(self, pending: _Pending, errno: int, written: bool) -> None:
        """On the loop, once the sync thread is done with a durable append."""
        self._settle_pending(pending, written)
        future = pending.future
        assert future is not None
        if future.done():  # cancelled meanwhile: what was written stays written
            return
        if errno:
            future.set_exception(OSError(errno, os.strerror(errno), pending.path))
            pending.resolved(future)
        elif not written:  # the file was not the one known: nothing written, the thread path does it
            given = dict(pending.given) if pending.given is not None else None
            fallback = asyncio.to_thread(self._append_sync, pending.session_id, pending.messages, given)
            _follow(future, asyncio.ensure_future(fallback))
        elif _compaction_due(pending.state):
            _follow(future, asyncio.ensure_future(self._compact_after(pending.session_id, None)))
        else:
            future.set_result(None)
            pending.resolved(future)

    def _finished(
        self, session_id: str, state: _JournalState, durable: asyncio.Future[None] | None
    ) -> asyncio.Future[None] | Complete:
        """``durable`` (``None``: complete already), then a compaction when superseded records
        outweigh the rest."""
        if _compaction_due(state):
            return asyncio.ensure_future(self._compact_after(session_id, durable))
        return COMPLETE if durable is None else durable

    async def _compact_after(self, session_id: str, durable: asyncio.Future[None] | None) -> None:
        if durable is not None:
            await durable
        await asyncio.to_thread(self._compact_if_due, session_id)

    async def delete(self, id: str) -> bool:
        """Remove the session, its fork index entry and its own fork index; ``True`` when it existed."""
        validate_session_id(id)
        return await asyncio.to_thread(self._delete_sync, id)

    async def forks(self, id: str) -> builtins.list[SessionMetadata]:
        """Metadata of the sessions whose ``parent_id`` is ``id``, most recent first.

        Reads the ``{id}-forks`` index, checked against each fork's current file; scans
        every session instead where the file system has no hard links.
        """
        validate_session_id(id)
        return await asyncio.to_thread(self._forks_sync, id)
