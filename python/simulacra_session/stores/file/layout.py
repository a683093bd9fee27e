"""Where a file store keeps what: session files in two formats and the fork index.

Layout under ``root``::

    {id}.jsonl                   a session journal (``format="jsonl"``, the default; see ``journal``)
    {id}.json                    a session document, the original library's layout (``format="json"``)
    {parent_id}-forks/{id}.jsonl hard link to a fork's current file: the fork index (or ``.json``)
    .no-hard-links               marker: the file system has no hard links, forks() scans
    ..Case-Probe.tmp             made and removed at once: does the file system keep case? (``case``)
    {id}.json.corrupt-<time>     an unreadable file set aside by a save, never deleted
    .{name}.tmp                  a full write's temp file, flocked by its writer (see ``residue``)
    {parent_id}-forks/.{id}.jsonl.{16 hex}.tmp   a temp link of the fork index (see ``residue``)

Every name beneath the root is reached without following a symlink (``_beneath``): one
where the store keeps a file or an index directory raises ``UnsafePathError``, left alone.
Files are created with exactly ``file_mode`` and directories ``dir_mode``, 0600 and 0700
unless the store is told otherwise, whatever the umask.
"""

from __future__ import annotations

import os
import re
from contextlib import suppress
from typing import Literal

from ...ids import SESSION_ID_PATTERN
from .files import fsync_dir
from .locks import settled

__all__ = [
    "CASE_PROBE",
    "FORMATS",
    "NO_HARD_LINKS",
    "OTHER",
    "SUFFIXES",
    "TEMP_FILE",
    "FileFormat",
    "Layout",
    "check_mode",
    "marker_temp",
    "session_name",
]

FileFormat = Literal["jsonl", "json"]
FORMATS: tuple[FileFormat, ...] = ("jsonl", "json")
SUFFIXES: dict[FileFormat, str] = {"jsonl": ".jsonl", "json": ".json"}
OTHER: dict[FileFormat, FileFormat] = {"jsonl": "json", "json": "jsonl"}
NO_HARD_LINKS = ".no-hard-links"
#: Made with capitals, flocked, looked for among the root's names and removed: whether the
#: root keeps the case of names (``case``). A killed prober's is residue, as a temp file.
CASE_PROBE = ".Case-Probe"
#: The names (in lower case: a root that does not keep case lists them so) of the root's own
#: files whose temp files are no session's (``.{name}.tmp``).
_MARKERS = (NO_HARD_LINKS.lower(), CASE_PROBE.lower())
#: A temp file's name: ``.{name}.tmp`` (``atomic_write``), or with 16 random hex digits
#: before ``.tmp`` (a temp link, or a full write of a version before temp files were locked).
TEMP_FILE = re.compile(r"\.(?P<name>.+?)(?P<random>\.[0-9a-f]{16})?\.tmp")


def marker_temp(temp: re.Match[str]) -> bool:
    """Whether ``temp`` (a ``TEMP_FILE`` match) is the temp file of the ``.no-hard-links``
    marker or the case probe, in whatever case the root lists it."""
    return not temp["random"] and temp["name"].lower() in _MARKERS


def session_name(name: str) -> tuple[str, FileFormat] | None:
    """The id and format a directory entry stores, or ``None`` for temp files, dotfiles and the rest."""
    if name.startswith("."):
        return None
    for file_format, suffix in SUFFIXES.items():
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return (stem, file_format) if SESSION_ID_PATTERN.fullmatch(stem) else None
    return None


def check_mode(option: str, mode: object, owner: int) -> int:
    """``mode`` when it is permission bits (``0o000`` to ``0o777``) giving the owner at least
    ``owner`` (the store reads and writes its own files); ``ValueError`` naming ``option``."""
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777 or mode & owner != owner:
        shown = f"{mode:#o}" if isinstance(mode, int) and not isinstance(mode, bool) else repr(mode)
        raise ValueError(
            f"{option} must be permission bits from 0o000 to 0o777 with {owner:#o} set, got {shown}"
        )
    return mode


class Layout:
    """The paths of one store: its root, the format it writes, and the permission bits of the
    files and directories it creates (exactly those, whatever the umask; not on Windows)."""

    __slots__ = ("_root_synced", "dir_mode", "file_mode", "format", "other", "root")

    def __init__(
        self, root: str, file_format: FileFormat, file_mode: int = 0o600, dir_mode: int = 0o700
    ) -> None:
        if file_format not in FORMATS:
            raise ValueError(f"format must be 'jsonl' or 'json', got {file_format!r}")
        self.file_mode = check_mode("file_mode", file_mode, 0o600)
        self.dir_mode = check_mode("dir_mode", dir_mode, 0o700)
        self.root = root
        self._root_synced = False
        self.format: FileFormat = file_format
        self.other: FileFormat = OTHER[file_format]

    def path(self, session_id: str, file_format: FileFormat | None = None) -> str:
        """The session's file in ``file_format`` (the store's, by default)."""
        return os.path.join(self.root, session_id + SUFFIXES[file_format or self.format])

    def name(self, session_id: str, file_format: FileFormat | None = None) -> str:
        """The session file's name under the root."""
        return session_id + SUFFIXES[file_format or self.format]

    def newer_file(self, session_id: str) -> tuple[str, FileFormat] | None:
        """The name and format of the session's file that loads read when both formats exist
        (the newer by mtime, the store's format on a tie); ``None`` when neither does (looked
        for again under the root's lock: ``settled``)."""
        return settled(self.root, lambda: self._newer_file(session_id))

    def _newer_file(self, session_id: str) -> tuple[str, FileFormat] | None:
        newest: tuple[int, str, FileFormat] | None = None
        for file_format in (self.format, self.other):
            name = self.name(session_id, file_format)
            try:
                mtime = os.lstat(os.path.join(self.root, name)).st_mtime_ns  # a symlink: refused when read
            except FileNotFoundError:
                continue
            if newest is None or mtime > newest[0]:
                newest = (mtime, name, file_format)
        return None if newest is None else newest[1:]

    def ids_starting(self, prefix: str) -> list[str]:
        """The ids of the root's session files whose id starts with ``prefix``, in order: the
        names read, no file opened (a session that cannot be read is one too); none, no root."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        found = (session_name(name) for name in names)
        return sorted({named[0] for named in found if named is not None and named[0].startswith(prefix)})

    def make_root(self, fsync: bool) -> str:
        """Create the root (with exactly ``dir_mode``) and missing parents (as the umask says),
        durably with ``fsync``; returns the root. A root found is made durable in its parent
        once too: another process may have just made it, not yet synced."""
        if os.path.isdir(self.root):
            if fsync and not self._root_synced:
                with suppress(PermissionError):  # a parent it may not read: its maker's to sync
                    fsync_dir(os.path.dirname(os.path.abspath(self.root)))
                self._root_synced = True
            return self.root
        missing = []
        path = os.path.abspath(self.root)
        while not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        os.makedirs(self.root, self.dir_mode, exist_ok=True)  # the mode is the root's alone
        if os.name != "nt":
            os.chmod(self.root, self.dir_mode)
        if fsync:
            for created in reversed(missing or [path]):  # none: made meanwhile by another process
                fsync_dir(os.path.dirname(created))
            self._root_synced = True
        return self.root
