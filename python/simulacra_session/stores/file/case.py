"""Session ids that differ only in case, on a file system that compares names without case.

On macOS's and Windows' default file systems (and exFAT, FAT, ext4 with ``casefold``),
``alice.jsonl`` opens ``Alice.jsonl``: two ids that differ only in case would read, write
and delete one file. The store learns once whether its root compares names so, from the
first session file it finds or writes: looked up again with the case of every letter
swapped, it is found though the directory holds no such name. There, before a session's
file is read, written or removed, the name the directory holds for it is checked: another
id's raises ``CaseClashError``, nothing touched. Writers check under the file's ``flock``
(or the root's, while it has none), so of two ids created at once, the second finds the
first's file and is refused. A reader, which takes no lock, checks that the file it read
(by its inode) is the one found right (``owns``), and only such a journal is remembered
for appends: a swap between the check and the read never points an append at another
id's file.

A name found right is trusted while its file keeps its inode (a rewrite's new file, written
by this store, is trusted as written). Otherwise the root's names are read again, unless
the last reading was taken 2 seconds or more after the root's mtime, which has not changed
since: a change after it would have moved the mtime, even where it counts whole seconds
(exFAT through FUSE) or two (FAT). Where names compare with case, none of this costs more
than the first look.

Some such file systems do not keep the case of names either: they list every name in lower
case (NTFS mounted by ``lowntfs-3g -o ignore_case``, FAT without long names). A session
``Alice`` saved there would be found only as ``alice``'s. So before the first new file whose
name has capitals is written, the store probes the root once, under its exclusive lock (a
file with capitals, made, listed and removed): where it is listed in lower case, such an id
raises ``CaseNotKeptError`` before anything is written under its name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from contextlib import suppress

from ..._beneath import Dir, lock, remove_residue
from ..._lru import LRU
from ...errors import CaseClashError, CaseNotKeptError
from .layout import CASE_PROBE, SUFFIXES, FileFormat

__all__ = ["CaseGuard"]

#: How long after the root's mtime a reading of its names must be taken to be reused while
#: the mtime stays the same: FAT counts mtimes in steps of two seconds.
_SETTLED_NS = 2_000_000_000


def _as_made(name: str) -> str:
    """A name as a root that keeps case lists it."""
    return name


class _Names:
    """The root's names as read at ``taken`` (ns since the epoch), with its mtime then."""

    __slots__ = ("exact", "folded", "mtime", "taken")

    def __init__(self, mtime: int, taken: int, names: list[str]) -> None:
        self.mtime = mtime
        self.taken = taken
        self.exact = frozenset(names)
        self.folded = {name.lower(): name for name in names}  # ids are ASCII

    def held(self, name: str) -> str | None:
        """The name held for ``name``: itself when held as it is, else one differing in case."""
        return name if name in self.exact else self.folded.get(name.lower())


class CaseGuard:
    """What one store knows of how its root compares names."""

    __slots__ = ("_insensitive", "_listed_as", "_names", "_root", "_trusted")

    def __init__(self, root: str, remembered: int) -> None:
        self._root = root
        self._insensitive: bool | None = None  # None: no session file seen yet
        self._trusted: LRU[str, tuple[int, int]] = LRU(remembered)  # name -> (st_dev, st_ino)
        self._names: _Names | None = None
        self._listed_as: Callable[[str], str] | None = None  # how names are listed: probed

    def check(self, session_id: str) -> None:
        """``CaseClashError`` when one of ``session_id``'s file names opens another id's file."""
        if self._sensitive():
            return
        for suffix in SUFFIXES.values():
            name = session_id + suffix
            try:
                found = os.lstat(os.path.join(self._root, name))
            except FileNotFoundError:
                self._trusted.pop(name)  # a file made under the name later is checked anew
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

    def owns(self, session_id: str, file_format: FileFormat, inode: int) -> bool:
        """Whether the file read as ``session_id``'s, by its ``inode``, is the one its name was
        found right for (checked again when not yet: ``CaseClashError`` when another id's
        file is there now). ``False``: replaced since it was read, by a file found right."""
        if self._sensitive():
            return True
        name = session_id + SUFFIXES[file_format]
        trusted = self._trusted.get(name)
        if trusted is None or trusted[1] != inode:
            self.check(session_id)
            trusted = self._trusted.get(name)
        return self._sensitive() or (trusted is not None and trusted[1] == inode)

    def wrote(self, session_id: str, file_format: FileFormat) -> None:
        """Trust the file of ``session_id`` in ``file_format``, which this store has just
        written under its locks after ``check``."""
        if self._sensitive():
            return
        name = session_id + SUFFIXES[file_format]
        try:
            found = os.lstat(os.path.join(self._root, name))
        except FileNotFoundError:  # removed since: nothing to trust
            return
        if self._compares_without_case(name):
            self._trusted[name] = (found.st_dev, found.st_ino)

    def creating(self, session_id: str, file_format: FileFormat) -> None:
        """Before ``session_id``'s new file is written, under the root's exclusive lock:
        ``CaseNotKeptError`` when its name has capitals and the root compares names without
        case and does not keep theirs (learnt once, by the probe), nothing written."""
        name = session_id + SUFFIXES[file_format]
        if self._sensitive() or name == name.lower():
            return
        if self._listed_as is None:
            self._probe()
        listed = self._listed_as
        if listed is not None and listed(name) != name:
            raise CaseNotKeptError(session_id, os.path.join(self._root, listed(name)))

    def _probe(self) -> None:
        """Make ``..Case-Probe.tmp`` (``flock``ed: a live probe is no residue), look up its
        name with its case swapped and, found, read the root's names, then remove it: not
        found, the root compares names with case; held as made, it keeps case; held in
        another case, it lists names so."""
        probe = f".{CASE_PROBE}.tmp"
        with Dir(self._root) as root:
            try:
                while True:
                    remove_residue(root, probe, wait=True)  # a killed prober's, in whatever case
                    try:
                        fd = root.open_file(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                    except FileExistsError:
                        continue  # made again meanwhile: residue again
                    try:
                        if not lock(fd) or not root.names_open(probe, fd):
                            continue  # swept meanwhile as residue: make it again
                        swapped = root.entry(probe.swapcase()) is not None
                        names = root.names() if swapped else [probe]  # a listing only where needed
                    finally:
                        os.close(fd)  # before the removal: Windows removes no file that is open
                    with suppress(FileNotFoundError):  # swept since, as residue: gone either way
                        root.remove(probe)
                    break
            except OSError as error:
                raise root.refused_or(probe, error) from None
        held = probe if probe in names else next((n for n in names if n.lower() == probe.lower()), probe)
        if held == probe:
            self._listed_as = _as_made
            if self._insensitive is None:
                self._insensitive = swapped
        else:
            self._insensitive = True
            self._listed_as = str.upper if held == probe.upper() else str.lower

    def compares_without_case(self, names: Iterable[str]) -> bool:
        """Whether the root compares names without case, learnt from ``names`` (files found
        in it) while not yet known. ``False`` until one of them teaches it."""
        return not self._sensitive() and any(self._compares_without_case(name) for name in names)

    def _sensitive(self) -> bool:
        """Whether the root is known to compare names with case: nothing to check."""
        return self._insensitive is False

    def _compares_without_case(self, name: str) -> bool:
        """Whether the root compares names without case, learnt from ``name``, a file in it:
        its name with every letter's case swapped opens a file that the directory does not
        hold by that name (inode numbers cannot tell: exFAT has none, FUSE makes them up)."""
        if self._insensitive is None:
            swapped = os.path.join(self._root, name.swapcase())
            try:
                insensitive = os.path.lexists(swapped) and name.swapcase() not in os.listdir(self._root)
            except FileNotFoundError:  # the root, removed meanwhile: learnt from a later file
                return False
            # learnt only while the file is still there (removed meanwhile, the swapped name
            # is not found either way), and the swapped name still found (another file of
            # that name, removed meanwhile, is not listed either)
            still = os.path.lexists(os.path.join(self._root, name))
            if still and (not insensitive or os.path.lexists(swapped)):
                self._insensitive = insensitive
            return insensitive
        return self._insensitive

    def _held_name(self, name: str) -> str | None:
        """The name the root's directory holds for ``name``, compared without case; ``None``
        when it holds none. The last reading of its names is reused only while its mtime is
        the same and that reading was taken well after it (``_SETTLED_NS``)."""
        try:
            mtime = os.stat(self._root).st_mtime_ns
            names = self._names
            if names is not None and names.mtime == mtime and names.taken - mtime >= _SETTLED_NS:
                held = names.held(name)
                if held == name:
                    return held
            taken = time.time_ns()
            names = _Names(mtime, taken, os.listdir(self._root))
        except FileNotFoundError:  # the root, removed meanwhile
            return None
        self._names = names
        return names.held(name)
