"""FileSessionStore: one file per session on disk, as a journal or in the original layout.

Journal saves append the new messages and a commit record with one write and one
``fdatasync``, so an auto-save costs what its new messages cost; full rewrites are atomic
renames. A session keeps the format it is found in (``convert`` changes it), so a
``{id}.json`` of the original library stays where the original reads it (see ``document``).

An append to a journal this process knows is written on the event loop (a page-cache
write) and made durable by the process's group-commit thread (``commit``); everything else
runs in a worker thread. A lock per id serializes writes within the process (``locks``),
``flock`` on the session file serializes them across processes, and a write given the
revision it expects compares it under both (``ConflictError``). ``OSError`` propagates.
A cancelled call never leaves work running behind the caller's back: a write that began
completes before ``CancelledError`` reaches the caller.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, suppress
from typing import Any

from pydantic import ValidationError

from ..._lru import LRU
from ...errors import CaseClashError, CorruptSessionError
from ...ids import validate_session_id
from ...messages import JsonObject
from ...models import (
    Revision,
    SessionMetadata,
    StoredSession,
    copy_metadata,
    metadata_from_stored,
)
from .._cancellation import finish
from .._codec import check_count, check_metadata, check_save_args, listed_messages, page, starts_ids
from .._restore import checked_restore
from . import journal, restore, tail
from .appends import append_locked, append_now, revision_of
from .case import CaseGuard
from .commit import GroupCommit
from .document import decode_document
from .files import fsync_dir, read_path
from .index import ForkIndex
from .layout import FORMATS, FileFormat, Layout
from .listing import Listing
from .locks import IdLocks, remove_locked, session_locked, settled
from .residue import Residue
from .rewrite import rewrite_session
from .truncation import truncate_sync
from .whole import needs_conversion

__all__ = ["FileFormat", "FileSessionStore"]

_log = logging.getLogger("simulacra_session")
_COMMIT = GroupCommit()  # one group-commit thread for every store in the process


class FileSessionStore:
    """A ``RevisionedSessionStore`` (with ``forks`` and ``append``) keeping each session in one file.

    ``format="jsonl"`` (default) keeps journals that auto-saves append to; ``"json"`` keeps
    the original library's ``{id}.json`` documents, for directories shared with it.
    ``fsync=False`` keeps every write atomic but skips the fsyncs, trading durability across
    power loss for speed. The root directory is created on the first save. Files are created
    with exactly ``file_mode`` (0600) and directories ``dir_mode`` (0700), whatever the umask.

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
        file_mode: int = 0o600,
        dir_mode: int = 0o700,
    ) -> None:
        if isinstance(cached_sessions, bool) or not isinstance(cached_sessions, int) or cached_sessions < 1:
            raise ValueError(f"cached_sessions must be a positive integer, got {cached_sessions!r}")
        self._layout = Layout(os.fspath(root), format, file_mode, dir_mode)
        self._fsync = fsync
        self._locks = IdLocks()
        self._journals: LRU[str, journal.JournalState] = LRU(cached_sessions)
        self._index = ForkIndex(self._layout, fsync)
        self._residue = Residue(self._layout, self._locks, self._index, cached_sessions)
        self._case = CaseGuard(self._layout.root, cached_sessions)
        self._listing = Listing(self._layout, self._case)

    @property
    def root(self) -> str:
        """The directory holding the sessions."""
        return self._layout.root

    @property
    def format(self) -> FileFormat:
        """The format new saves are written in."""
        return self._layout.format

    def __repr__(self) -> str:
        return f"FileSessionStore({self.root!r}, fsync={self._fsync}, format={self.format!r})"

    # -- reading -----------------------------------------------------------------------

    def _decode_journal(
        self, session_id: str, data: bytes, path: str, inode: int
    ) -> tuple[StoredSession, journal.JournalState]:
        """The session a journal holds, and what an append to it needs (now remembered, when
        the file read is the session's own: ``CaseGuard.owns``)."""
        parsed = journal.parse_journal(data, path)
        try:
            metadata = metadata_from_stored(session_id, parsed.metadata)
        except ValidationError as error:
            raise CorruptSessionError(f"corrupt session file {path}: invalid metadata: {error}") from None
        end = parsed.committed_end
        state = journal.JournalState(
            path,
            inode,
            end,
            parsed.metadata,
            len(parsed.messages),
            parsed.superseded,
            data[end - parsed.last_commit : end],
            version=parsed.version,
        )
        if parsed.version == journal.FORMAT_VERSION and self._case.owns(session_id, "jsonl", inode):
            self._journals[session_id] = state  # only this version is appended to
        else:
            self._journals.pop(session_id)
        return StoredSession(metadata, parsed.messages, damage=parsed.damage), state

    def _find(self, session_id: str, *, locked: bool = False) -> tuple[FileFormat, bytes, int] | None:
        """The session file's format, bytes and inode: the store's format, or the other one.

        Both exist while a conversion swaps them, after a crash between a conversion's write
        and its removal of the old file, or in a directory shared with the original library:
        the newer one (by mtime, the store's format on a tie) holds the session then. When
        neither is found, they are looked for again under the root's lock (``settled``),
        unless the caller holds the session's locks (``locked``: a writer, whom no swap passes).
        """

        def look() -> builtins.list[tuple[FileFormat, bytes, int, int]] | None:
            found = []
            for file_format in (self.format, self._layout.other):
                with suppress(FileNotFoundError):
                    found.append((file_format, *read_path(self._layout.path(session_id, file_format))))
            return found or None

        found = look() if locked else settled(self.root, look)
        if found is None:
            return None
        if len(found) == 2:
            _log.warning("session %s is stored in both formats: reading the newer file", session_id)
        file_format, data, inode, _ = max(found, key=lambda item: (item[3], item[0] == self.format))
        return file_format, data, inode

    def _decode(self, session_id: str, file_format: FileFormat, data: bytes, inode: int) -> StoredSession:
        path = self._layout.path(session_id, file_format)
        if file_format == "jsonl":
            return self._decode_journal(session_id, data, path, inode)[0]
        self._case.owns(session_id, file_format, inode)
        return decode_document(session_id, data, f"file {path}")

    def _load_sync(self, session_id: str) -> StoredSession | None:
        self._case.check(session_id)
        self._residue.first_use(session_id, lock=True)
        found = self._find(session_id)
        return None if found is None else self._decode(session_id, *found)

    def _peek(self, session_id: str) -> StoredSession | None:
        """Another session, read by a writer holding its own session's locks (a fork's parent,
        for its document): no sweep and no look under the root's lock, which would wait on them.
        A parent whose id's file name opens another id's file is missing (``None``)."""
        try:
            self._case.check(session_id)
            found = self._find(session_id, locked=True)
            return None if found is None else self._decode(session_id, *found)
        except CaseClashError:
            return None

    def _read(self, session_id: str, file_format: FileFormat) -> StoredSession | None:
        try:
            data, inode, _ = read_path(self._layout.path(session_id, file_format))
        except FileNotFoundError:
            return None
        return self._decode(session_id, file_format, data, inode)

    def _list_sync(self, limit: int | None, offset: int) -> builtins.list[SessionMetadata]:
        ranked = self._listing.ranked(self._listing.current())
        return [copy_metadata(metadata) for metadata in page(ranked, limit, offset)]

    def _forks_sync(self, parent_id: str) -> builtins.list[SessionMetadata]:
        if self._index.usable():
            found = self._listing.files_of(self._index.entries(parent_id))
        else:
            found = self._listing.current()
        return [copy_metadata(m) for m in self._listing.ranked(found) if m.parent_id == parent_id]

    # -- writing, in a worker thread -----------------------------------------------------

    def _make_root(self) -> str:
        return self._layout.make_root(self._fsync)

    def _save_sync(
        self,
        session_id: str,
        messages: builtins.list[JsonObject],
        given: Mapping[str, Any] | None,
        expected: Revision | None,
    ) -> Revision:
        with self._locks.held(session_id):
            revision = rewrite_session(self, session_id, messages, given, mode="save", expected=expected)
        assert revision is not None  # a save always writes
        return revision

    def _append_sync(
        self,
        session_id: str,
        messages: builtins.list[JsonObject],
        given: Mapping[str, Any] | None,
        expected: Revision | None,
    ) -> Revision:
        with self._locks.held(session_id):
            revision = append_locked(self, session_id, messages, given, expected)
            if revision is None:
                revision = rewrite_session(
                    self, session_id, messages, given, mode="append", expected=expected
                )
            self._compact_if_due_locked(session_id)
        assert revision is not None  # an append always writes
        return revision

    def _compact(self, session_id: str) -> None:
        """Rewrite a journal without its superseded records and removed messages (caller holds the id lock).

        Best effort: the appends that called for it are written either way, so a failure is
        logged (naming the file) and a later append tries again.
        """
        before = self._journals.get(session_id)
        try:
            rewrite_session(self, session_id, [], None, mode="compact")
        except (OSError, CorruptSessionError, CaseClashError) as error:
            _log.warning("could not compact %s: %s", self._layout.path(session_id), error)
            return
        after = self._journals.get(session_id)
        if before is not None and after is not None:  # the same metadata: its stamp still holds
            after.stamp = before.stamp

    def _convert_sync(self, session_id: str, file_format: FileFormat) -> bool:
        with self._locks.held(session_id):
            self._case.check(session_id)
            converts = needs_conversion(self._layout, session_id, file_format)
            if converts:
                rewrite_session(self, session_id, [], None, mode="convert", target=file_format)
            return converts

    def _compact_if_due_locked(self, session_id: str) -> None:
        """Compact the journal when its superseded bytes call for it (caller holds the id lock)."""
        state = self._journals.get(session_id)
        if state is not None and journal.compaction_due(state):
            self._compact(session_id)

    def _compact_if_due(self, session_id: str) -> None:
        with self._locks.held(session_id):
            self._compact_if_due_locked(session_id)

    def _delete_sync(self, session_id: str) -> bool:
        layout = self._layout
        paths = [layout.path(session_id, file_format) for file_format in FORMATS]
        with self._locks.held(session_id):
            parents = set()
            existed = False
            # every file locked at once, as every writer: an append elsewhere lands first, a conversion ends
            with session_locked(paths, layout.root) as fds, ExitStack() as indexing:
                self._case.check(session_id)
                held = [(path, fd) for path, fd in zip(paths, fds, strict=True) if fd is not None]
                unknown_links = False
                for file_format, fd in zip(FORMATS, fds, strict=True):
                    try:
                        stored = self._read(session_id, file_format) if fd is not None else None
                    except CorruptSessionError:
                        stored = None
                    parent_id = stored.metadata.parent_id if stored is not None else None
                    if parent_id is not None:
                        parents.add(parent_id)
                    # more links than the file and its parent's entry: a former parent's (a move
                    # of a journal cut short) or an unreadable fork's, looked for in every index
                    if fd is not None and os.fstat(fd).st_nlink > 1 + (parent_id is not None):
                        unknown_links = True
                if unknown_links:
                    parents |= self._index.linking(session_id)
                indexing.enter_context(self._index.held(None, parents))  # a check never falls between
                # the links first: a crash between leaves the session whole, its link for
                # doctor to make again, never a link as the last copy of a deleted session
                # (synced even when gone already: an earlier delete may have been cut short)
                for parent_id in parents:
                    self._index.unindex(parent_id, session_id, FORMATS, sync=True)
                for path, fd in held:
                    existed = remove_locked(path, fd) or existed
            self._journals.pop(session_id)
            if self._fsync:  # even when gone already, as the links
                with suppress(FileNotFoundError):  # no root: nothing was there
                    fsync_dir(layout.root)
            for parent_id in parents:  # and again: another process's save may have linked meanwhile
                self._index.unindex(parent_id, session_id, FORMATS)
            self._index.remove_empty(session_id)
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

    async def ids_starting(self, prefix: str) -> builtins.list[str]:
        """The ids of the sessions whose id starts with ``prefix``, sorted: the file names
        alone read, no file opened (the command line's lookup of an id by a prefix of it)."""
        if not starts_ids(prefix):
            return []
        return await asyncio.to_thread(self._layout.ids_starting, prefix)

    async def load(self, id: str) -> StoredSession | None:
        """The session, or ``None`` when absent; ``CorruptSessionError`` naming the path.

        A journal loads as its last state whose records all verify (their checksums): what
        follows, an append cut short by a crash or damage, is left out with a warning and
        ``StoredSession.damage`` (naming the file and offset), and a write cuts it off, the
        file copied aside first unless it is only an append cut short (``torn``);
        ``CorruptSessionError`` names the offset when no state verifies.
        """
        validate_session_id(id)
        return await asyncio.to_thread(self._load_sync, id)

    async def load_tail(self, id: str, count: int, *, end: int | None = None) -> StoredSession | None:
        """The metadata and own messages ``[max(0, end - count), end)`` (``TailReadingStore``).

        A journal is read from its end, and every byte from the first message returned to the
        last record checked as ``load`` checks it: the cost depends on ``count`` and on what
        follows ``end``, not on the session's length (``stores/file/tail.py``; what does not
        verify there, or a version 1 journal, is loaded whole instead). A ``.json`` document
        is read once and parsed whole: the original library's format has no records.
        """
        validate_session_id(id)
        check_count("count", count)
        check_count("end", end)
        return await asyncio.to_thread(tail.load_tail_sync, self, id, count, end)

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        """Replace the messages and merge the metadata, atomically; then index a fork.

        An existing file that cannot be parsed is renamed aside (never destroyed) and the
        session starts anew. Errors raised before the write leave the old file intact;
        ``ConflictError`` when the session is not at revision ``expected`` (when given).
        """
        check_save_args("save", id, metadata, messages)
        batch = builtins.list(messages)
        given = dict(metadata) if metadata is not None else None
        return await finish(asyncio.to_thread(self._save_sync, id, batch, given, expected))

    async def append(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        """Add messages after the stored ones and merge the metadata, all or nothing.

        In a journal that is one write and one fdatasync, whatever the session's length. To
        a journal this store knows, the write happens on the event loop (a page-cache
        write) and the fdatasync on the group-commit thread, which makes every session
        appended meanwhile durable together. ``ConflictError`` as ``save``.
        """
        batch = listed_messages("append", id, messages)  # checked: list("hello") is five messages
        check_metadata("append", id, metadata)
        state = self._journals.get(id) if type(id) is str else None  # only valid ids have one
        if state is not None:
            if metadata:
                check_save_args("append", id, metadata)
            fd = append_now(self, id, state, batch, metadata, expected)
            if fd is not None:
                revision = revision_of(state)
                if fd >= 0:
                    await _COMMIT.sync(fd, state.path)  # uncancellable: complete before a cancellation lands
                if journal.compaction_due(state):
                    await finish(asyncio.to_thread(self._compact_if_due, id))
                return revision
        check_save_args("append", id, metadata)
        given = dict(metadata) if metadata is not None else None
        return await finish(asyncio.to_thread(self._append_sync, id, batch, given, expected))

    async def truncate(self, id: str, count: int, *, expected: Revision | None = None) -> Revision:
        """Remove the last ``count`` own messages, durably, all or nothing (``TruncatableStore``).

        A journal gets one truncation record, written as an append is, whatever the
        session's length (``stores/file/truncation.py``); a ``.json`` document is rewritten
        whole. ``ValueError`` unless ``0 <= count <= message_count``; ``SessionNotFoundError``;
        ``ConflictError`` as ``save``, nothing written.
        """
        validate_session_id(id)
        check_count("count", count)
        return await finish(asyncio.to_thread(truncate_sync, self, id, count, expected))

    async def restore(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: SessionMetadata,
        *,
        expected: Revision | None = None,
    ) -> None:
        """Write the session as given, stamps included (``RestorableSessionStore``), as saves
        write; with ``expected``, only over the session at that revision (``ConflictError``)."""
        checked, batch = checked_restore(id, messages, metadata)
        await finish(asyncio.to_thread(restore.restore_sync, self, id, batch, checked, expected))

    async def convert(self, id: str, format: FileFormat | None = None) -> bool:
        """Rewrite session ``id`` in ``format`` (the store's by default) and remove its other file.

        Saves and appends keep the format a session is found in; only this changes it (a
        ``.jsonl`` journal is not visible to the original library). The messages, metadata
        and stamps are kept (in a ``.json`` document to the millisecond, rounded up). ``True``
        when it was converted, ``False`` when it was stored in that format alone;
        ``SessionNotFoundError`` when it does not exist.
        """
        validate_session_id(id)
        target = self.format if format is None else format
        if target not in FORMATS:
            raise ValueError(f"format must be 'jsonl' or 'json', got {format!r}")
        return await finish(asyncio.to_thread(self._convert_sync, id, target))

    async def delete(self, id: str) -> bool:
        """Remove the session and its fork index entry; ``True`` when it existed. Its own fork
        index stays while forks name it: ``forks(id)`` lists them still."""
        validate_session_id(id)
        return await finish(asyncio.to_thread(self._delete_sync, id))

    async def forks(self, id: str) -> builtins.list[SessionMetadata]:
        """Metadata of the sessions whose ``parent_id`` is ``id``, most recent first.

        Reads the ``{id}-forks`` index, checked against each fork's current file; scans
        every session instead where the file system has no hard links.
        """
        validate_session_id(id)
        return await asyncio.to_thread(self._forks_sync, id)
