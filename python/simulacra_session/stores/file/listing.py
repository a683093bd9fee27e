"""What ``list()`` and ``forks()`` read: each session file's metadata, cached by its stamp.

A journal's metadata is read from its last bytes (its last commit record, which carries its
own checksum), never from its messages: damage among the messages shows when it is loaded.
Every file's metadata is kept while its inode, size and mtime stay the same, so a warm
listing costs a ``stat`` per session, all taken in one ``stamps`` call.

A conversion swaps a session's two names (the new file written, then the old removed) under
the root's exclusive ``flock``. The listing reads the root's names under its shared lock, and
looks again, under it, for a session whose listed file is gone by the time it is read: the
session is then in its other file, or deleted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter

from pydantic import ValidationError

from ..._backend import stamps
from ..._beneath import open_nofollow
from ...errors import CorruptSessionError, UnsafePathError
from ...models import SessionMetadata, metadata_from_stored
from . import journal
from .case import CaseGuard
from .document import decode_document
from .files import OPEN_RO, read_from, regular
from .layout import OTHER, FileFormat, Layout, session_name
from .locks import root_locked

__all__ = ["Listing"]

_TAILS = (4096, 64 * 1024)  # a journal's end read for its metadata: this much, then this
_log = logging.getLogger("simulacra_session")


@dataclass(frozen=True)
class _Listed:
    """What is kept of one session file while its inode, size and mtime stay the same."""

    parsed: tuple[str, FileFormat]  # the id and format its name stores
    stamp: tuple[int, int, int]  # inode, size, mtime_ns
    metadata: SessionMetadata | None  # handed out as copies only; None: unreadable
    rank: tuple[float, str]  # sort key: most recently updated first, then by id


def _journal_metadata(session_id: str, fd: int, size: int, path: str) -> SessionMetadata:
    """A journal's committed metadata, from its tail when a commit record that verifies lies there."""
    version = journal.check_version(read_from(fd, 0, 64, to_end=False), path)
    found = None
    for tail in _TAILS:
        start = max(0, size - tail)
        found = journal.tail_metadata(read_from(fd, start, size), start == 0, version)
        if found is not None or start == 0:
            break
    if found is None:  # a last message longer than the tail, or damage: read the whole journal
        found = journal.parse_journal(read_from(fd, 0, size), path).metadata
    try:
        return metadata_from_stored(session_id, found)
    except ValidationError as error:
        raise CorruptSessionError(f"corrupt session file {path}: {error}") from None


def _metadata_of(session_id: str, file_format: FileFormat, path: str) -> SessionMetadata:
    fd = open_nofollow(path, OPEN_RO)
    try:
        size = regular(fd, path).st_size
        if file_format == "jsonl":
            return _journal_metadata(session_id, fd, size, path)
        return decode_document(session_id, read_from(fd, 0, size), f"file {path}").metadata
    finally:
        os.close(fd)


class Listing:
    """The listing cache of one store (by file name under the root)."""

    __slots__ = ("_cache", "_case", "_layout")

    def __init__(self, layout: Layout, case: CaseGuard) -> None:
        self._layout = layout
        self._case = case
        self._cache: dict[str, _Listed] = {}

    def _read(
        self, session_id: str, file_format: FileFormat, path: str, stamp: tuple[int, int, int]
    ) -> _Listed | None:
        """Read one file's metadata; ``None`` when the file is gone."""
        parsed = (session_id, file_format)
        try:
            metadata = _metadata_of(session_id, file_format, path)
        except FileNotFoundError:
            return None
        except (CorruptSessionError, UnsafePathError, OSError) as error:
            _log.warning("skipping session file %s: %s", path, error, extra={"unreadable": path})
            return _Listed(parsed, stamp, None, (0.0, session_id))
        return _Listed(parsed, stamp, metadata, (-metadata.updated.timestamp(), session_id))

    def ranked(self, found: dict[str, tuple[str, FileFormat]]) -> list[SessionMetadata]:
        """The readable sessions' cached metadata, most recently updated first (hand out copies).

        ``found`` maps ids to their file's name and format. A file is read only when its
        inode, size or mtime changed since it was last cached.
        """
        root = self._layout.root
        kept = []
        files = list(found.items())
        try:
            stamped = stamps(root, [name for _, (name, _) in files]) if files else []
        except FileNotFoundError:  # the root itself, removed since it was listed
            stamped = [None] * len(files)
        for (session_id, (name, file_format)), stamp in zip(files, stamped, strict=True):
            listed = None if stamp is None else self._cached(session_id, name, file_format, stamp)
            if listed is None:  # removed since it was listed: converted, or deleted
                listed = self._again(session_id)
            if listed is not None:
                kept.append(listed)
        ranked = [
            (listed.rank, listed.metadata) for listed in self._held(kept) if listed.metadata is not None
        ]
        ranked.sort(key=itemgetter(0))
        return [metadata for _, metadata in ranked]

    def _held(self, read: list[_Listed]) -> list[_Listed]:
        """The entries ``read`` whose file the root still holds by exactly its name.

        Where names compare without case, ``Alice``'s name opens ``alice``'s file once
        ``Alice`` is deleted and ``alice`` made: read so, ``Alice`` would be listed with
        ``alice``'s metadata. The root's names are read again, under its shared lock, after
        the files: an entry whose name is gone is left out (deleted, as a session created
        during a listing may be missing from it), unless its other file is there (converted
        meanwhile: read there). Where names compare with case, this costs nothing.
        """
        names = [self._layout.name(*listed.parsed) for listed in read]
        if not self._case.compares_without_case(names):
            return read
        kept = []
        try:
            with root_locked(self._layout.root, exclusive=False):  # no name comes meanwhile
                held = frozenset(os.listdir(self._layout.root))
                for listed, name in zip(read, names, strict=True):
                    session_id, file_format = listed.parsed
                    if name in held:
                        kept.append(listed)
                    elif self._layout.name(session_id, OTHER[file_format]) in held:  # converted meanwhile
                        again = self._look_again(session_id)
                        if again is not None:
                            kept.append(again)
        except FileNotFoundError:  # the root itself, removed
            return []
        return kept

    def _cached(
        self, session_id: str, name: str, file_format: FileFormat, stamp: tuple[int, int, int]
    ) -> _Listed | None:
        """The file's cached entry, read again when its stamp changed; ``None`` when it is gone."""
        listed = self._cache.get(name)
        if listed is None or listed.stamp != stamp:
            listed = self._read(session_id, file_format, os.path.join(self._layout.root, name), stamp)
            if listed is not None:
                self._cache[name] = listed
        return listed

    def _again(self, session_id: str) -> _Listed | None:
        """The session's entry, looked for again under the root's shared lock after its listed
        file vanished: no conversion is between names then. ``None``: deleted."""
        try:
            with root_locked(self._layout.root, exclusive=False):
                return self._look_again(session_id)
        except FileNotFoundError:  # the root itself, removed
            return None

    def _look_again(self, session_id: str) -> _Listed | None:
        """``_again``'s look, the root's shared lock held."""
        newer = self._layout.newer_file(session_id)
        if newer is None:
            return None
        stamp = stamps(self._layout.root, [newer[0]])[0]
        return None if stamp is None else self._cached(session_id, *newer, stamp)

    def current(self) -> dict[str, tuple[str, FileFormat]]:
        """Each session's file under the root (the newer, as loads read it, when it has both).

        The names are read under the root's shared lock: a listing that takes several reads
        of a large directory cannot fall between a conversion's two names.
        """
        try:
            with root_locked(self._layout.root, exclusive=False):
                names = os.listdir(self._layout.root)
        except FileNotFoundError:
            names = []
        cache = self._cache
        found: dict[str, tuple[str, FileFormat]] = {}
        both = []
        for name in names:
            listed = cache.get(name)
            parsed = listed.parsed if listed is not None else session_name(name)
            if parsed is not None:
                if parsed[0] in found:
                    both.append(parsed[0])
                found[parsed[0]] = (name, parsed[1])
        for session_id in both:
            newer = self._layout.newer_file(session_id)
            if newer is None:
                del found[session_id]  # both removed meanwhile
            else:
                found[session_id] = newer
        for stale in cache.keys() - {name for name, _ in found.values()}:
            cache.pop(stale, None)  # another thread listing at once may have dropped it
        return found

    def files_of(self, session_ids: Iterable[str]) -> dict[str, tuple[str, FileFormat]]:
        """The current file of each of ``session_ids`` that has one."""
        return {sid: newer for sid in session_ids if (newer := self._layout.newer_file(sid)) is not None}
