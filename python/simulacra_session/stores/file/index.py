"""The fork index: ``{root}/{parent_id}-forks/{id}.jsonl`` (or ``.json``), a hard link to each fork's file.

``forks(parent_id)`` reads one directory instead of every session, whether ``parent_id``
exists or not: a deleted session's index stays while forks name it. A link shares its
session file's inode, so it is re-made after every rewrite (a new inode); an append keeps
the inode and the link. The canonical file is the truth: an entry that outlived its fork's
deletion, a change of parent, or a crash between a write and its relink is checked against
it. Where the file system has no hard links, a marker file says so and ``forks()`` scans.

A rewrite's new file replaces the one its lock is on, and the relink comes after: so a
writer holds its index directories' ``flock`` shared (``held``) from before its rename (or a
delete's unlink) until after its relink and unindex, and the store check looks at an entry
again under it taken exclusively (``locked``): it never falls between a write and its
indexing. A writer makes its parent's index directory first; one is removed only empty and
under its ``flock`` taken exclusively (``remove_empty``), so a writer holds one still named.

Index directories and their entries are reached from the root's descriptor, never through
a symlink: one where an index directory or entry belongs raises ``UnsafePathError`` and
is left alone (writes check first, so a refused index leaves the session unwritten).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress

from ..._backend import atomic_write, link_fork
from ..._beneath import Dir
from ...errors import UnsafePathError
from ...ids import SESSION_ID_PATTERN
from .files import sync_file
from .layout import NO_HARD_LINKS, SUFFIXES, TEMP_FILE, FileFormat, Layout, session_name

__all__ = ["ForkIndex"]

_log = logging.getLogger("simulacra_session")


class ForkIndex:
    """The fork index of one store."""

    __slots__ = ("_fsync", "_layout", "_no_hard_links")

    def __init__(self, layout: Layout, fsync: bool) -> None:
        self._layout = layout
        self._fsync = fsync
        self._no_hard_links = False

    def usable(self) -> bool:
        """Whether the index can be trusted (hard links work on this file system)."""
        if not self._no_hard_links:
            self._no_hard_links = os.path.lexists(os.path.join(self._layout.root, NO_HARD_LINKS))
        return not self._no_hard_links

    def _open(self, parent_id: str) -> Dir | None:
        """``parent_id``'s index directory, opened without following a symlink; ``None``
        when it (or the root) does not exist."""
        try:
            with Dir(self._layout.root) as root:
                return root.open_dir(parent_id + "-forks")
        except FileNotFoundError:
            return None

    def _locked(self, parent_id: str, *, exclusive: bool, make: bool) -> Dir | None:
        """``parent_id``'s index directory with its ``flock`` held (closing it lets go), made
        first with ``make`` (durably with the store's ``fsync``); ``None`` when it (or the
        root) does not exist. Checked once locked to be the one its name still leads to: a
        ``remove_empty`` may have removed it meanwhile (then it is made or looked for again)."""
        name = parent_id + "-forks"
        while True:
            with Dir(self._layout.root) as root:
                made = make and _make_dir(root, name, self._layout.dir_mode)
                try:
                    index = root.open_dir(name)
                except FileNotFoundError:
                    if make:
                        continue  # removed meanwhile: made again
                    return None
                try:
                    if made and index.fd is not None:
                        os.fchmod(index.fd, self._layout.dir_mode)  # exactly, whatever the umask
                    if made and self._fsync:
                        root.sync(lambda fd: sync_file(fd, root.path))
                    index.lock(exclusive)
                    if index.fd is None or root.names_open(name, index.fd):
                        return index
                except BaseException:
                    index.close()
                    raise
                index.close()  # removed (and maybe made again) meanwhile

    @contextmanager
    def held(self, parent_id: str | None, former: Iterable[str | None] = ()) -> Iterator[None]:
        """Hold, shared, the index directories a write links or unlinks in, from before it
        renames or removes the session's file until its indexing is done: ``parent_id``'s
        (made if missing) and each ``former`` parent's that exists (one where a symlink is
        is left to ``unindex``). Nothing where the index is not kept."""
        with ExitStack() as stack:
            wanted = dict.fromkeys(i for i in (parent_id, *former) if i and SESSION_ID_PATTERN.fullmatch(i))
            for held_id in wanted if wanted and self.usable() else ():
                try:
                    index = self._locked(held_id, exclusive=False, make=held_id == parent_id)
                except UnsafePathError:
                    if held_id == parent_id:
                        raise
                    continue
                if index is not None:
                    stack.enter_context(index)
            yield

    @contextmanager
    def locked(self, parent_id: str) -> Iterator[Dir | None]:
        """``parent_id``'s index directory with its ``flock`` held exclusively: no writer is
        between its write and its indexing there meanwhile (see ``held``); ``None`` when it
        does not exist. ``UnsafePathError`` for a symlink, ``OSError`` for what is no directory."""
        index = self._locked(parent_id, exclusive=True, make=False)
        if index is None:
            yield None
            return
        with index:
            yield index

    def entries(self, parent_id: str) -> list[str]:
        """The ids indexed under ``parent_id`` (to be checked against their files)."""
        index = self._open(parent_id)
        if index is None:
            return []
        with index:
            return [parsed[0] for name in index.names() if (parsed := session_name(name)) is not None]

    def linking(self, session_id: str) -> set[str]:
        """The ids of the parents whose index has an entry for ``session_id``, looked for in
        every index: a former parent's may still have one (a change of parent cut short
        before its unindex), which a delete must remove too, or it keeps the deleted
        session's messages. Indexes that cannot be read safely (a symlink) are left out."""
        found = set()
        try:
            with Dir(self._layout.root) as root:
                for name in root.names():
                    parent_id = name[: -len("-forks")]
                    if not name.endswith("-forks") or not SESSION_ID_PATTERN.fullmatch(parent_id):
                        continue
                    with suppress(OSError, UnsafePathError), root.open_dir(name) as index:
                        if any(index.entry(session_id + suffix) for suffix in SUFFIXES.values()):
                            found.add(parent_id)
        except FileNotFoundError:
            pass  # no root: no index
        return found

    def check(self, session_id: str, parent_id: str | None) -> None:
        """``UnsafePathError`` when a symlink sits where indexing ``session_id`` under
        ``parent_id`` (or removing it) writes: the index directory or an entry."""
        if parent_id is None or not SESSION_ID_PATTERN.fullmatch(parent_id) or not self.usable():
            return
        index = self._open(parent_id)
        if index is not None:
            with index:
                for suffix in SUFFIXES.values():
                    index.no_symlink(session_id + suffix)

    def _link(self, parent_id: str, session_id: str, file_format: FileFormat) -> bool:
        """``link_fork`` of the file just written, which no lock holds any more: retried when
        a ``delete(parent_id)`` removed the index directory, emptied, meanwhile (the retry
        makes it again); nothing to link, and ``True``, once the file is gone (deleted or
        converted by another process after the write: its own writes index what is left)."""
        suffix = SUFFIXES[file_format]
        root, mode = self._layout.root, self._layout.dir_mode
        while True:
            try:
                return link_fork(root, parent_id, session_id, self._fsync, suffix, mode)
            except FileNotFoundError:
                if not os.path.lexists(self._layout.path(session_id, file_format)):
                    return True

    def unindex(
        self, parent_id: str, session_id: str, formats: Iterable[FileFormat], *, sync: bool = False
    ) -> None:
        """Remove ``session_id``'s entries in ``parent_id``'s index. A symlink in the way is
        left alone with a warning: a refusal now could not undo the write (a conversion, a
        change of parent) this goes with, and an entry left over is harmless. Durable with
        the store's ``fsync``: a link left by a power cut would keep a deleted session's
        messages, as the last copy of them (``doctor`` leaves that to its user). ``sync``: the
        index is synced even when nothing was left to remove (an earlier removal, cut short
        before its sync, may not be durable)."""
        try:
            index = self._open(parent_id) if SESSION_ID_PATTERN.fullmatch(parent_id) else None
            if index is None:
                return
            with index:
                removed = False
                for file_format in formats:
                    name = session_id + SUFFIXES[file_format]
                    if index.no_symlink(name) is not None:
                        with suppress(FileNotFoundError):  # removed meanwhile
                            index.remove(name)
                            removed = True
                if (removed or sync) and self._fsync:
                    index.sync(lambda fd: sync_file(fd, index.path))
        except UnsafePathError as error:
            _log.warning("left %s: %s", error.path, error)

    def index(
        self, session_id: str, parent_id: str | None, old_parent_id: str | None, file_format: FileFormat
    ) -> None:
        """Point the index at the file just written, in ``file_format`` (and away from a former parent)."""
        if old_parent_id is not None and old_parent_id != parent_id:
            self.unindex(old_parent_id, session_id, SUFFIXES)
        if parent_id is None or not SESSION_ID_PATTERN.fullmatch(parent_id) or not self.usable():
            return
        if not self._link(parent_id, session_id, file_format):
            marker = os.path.join(self._layout.root, NO_HARD_LINKS)
            atomic_write(
                marker, b"no hard links: forks() scans every session\n", True, self._layout.file_mode
            )
            self._no_hard_links = True
            _log.warning("no hard links under %s: forks() will scan every session", self._layout.root)
            with suppress(OSError), Dir(self._layout.root) as root:  # made by ``held``, and empty
                os.rmdir(root.at(parent_id + "-forks"), dir_fd=root.fd)

    def remove_empty(self, session_id: str) -> None:
        """Remove ``session_id``'s own index (of its forks), after its file, if it is empty.
        The forks that still name a deleted session stay indexed: ``forks()`` lists the
        sessions whose ``parent_id`` it is, existing or not, and they inherit from it again
        once it is saved again. A symlink there is left with a warning. Removed under its
        ``flock``, exclusively, taken without waiting: one a writer holds is about to
        index a fork (it would be made again), and is kept; and only while its name still
        leads to the one locked (another delete may have removed that one, and a writer
        made and holds a new one meanwhile)."""
        name = session_id + "-forks"
        try:
            with Dir(self._layout.root) as root:
                if root.no_symlink(name) is None:
                    return
                with root.open_dir(name) as index:
                    if not index.lock(exclusive=True, wait=False):
                        return
                    if index.fd is not None and not root.names_open(name, index.fd):
                        return  # removed meanwhile, by another delete
                    os.rmdir(root.at(name), dir_fd=root.fd)
        except UnsafePathError as error:
            _log.warning("left %s: %s", error.path, error)
        except FileNotFoundError:
            pass  # no root, or removed meanwhile
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):  # else it indexes forks: kept
                path = os.path.join(self._layout.root, name)
                _log.warning("could not remove the fork index %s: %s", path, error)

    def sweep(self, parent_id: str) -> list[str]:
        """Remove the temp links that killed linkers left in ``parent_id``'s index, under its
        ``flock`` taken exclusively (live linkers hold it shared); the paths removed. What is
        not a file (a symlink, a directory) is no link of the store's: left alone."""
        index = self._open(parent_id)
        if index is None:
            return []
        removed = []
        with index:
            index.lock(exclusive=True)
            for name in index.names():
                found, entry = TEMP_FILE.fullmatch(name), index.entry(name)
                if found and found["random"] and entry is not None and stat.S_ISREG(entry.st_mode):
                    with suppress(FileNotFoundError):
                        index.remove(name)
                        removed.append(index.join(name))
        return removed


def _make_dir(root: Dir, name: str, mode: int) -> bool:
    """Make the directory ``name`` in ``root``; whether it was made (else it exists)."""
    try:
        os.mkdir(root.at(name), mode, dir_fd=root.fd)
    except FileExistsError:
        return False
    except OSError as error:
        raise root.refused_or(name, error) from None
    return True
