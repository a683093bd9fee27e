"""The fork index: ``{root}/{parent_id}-forks/{id}.jsonl`` (or ``.json``), a hard link to each fork's file.

``forks(parent_id)`` reads one directory instead of every session. A link shares its
session file's inode, so it is re-made after every rewrite (a new inode); an append keeps
the inode and the link. The canonical file is the truth: an entry that outlived its fork's
deletion, a change of parent, or a crash between a write and its relink is checked against
it. Where the file system has no hard links, a marker file says so and ``forks()`` scans.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from contextlib import suppress

from ..._backend import atomic_write, link_fork
from ...ids import SESSION_ID_PATTERN
from .layout import NO_HARD_LINKS, SUFFIXES, FileFormat, Layout, session_files

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

    def entries(self, parent_id: str) -> list[str]:
        """The ids indexed under ``parent_id`` (to be checked against their files)."""
        return [session_id for _, session_id, _ in session_files(self._layout.index_dir(parent_id))]

    def _link(self, parent_id: str, session_id: str, file_format: FileFormat) -> bool:
        """``link_fork``, retried when a concurrent ``delete(parent_id)`` removes the index dir."""
        suffix = SUFFIXES[file_format]
        for _ in range(2):
            try:
                return link_fork(self._layout.root, parent_id, session_id, self._fsync, suffix)
            except FileNotFoundError:
                pass  # a save after the parent's deletion recreates its index, as this will
        return link_fork(self._layout.root, parent_id, session_id, self._fsync, suffix)

    def unindex(self, parent_id: str, session_id: str, formats: Iterable[FileFormat]) -> None:
        """Remove ``session_id``'s entries in ``parent_id``'s index."""
        if not SESSION_ID_PATTERN.fullmatch(parent_id):
            return
        for file_format in formats:
            with suppress(FileNotFoundError):
                os.unlink(os.path.join(self._layout.index_dir(parent_id), session_id + SUFFIXES[file_format]))

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
            atomic_write(marker, b"no hard links: forks() scans every session\n")
            self._no_hard_links = True
            _log.warning("no hard links under %s: forks() will scan every session", self._layout.root)

    def remove(self, session_id: str) -> None:
        """Remove ``session_id``'s own index (of its forks)."""
        with suppress(FileNotFoundError):
            shutil.rmtree(self._layout.index_dir(session_id))
