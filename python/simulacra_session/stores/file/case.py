"""Session ids that differ only in case, on a file system that compares names without case.

On macOS's and Windows' default file systems (and exFAT, FAT, ext4 with ``casefold``),
``alice.jsonl`` opens ``Alice.jsonl``: two ids that differ only in case would read, write
and delete one file. The store learns once whether its root compares names so, from the
first session file it finds or writes: looked up again with the case of every letter
swapped, it is found though the directory holds no such name. There, before a session's
file is read, written or removed, the name the directory holds for it is checked: another
id's raises ``CaseClashError``, nothing touched. Writers check under the file's ``flock``
(or the root's, while it has none), so of two ids created at once, the second finds the
first's file and is refused.

A name found as it should be is trusted while its file keeps its inode (a rewrite's new
file, written by this store, is trusted as written); the directory's names are read again
when its mtime changed. Where names compare with case, none of this costs more than the
first look.
"""

from __future__ import annotations

import os

from ..._lru import LRU
from ...errors import CaseClashError
from .layout import SUFFIXES

__all__ = ["CaseGuard"]


class CaseGuard:
    """What one store knows of how its root compares names."""

    __slots__ = ("_insensitive", "_names", "_root", "_trusted")

    def __init__(self, root: str, remembered: int) -> None:
        self._root = root
        self._insensitive: bool | None = None  # None: no session file seen yet
        self._trusted: LRU[str, tuple[int, int]] = LRU(remembered)  # name -> (st_dev, st_ino)
        self._names: tuple[int, dict[str, str]] | None = None  # root mtime, lowercase -> name

    def check(self, session_id: str) -> None:
        """``CaseClashError`` when one of ``session_id``'s file names opens another id's file."""
        if self._insensitive is False:
            return
        for suffix in SUFFIXES.values():
            name = session_id + suffix
            try:
                found = os.lstat(os.path.join(self._root, name))
            except FileNotFoundError:
                continue
            if not self._compares_without_case(name):
                return
            key = (found.st_dev, found.st_ino)
            if self._trusted.get(name) == key:
                continue
            held = self._held_name(name)
            if held == name:
                self._trusted[name] = key
            elif held is not None:  # None: removed since, as a look a moment later finds it
                raise CaseClashError(session_id, os.path.join(self._root, held))

    def wrote(self, name: str) -> None:
        """Trust ``name``, a file this store has just written under its locks after ``check``."""
        if self._insensitive is False:
            return
        try:
            found = os.lstat(os.path.join(self._root, name))
        except FileNotFoundError:  # removed since: nothing to trust
            return
        if self._compares_without_case(name):
            self._trusted[name] = (found.st_dev, found.st_ino)

    def _compares_without_case(self, name: str) -> bool:
        """Whether the root compares names without case, learnt from ``name``, a file in it:
        its name with every letter's case swapped opens a file that the directory does not
        hold by that name (inode numbers cannot tell: exFAT has none, FUSE makes them up)."""
        if self._insensitive is None:
            swapped = name.swapcase()
            try:
                self._insensitive = os.path.lexists(os.path.join(self._root, swapped)) and (
                    swapped not in os.listdir(self._root)
                )
            except FileNotFoundError:  # the root, removed meanwhile: learnt from a later file
                return False
        return self._insensitive

    def _held_name(self, name: str) -> str | None:
        """The name the root's directory holds for ``name``, compared without case (ids are
        ASCII); ``None`` when it holds none. Its names are read again when its mtime changed,
        or when they do not hold ``name`` as it is."""
        try:
            mtime = os.stat(self._root).st_mtime_ns
            names = self._names
            if names is not None and names[0] == mtime and names[1].get(name.lower()) == name:
                return name
            listed = {entry.lower(): entry for entry in os.listdir(self._root)}
        except FileNotFoundError:  # the root, removed meanwhile
            return None
        self._names = (mtime, listed)
        return listed.get(name.lower())
