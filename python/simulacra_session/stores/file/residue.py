"""Residue of interrupted writes: which temp files under a root are the store's, and sweeping them.

A writer killed mid-write leaves (see ``layout``):

- ``.{name}.tmp``: a full write's temp file (``atomic_write``; ``{name}`` is a session file or
  the ``.no-hard-links`` marker), a whole copy of the session; or the case probe (``case``).
  Its writer holds ``flock`` on it from its creation until after its rename, and after
  taking the lock checks that the name still leads to it; so one that a sweep locks without
  waiting is residue, whichever process made it, and a writer the sweep overtook between
  creation and lock starts over.
- ``.{name}.{16 hex}.tmp``: the same from a version of this library before temp files were
  locked. Those writers held the session file's ``flock`` (the root's while it did not
  exist): these are swept under it, by :meth:`Residue.sweep_root` (finding them takes a
  listing of the root).
- ``{parent_id}-forks/.{name}.{16 hex}.tmp``: a temp hard link (``link_fork``), which keeps a
  former version of the fork's file alive. Linkers hold a shared ``flock`` on the index
  directory while theirs exists; a sweep takes it exclusively.

A store sweeps a session's temp files and its own fork index on its first use of that
session, under the session's id lock and file lock (a reader's: shared, on a read-only
descriptor; in a root it cannot write, a reader leaves the sweep to a later use, so a read
needs no write access); :func:`sweep` sweeps a whole root (a store check: the CLI's
``doctor``). Symlinks are left alone. Windows has no ``flock``:
there one process writes a root, so a temp file is swept under its session's id lock, and
temp links only by :func:`sweep`, which should run there while no store writes the root.
"""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager, nullcontext

from ..._beneath import FLOCK, Dir, remove_residue
from ..._lru import LRU
from ...errors import UnsafePathError
from ...ids import SESSION_ID_PATTERN
from .index import ForkIndex
from .layout import FORMATS, TEMP_FILE, FileFormat, Layout, marker_temp, session_name
from .locks import IdLocks, file_locked

__all__ = ["Residue", "sweep"]

_log = logging.getLogger("simulacra_session")


def sweep(root: str | os.PathLike[str]) -> list[str]:
    """Remove what killed writers left under the file store's ``root``: temp files of full
    writes (old-style ones included) and temp links of the fork index; the paths removed.

    A store check (the CLI's ``doctor``), safe while stores in other processes write the
    root: a live writer's temp file or link is never taken (on Windows, run it while none
    does). Symlinks and names the store never makes are left alone.
    """
    layout = Layout(os.fspath(root), "jsonl")
    return Residue(layout, IdLocks(), ForkIndex(layout, fsync=True), 1).sweep_root()


class Residue:
    """The sweeps of one store, and the sessions it has swept (the most recent ``remembered``)."""

    __slots__ = ("_index", "_layout", "_locks", "_swept")

    def __init__(self, layout: Layout, locks: IdLocks, index: ForkIndex, remembered: int) -> None:
        self._layout = layout
        self._locks = locks
        self._index = index
        self._swept: LRU[str, bool] = LRU(remembered)
        locks.on_hold = self.first_use  # every writer of a session holds its id lock first

    def first_use(self, session_id: str, *, lock: bool = False) -> None:
        """Sweep ``session_id``'s temp files unless this store did already. The caller holds
        its id lock, or ``lock`` tries it (a reader: when someone holds it, that writer
        sweeps, and a reader never waits for it). A reader takes the file's lock shared, and
        sweeps nothing in a root it cannot write (a read-only mount: a backup, a snapshot)."""
        if session_id in self._swept or (lock and not os.access(self._layout.root, os.W_OK)):
            return
        held = self._locks.try_hold(session_id) if lock else None
        if lock and held is None:
            return
        try:
            self._sweep_session(session_id, shared=lock)
        finally:
            if held is not None:
                self._locks.release(session_id, held)
        self._swept[session_id] = True

    def _locked(
        self, session_id: str, file_format: FileFormat | None = None, *, shared: bool = False
    ) -> AbstractContextManager[object]:
        """The lock of the session's file in ``file_format`` (the store's by default), or the
        root's while that file does not exist: what its writers hold (``shared``: a reader's)."""
        path = self._layout.path(session_id, file_format)
        return file_locked(path, create_in=lambda: self._layout.root, shared=shared)

    def _sweep_session(self, session_id: str, *, shared: bool) -> list[str]:
        layout = self._layout
        if not os.path.isdir(layout.root):
            return []
        with self._locked(session_id, shared=shared), Dir(layout.root) as root:
            removed = [_swept(root, f".{layout.name(session_id, fmt)}.tmp") for fmt in FORMATS]
        if FLOCK:
            removed += _index_swept(self._index, session_id)
        return [path for path in removed if path]

    def sweep_root(self) -> list[str]:
        """Remove every temp file and temp link that killed writers left under the root; the
        paths removed. Each is swept under its session's id lock and file lock (old-style
        ones: the lock their writers held); live writers' files and symlinks are left alone,
        and so are names the store never makes."""
        try:
            names = os.listdir(self._layout.root)
        except FileNotFoundError:
            return []
        removed: list[str | None] = []
        for name in names:
            temp = TEMP_FILE.fullmatch(name)
            parsed = session_name(temp["name"]) if temp else None
            try:
                if parsed is not None:
                    removed.append(self._sweep_temp(*parsed, name, old=bool(temp and temp["random"])))
                elif temp and marker_temp(temp):
                    with Dir(self._layout.root) as root:
                        removed.append(_swept(root, name))
                elif name.endswith("-forks") and SESSION_ID_PATTERN.fullmatch(
                    parent := name[: -len("-forks")]
                ):
                    with self._held(parent) if not FLOCK else nullcontext():  # see the module's notes
                        removed += _index_swept(self._index, parent)
            except UnsafePathError as error:  # a symlinked session file or index: left alone
                _log.warning("left %s: %s", error.path, error)
        return [path for path in removed if path]

    def _sweep_temp(self, session_id: str, file_format: FileFormat, name: str, *, old: bool) -> str | None:
        root_path = self._layout.root
        with self._held(session_id), self._locked(session_id, file_format), Dir(root_path) as root:
            return _swept(root, name, locked=old)

    def _held(self, session_id: str) -> AbstractContextManager[None]:
        """The session's id lock, for a sweep of the root: taking it does not sweep the session
        first (on first use), where what is removed would go uncounted."""
        self._swept[session_id] = True
        return self._locks.held(session_id)


def _index_swept(index: ForkIndex, parent_id: str) -> list[str]:
    """``index.sweep(parent_id)``; nothing when ``{parent_id}-forks`` is no directory (a
    file there, left with a warning: a session's use is not refused for it)."""
    try:
        return index.sweep(parent_id)
    except NotADirectoryError as error:
        _log.warning("left %s: %s", error.filename, error.strerror)
        return []


def _swept(root: Dir, temp: str, *, locked: bool = False) -> str | None:
    """The path of ``temp`` once removed as residue; ``None`` when it is not residue, is gone,
    or is not a file of the store (a symlink or another entry, left with a warning).
    ``locked``: the caller holds the lock its writer held, so it is residue when it exists."""
    try:
        if locked:
            if root.no_symlink(temp) is None:
                return None
            root.remove(temp)
        elif not remove_residue(root, temp, wait=False):
            return None
    except (UnsafePathError, FileExistsError, IsADirectoryError, PermissionError) as error:
        _log.warning("left %s under %s: %s", temp, root.path, error)
        return None
    except FileNotFoundError:
        return None
    return root.join(temp)
