"""FileSessionStore: one ``{id}.json`` per session, readable by the original TypeScript library.

Layout under ``root``::

    {id}.json                   the session document (see ``_codec``), replaced atomically
    {parent_id}-forks/{id}.json hard link to a fork's current file: the fork index
    .no-hard-links              marker: the file system has no hard links, forks() scans
    {id}.json.corrupt-<time>    an unreadable file set aside by a save, never deleted

Blocking work runs in a worker thread; a lock per id makes a save's read-merge-write
atomic within the process. ``OSError`` propagates unchanged.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import Any

from .._backend import atomic_write, link_fork
from ..errors import CorruptSessionError
from ..ids import SESSION_ID_PATTERN, validate_session_id
from ..messages import Message
from ..models import SessionMetadata, StoredSession, most_recent_first
from ._codec import check_save_args, decode_session, encode_save

__all__ = ["FileSessionStore"]

_log = logging.getLogger("simulacra_session")
_NO_HARD_LINKS = ".no-hard-links"
_SUFFIX = ".json"


def _session_stem(name: str) -> str | None:
    """The id a directory entry name stores, or ``None`` for temp files, dotfiles and the rest."""
    if name.startswith(".") or not name.endswith(_SUFFIX):
        return None
    stem = name[: -len(_SUFFIX)]
    return stem if SESSION_ID_PATTERN.fullmatch(stem) else None


def _fsync_dir(path: str) -> None:
    """Make a directory's entries (creations, renames, unlinks) durable."""
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: str) -> bytes | None:
    """The file's bytes, or ``None`` when it does not exist."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        return None


class FileSessionStore:
    """A ``SessionStore`` (with ``forks``) keeping each session in ``{root}/{id}.json``.

    ``fsync=False`` keeps every write atomic but skips the fsyncs, trading durability
    across power loss for speed. The root directory is created on the first save.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self._root = os.fspath(root)
        self._fsync = fsync
        self._no_hard_links = False
        self._locks: dict[str, tuple[threading.Lock, int]] = {}
        self._locks_guard = threading.Lock()

    @property
    def root(self) -> str:
        """The directory holding the sessions."""
        return self._root

    def __repr__(self) -> str:
        return f"FileSessionStore({self._root!r}, fsync={self._fsync})"

    def _path(self, session_id: str) -> str:
        return os.path.join(self._root, session_id + _SUFFIX)

    def _index_dir(self, parent_id: str) -> str:
        return os.path.join(self._root, parent_id + "-forks")

    @contextmanager
    def _locked(self, session_id: str) -> Iterator[None]:
        """Hold the lock of one id; locks are dropped when nobody holds or waits for them."""
        with self._locks_guard:
            lock, users = self._locks.get(session_id, (threading.Lock(), 0))
            self._locks[session_id] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._locks_guard:
                users = self._locks[session_id][1] - 1
                if users:
                    self._locks[session_id] = (lock, users)
                else:
                    del self._locks[session_id]

    # -- reading -----------------------------------------------------------------------

    def _load_sync(self, session_id: str) -> StoredSession | None:
        path = self._path(session_id)
        data = _read(path)
        return None if data is None else decode_session(session_id, data, f"file {path}")

    def _try_load(self, session_id: str) -> StoredSession | None:
        """Like ``_load_sync`` for listing: an unreadable file is skipped with a warning."""
        try:
            return self._load_sync(session_id)
        except (CorruptSessionError, OSError) as error:
            _log.warning("skipping session file %s: %s", self._path(session_id), error)
            return None

    def _list_sync(self) -> builtins.list[SessionMetadata]:
        try:
            entries = builtins.list(os.scandir(self._root))
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            stem = _session_stem(entry.name)
            if stem is None or not entry.is_file():
                continue
            stored = self._try_load(stem)
            if stored is not None:
                found.append(stored.metadata)
        return most_recent_first(found)

    def _uses_index(self) -> bool:
        """Whether the fork index can be trusted (hard links work on this file system)."""
        if not self._no_hard_links:
            self._no_hard_links = os.path.lexists(os.path.join(self._root, _NO_HARD_LINKS))
        return not self._no_hard_links

    def _forks_sync(self, parent_id: str) -> builtins.list[SessionMetadata]:
        if not self._uses_index():
            return [meta for meta in self._list_sync() if meta.parent_id == parent_id]
        try:
            entries = builtins.list(os.scandir(self._index_dir(parent_id)))
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            stem = _session_stem(entry.name)
            if stem is None:
                continue
            # The canonical file is the truth: an entry outlives its fork's deletion, a
            # change of parent, or a crash between the write and the relink.
            stored = self._try_load(stem)
            if stored is not None and stored.metadata.parent_id == parent_id:
                found.append(stored.metadata)
        return most_recent_first(found)

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
        for _ in range(2):
            try:
                return link_fork(self._root, parent_id, session_id, self._fsync)
            except FileNotFoundError:
                pass  # a save after the parent's deletion recreates its index, as this will
        return link_fork(self._root, parent_id, session_id, self._fsync)

    def _index(self, session_id: str, parent_id: str | None, old_parent_id: str | None) -> None:
        """Point the fork index at the file just written (and away from a former parent)."""
        if (
            old_parent_id is not None
            and old_parent_id != parent_id
            and SESSION_ID_PATTERN.fullmatch(old_parent_id)
        ):
            with suppress(FileNotFoundError):
                os.unlink(os.path.join(self._index_dir(old_parent_id), session_id + _SUFFIX))
        if parent_id is None or not SESSION_ID_PATTERN.fullmatch(parent_id) or not self._uses_index():
            return
        if not self._link(parent_id, session_id):
            atomic_write(
                os.path.join(self._root, _NO_HARD_LINKS), b"no hard links: forks() scans every session\n"
            )
            self._no_hard_links = True
            _log.warning("no hard links under %s: forks() will scan every session", self._root)

    def _save_sync(
        self, session_id: str, messages: builtins.list[Message], given: Mapping[str, Any] | None
    ) -> None:
        path = self._path(session_id)
        with self._locked(session_id):
            data = _read(path)
            existing: StoredSession | None = None
            corrupt = False
            if data is not None:
                try:
                    existing = decode_session(session_id, data, f"file {path}")
                except CorruptSessionError:
                    corrupt = True
            old = existing.metadata if existing is not None else None
            merged, encoded = encode_save(session_id, old, messages, given)
            self._make_root()
            if corrupt:
                self._set_aside(path)
            atomic_write(path, encoded, self._fsync)
            self._index(session_id, merged.parent_id, old.parent_id if old is not None else None)

    def _delete_sync(self, session_id: str) -> bool:
        path = self._path(session_id)
        with self._locked(session_id):
            parent_id = None
            try:
                stored = self._load_sync(session_id)
            except CorruptSessionError:
                stored = None
            if stored is not None:
                parent_id = stored.metadata.parent_id
            try:
                os.unlink(path)
                existed = True
            except FileNotFoundError:
                existed = False
            if existed and self._fsync:
                _fsync_dir(self._root)
            if parent_id is not None and SESSION_ID_PATTERN.fullmatch(parent_id):
                with suppress(FileNotFoundError):
                    os.unlink(os.path.join(self._index_dir(parent_id), session_id + _SUFFIX))
            with suppress(FileNotFoundError):
                shutil.rmtree(self._index_dir(session_id))
            return existed

    # -- the SessionStore protocol -----------------------------------------------------

    async def list(self) -> builtins.list[SessionMetadata]:
        """Metadata of every readable session, most recently updated first.

        Unreadable files are skipped with a warning; temp files, dotfiles, set-aside
        ``*.corrupt-*`` files and names that are not valid ids are ignored.
        """
        return await asyncio.to_thread(self._list_sync)

    async def load(self, id: str) -> StoredSession | None:
        """The session, or ``None`` when absent; ``CorruptSessionError`` naming the path."""
        validate_session_id(id)
        return await asyncio.to_thread(self._load_sync, id)

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
