"""The file store's part of the store check (``doctor``): its session files, the files set
aside, temp files and the fork index (the kinds are listed in ``simulacra_session.doctor``).

Every repair holds what the store's writers hold (the id lock, the file's ``flock``) and
reads the file again under it, so a writer in this or another process is never overtaken.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..._beneath import Dir, lock, open_nofollow
from ...doctor import Problem
from ...errors import CorruptSessionError, UnsafePathError
from ...ids import SESSION_ID_PATTERN
from ...models import SessionMetadata, metadata_from_stored
from .._codec import TOO_DEEP
from . import journal
from .document import decode_document
from .files import OPEN_RO, keep_copy, read_from, read_path, regular, set_aside, sync_file
from .layout import NO_HARD_LINKS, TEMP_FILE, FileFormat, marker_temp, session_name
from .locks import file_locked
from .residue import sweep
from .restore import compact_sync
from .torn import cut_short

if TYPE_CHECKING:
    from . import FileSessionStore

__all__ = ["check_files"]

_WORTH = 4096  # superseded bytes fewer than this are not worth a rewrite
_ASIDE = re.compile(r"(?P<name>.+)\.corrupt-.+")
_NEWER = "unsupported journal version"
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


@dataclass(frozen=True)
class _Session:
    """What the fork index check needs of a session's current file."""

    file_format: FileFormat
    inode: int
    parent_id: str | None


async def check_files(store: FileSessionStore, repair: bool) -> list[Problem]:
    """The problems of ``store``'s files, repaired with ``repair`` (in a worker thread)."""
    return await asyncio.to_thread(_Checker(store, repair).run)


class _Checker:
    def __init__(self, store: FileSessionStore, repair: bool) -> None:
        self.store = store
        self.layout = store._layout
        self.repair = repair
        self.problems: list[Problem] = []
        self.sessions: dict[str, _Session] = {}
        self.unreadable: set[str] = set()
        self.aside: dict[str, set[int]] = {}  # inodes of each id's set-aside files

    def add(
        self, kind: str, session_id: str | None, path: str | None, detail: str, repaired: str | None = None
    ) -> None:
        """Name a problem; ``repaired`` says how it was repaired (``None``: it was not)."""
        detail = detail if repaired is None else f"{detail}: {repaired}"
        self.problems.append(Problem(kind, session_id, path, detail, repaired is not None))

    def run(self) -> list[Problem]:
        try:
            names = sorted(os.listdir(self.layout.root))
        except FileNotFoundError:
            return []
        self.temp_files(names)
        for name in names:
            parsed = session_name(name)
            aside = _ASIDE.fullmatch(name)
            if parsed is not None:
                self.session_file(name, *parsed)
            elif aside is not None and (owner := session_name(aside["name"])) is not None:
                self.set_aside(name, owner[0])
        self.fork_index(names)
        return self.problems

    # -- residue -----------------------------------------------------------------------

    def temp_files(self, names: list[str]) -> None:
        root = self.layout.root
        found: list[tuple[str | None, str, str | None]] = []  # id, path, what its writer locks
        for name in names:
            temp = TEMP_FILE.fullmatch(name)
            if temp is not None:
                owner = session_name(temp["name"])
                if owner is not None or marker_temp(temp):
                    # an old-style one: see residue; a marker's (the case probe) is empty
                    locked = None if temp["random"] else "file" if owner else "marker"
                    found.append((owner[0] if owner else None, os.path.join(root, name), locked))
            elif name.endswith("-forks") and SESSION_ID_PATTERN.fullmatch(name[: -len("-forks")]):
                index = os.path.join(root, name)
                for entry in _names(index):
                    link = TEMP_FILE.fullmatch(entry)
                    owner = session_name(link["name"]) if link is not None and link["random"] else None
                    if owner is not None:
                        found.append((owner[0], os.path.join(index, entry), "index"))
        if not found:
            return
        # each as found now: a name a writer renamed away, then made again, is another file
        inodes = {path: _inode(path) for _, path, _ in found}
        removed = set(sweep(root)) if self.repair else set()
        for session_id, path, locked in found:
            if path in removed:
                self.add("temp_file", session_id, path, "left by an interrupted write", "removed")
            elif not _in_use(path, locked, inodes[path]):
                what = (
                    "left by an interrupted write"
                    if not self.repair
                    else "not removed: not a file of the store"
                )
                self.add("temp_file", session_id, path, what)

    def set_aside(self, name: str, session_id: str) -> None:
        path = os.path.join(self.layout.root, name)
        try:
            self.aside.setdefault(session_id, set()).add(os.lstat(path).st_ino)
        except FileNotFoundError:
            return
        self.add("set_aside", session_id, path, "an unreadable file set aside: look at it, then remove it")

    # -- session files -----------------------------------------------------------------

    def session_file(self, name: str, session_id: str, file_format: FileFormat) -> None:
        path = os.path.join(self.layout.root, name)
        try:
            data, inode, _ = read_path(path)
            metadata, parsed = _decode(session_id, file_format, data, path)
        except FileNotFoundError:
            return
        except UnsafePathError as error:
            self.unreadable.add(session_id)
            self.add("unreadable", session_id, path, f"{error}: left as it is")
            return
        except OSError as error:
            self.unreadable.add(session_id)
            self.add("unreadable", session_id, path, f"cannot be read ({error.strerror}): left as it is")
            return
        except CorruptSessionError as error:
            self.unreadable.add(session_id)
            self.damaged(session_id, file_format, path, str(error))
            return
        if parsed is not None:
            self.journal(session_id, path, data, parsed)
            if self.repair:  # compacted: a new inode
                try:
                    inode = os.lstat(path).st_ino
                except FileNotFoundError:
                    return  # converted or deleted since (its writer indexes what is left)
        current = self.layout.newer_file(session_id)
        if current is None or current[0] == name:
            self.sessions[session_id] = _Session(file_format, inode, metadata.parent_id)

    def journal(self, session_id: str, path: str, data: bytes, parsed: journal.Journal) -> None:
        if parsed.torn:
            self.torn(session_id, path)
        header = data.find(b"\n") + 1  # superseded once a commit record follows, whatever is done
        excess = parsed.superseded - header
        if excess >= _WORTH and excess > parsed.committed_end - parsed.superseded:
            if self.repair:
                compact_sync(self.store, session_id)
            detail = f"{excess} of its {parsed.committed_end} bytes are superseded records, removed messages"
            self.add("compactable", session_id, path, detail, "compacted" if self.repair else None)

    def torn(self, session_id: str, path: str) -> None:
        """Confirmed under the file's lock (an append may be under way), cut off with ``repair``."""
        with self.store._locks.held(session_id) if self.repair else nullcontext(), file_locked(path) as fd:
            if fd is None:
                return
            try:
                data = read_from(fd, 0, regular(fd, path).st_size)
                parsed = journal.parse_journal(data, path)
            except CorruptSessionError:
                return  # rewritten meanwhile, and damaged: its own check names it next time
            if not parsed.torn:
                return
            unfinished = cut_short(data, parsed.committed_end)
            what = "an append cut short" if unfinished else "damage"
            detail = f"{parsed.torn} bytes after its last record that verifies ({what})"
            if self.repair:  # a copy of damage kept, as the store keeps one before it cuts it off
                if not unfinished:
                    keep_copy(path, data, self.layout.file_mode, self.store._fsync)
                os.ftruncate(fd, parsed.committed_end)
                sync_file(fd, path)
                self.store._journals.pop(session_id)
            self.add("torn_tail", session_id, path, detail, "cut off" if self.repair else None)

    def damaged(self, session_id: str, file_format: FileFormat, path: str, detail: str) -> None:
        if _NEWER in detail:
            self.add("unreadable", session_id, path, f"{detail}: a later release's, left as it is")
            return
        if TOO_DEEP in detail:  # not damage: no repair reads it either
            self.add("unreadable", session_id, path, f"{detail}: left as it is")
            return
        if not self.repair:
            self.add("unreadable", session_id, path, detail)
            return
        try:
            with self.store._locks.held(session_id), file_locked(path) as fd:
                if fd is None:
                    return
                try:  # as it is now, under the lock
                    _decode(session_id, file_format, read_from(fd, 0, regular(fd, path).st_size), path)
                    return  # rewritten meanwhile: readable now
                except CorruptSessionError:
                    pass
                aside = set_aside(path)
                self.store._journals.pop(session_id)
                self.aside.setdefault(session_id, set()).add(os.fstat(fd).st_ino)
        except IsADirectoryError:  # what no writer can lock, nor write
            self.add("unreadable", session_id, path, f"{detail}: a directory, left as it is")
            return
        self.add("unreadable", session_id, path, detail, f"moved to {aside}")

    # -- the fork index ------------------------------------------------------------------

    def fork_index(self, names: list[str]) -> None:
        root = self.layout.root
        if os.path.lexists(os.path.join(root, NO_HARD_LINKS)):
            return  # no hard links here: forks() scans, and no index is kept
        linked: set[tuple[str, str]] = set()  # (the parent's id, folded; the fork's id)
        former: set[tuple[str, str]] = set()
        # where names compare without case, ``Alice-forks`` is ``alice-forks`` (and may be
        # listed so): one index for both ids, each fork found by its own parent's id
        sessions = [name for name in names if session_name(name) is not None]
        fold = str.lower if self.store._case.compares_without_case(sessions) else str
        for name in names:
            parent_id = name[: -len("-forks")]
            if not name.endswith("-forks") or not SESSION_ID_PATTERN.fullmatch(parent_id):
                continue
            for entry, found in _entries(root, name):
                parsed = session_name(entry)
                if parsed is None or found is None:
                    continue
                path = os.path.join(root, name, entry)
                session = self.sessions.get(parsed[0])
                if stat.S_ISLNK(found.st_mode):
                    self.add("fork_link", parsed[0], path, "a symlink in the fork index: left as it is")
                elif not stat.S_ISREG(found.st_mode):  # a directory, say: no link of the store's
                    self.add("fork_link", parsed[0], path, "not a file, in the fork index: left as it is")
                    if session is not None:
                        linked.add((fold(parent_id), parsed[0]))  # nothing can be linked there
                elif (
                    session is not None
                    and fold(session.parent_id or "") == fold(parent_id)
                    and session.file_format == parsed[1]
                ):
                    key = (fold(parent_id), parsed[0])
                    (linked if session.inode == found.st_ino else former).add(key)
                elif session is None and parsed[0] in self.unreadable:
                    continue  # named as unreadable: its link goes with it
                else:
                    self.stale(parent_id, parsed, path, found.st_ino, fold)
        for session_id, session in self.sessions.items():
            parent = session.parent_id
            if parent is None or not SESSION_ID_PATTERN.fullmatch(parent):
                continue
            key = (fold(parent), session_id)
            if key in linked:
                continue  # a parent deleted (or unreadable) is indexed too: forks() lists its forks
            entry = self.layout.name(session_id, session.file_format)
            where = os.path.join(root, f"{parent}-forks", entry)
            if not self.still_missing(parent, session_id, fold):
                continue  # linked since: its writer was between its write and its relink
            what = "links a former version of" if key in former else "is missing from the fork index for"
            if self.repair:
                with self.now(session_id, session.file_format) as now:
                    if now is None or fold(now.parent_id or "") != fold(parent):
                        continue  # rewritten or gone since it was read: its writer indexes it
                    try:
                        self.store._index.index(session_id, parent, None, session.file_format)
                    except OSError as error:  # the index is not a directory, say
                        detail = f"the entry {what} fork {session_id} of {parent}: not re-linked ({error})"
                        self.add("fork_link", session_id, where, detail)
                        continue
            detail = f"the entry {what} fork {session_id} of {parent}"
            self.add("fork_link", session_id, where, detail, "re-linked" if self.repair else None)

    def stale(
        self,
        parent_id: str,
        parsed: tuple[str, FileFormat],
        path: str,
        inode: int,
        fold: Callable[[str], str],
    ) -> None:
        """An entry for a session that is not (in that format) a fork of ``parent_id``, as
        it was read: looked at again (under its writers' locks, to remove it) in case it
        was written since (saved anew, or moved to this parent)."""
        session_id, file_format = parsed
        if session_id not in self.sessions and self.layout.newer_file(session_id) is not None:
            return  # saved since the store was read: the next check looks at it
        if not self.still_stale(parent_id, parsed, fold):
            return  # unlinked since, or its fork again: a writer was between its write and its indexing
        with self.now(session_id, file_format) if self.repair else nullcontext() as now:
            if now is not None and fold(now.parent_id or "") == fold(parent_id):
                return  # its fork (again) now
            if session_id not in self.sessions and inode not in self.aside.get(session_id, set()):
                detail = (
                    "links a session whose file is gone: the last copy of it, left (restore it or remove it)"
                )
                self.add("fork_link", session_id, path, detail)
                return
            if self.repair:
                self.store._index.unindex(parent_id, session_id, (file_format,))
        detail = f"a stale entry: session {session_id} is not stored as this fork of {parent_id}"
        self.add("fork_link", session_id, path, detail, "removed" if self.repair else None)

    def still_missing(self, parent_id: str, session_id: str, fold: Callable[[str], str]) -> bool:
        """Whether fork ``session_id`` of ``parent_id`` is still unlinked (or links a former
        version) when no writer is between its write and its relink: looked at again under
        the index's ``flock``, exclusively (writers hold it shared meanwhile). Where the index
        is absent (each writer makes it before its write, and it is removed only empty), the
        file is read before and after a look confirming that absence: the same file both
        times is a fork that was never linked. An index that cannot be locked (not a
        directory, a symlink) is as it was read."""
        try:
            with self.store._index.locked(parent_id) as index:
                now = self.current(session_id)
                if now is None or fold(now.parent_id or "") != fold(parent_id):
                    return False
                if index is not None:
                    entry = index.entry(self.layout.name(session_id, now.file_format))
                    return entry is None or not stat.S_ISREG(entry.st_mode) or entry.st_ino != now.inode
        except (OSError, UnsafePathError):
            return True
        if os.path.lexists(os.path.join(self.layout.root, f"{parent_id}-forks")):
            return False  # made since: the next check looks at it
        return self.current(session_id) == now

    def still_stale(self, parent_id: str, parsed: tuple[str, FileFormat], fold: Callable[[str], str]) -> bool:
        """Whether the entry ``parsed`` in ``parent_id``'s index is still there, and still of no
        fork of it in that format, when no writer is between its write and its indexing
        (under the index's ``flock``, exclusively, as ``still_missing``)."""
        session_id, file_format = parsed
        try:
            with self.store._index.locked(parent_id) as index:
                if index is None or index.entry(self.layout.name(session_id, file_format)) is None:
                    return False
                now = self.current(session_id)
        except (OSError, UnsafePathError):
            return True
        return now is None or fold(now.parent_id or "") != fold(parent_id) or now.file_format != file_format

    def current(self, session_id: str) -> _Session | None:
        """The session's current file as it is now, read without its lock (the index's is
        held: see ``still_missing``); ``None`` when absent or unreadable. Not looked for
        again under the root's lock (``newer_file``): a writer creating a session holds that
        while it waits for the index's."""
        found = self.layout._newer_file(session_id)
        if found is None:
            return None
        path = os.path.join(self.layout.root, found[0])
        try:
            data, inode, _ = read_path(path)
            metadata, _ = _decode(session_id, found[1], data, path)
        except (CorruptSessionError, OSError, UnsafePathError):
            return None
        return _Session(found[1], inode, metadata.parent_id)

    @contextmanager
    def now(self, session_id: str, file_format: FileFormat) -> Iterator[_Session | None]:
        """The session's file in ``file_format`` as it is now, read under the locks its
        writers take, held meanwhile: a rewrite waits, and its own indexing, after it, undoes
        what is done here from the state it replaced. ``None`` when absent or unreadable."""
        path = self.layout.path(session_id, file_format)
        with self.store._locks.held(session_id), file_locked(path, shared=True) as fd:
            found = None
            if fd is not None:
                try:
                    data = read_from(fd, 0, regular(fd, path).st_size)
                    metadata, _ = _decode(session_id, file_format, data, path)
                    found = _Session(file_format, os.fstat(fd).st_ino, metadata.parent_id)
                except (CorruptSessionError, OSError, UnsafePathError):
                    pass
            yield found


def _decode(
    session_id: str, file_format: FileFormat, data: bytes, path: str
) -> tuple[SessionMetadata, journal.Journal | None]:
    """A session file's metadata and, for a journal, what it holds; ``CorruptSessionError``."""
    if file_format == "json":
        return decode_document(session_id, data, f"file {path}").metadata, None
    parsed = journal.parse_journal(data, path)
    try:
        return metadata_from_stored(session_id, parsed.metadata), parsed
    except ValidationError as error:
        raise CorruptSessionError(f"corrupt session file {path}: invalid metadata: {error}") from None


def _names(path: str) -> list[str]:
    try:
        with Dir(path) as directory:
            return directory.names()
    except (OSError, UnsafePathError):
        return []


def _entries(root: str, name: str) -> list[tuple[str, os.stat_result | None]]:
    """The entries of the index directory ``name`` and their status (symlinks not followed)."""
    try:
        with Dir(root) as top, top.open_dir(name) as index:
            return [(entry, index.entry(entry)) for entry in index.names()]
    except (OSError, UnsafePathError):
        return []


def _inode(path: str) -> int | None:
    try:
        return os.lstat(path).st_ino
    except OSError:
        return None


def _in_use(path: str, locked: str | None, inode: int | None) -> bool:
    """Whether the temp file or temp link ``path``, found as ``inode``, is a write under
    way, or gone: nothing to name. A writer holds its temp file's ``flock`` (``locked``:
    ``"file"``, ``"marker"``), a linker its index directory's, shared (``"index"``); but a
    writer takes it just after creating the file, so a session's empty one nobody holds
    may be a write starting (if not, it holds nothing, and a repair or the session's next
    use removes it; a marker's, the case probe, is always empty). One renamed or removed
    since it was found is gone (its save ended), and so is one whose name leads to another
    file now (the next save's)."""
    if inode is None or _inode(path) != inode:
        return True
    if locked is None:
        return False
    target = os.path.dirname(path) if locked == "index" else path
    try:
        fd = open_nofollow(target, OPEN_RO | _DIRECTORY if locked == "index" else OPEN_RO)
    except FileNotFoundError:
        return True
    except (OSError, UnsafePathError):
        return False
    try:
        if locked != "index" and os.fstat(fd).st_ino != inode:
            return True
        if not lock(fd, wait=False) or _inode(path) != inode:
            return True
        return locked == "file" and os.fstat(fd).st_size == 0
    finally:
        os.close(fd)
