"""Where a file store keeps what: session files in two formats and the fork index.

Layout under ``root``::

    {id}.jsonl                   a session journal (``format="jsonl"``, the default; see ``journal``)
    {id}.json                    a session document, the original library's layout (``format="json"``)
    {parent_id}-forks/{id}.jsonl hard link to a fork's current file: the fork index (or ``.json``)
    .no-hard-links               marker: the file system has no hard links, forks() scans
    {id}.json.corrupt-<time>     an unreadable file set aside by a save, never deleted
"""

from __future__ import annotations

import os
from typing import Literal

from ...ids import SESSION_ID_PATTERN
from .files import fsync_dir

__all__ = [
    "FORMATS",
    "NO_HARD_LINKS",
    "OTHER",
    "SUFFIXES",
    "FileFormat",
    "Layout",
    "session_files",
    "session_name",
]

FileFormat = Literal["jsonl", "json"]
FORMATS: tuple[FileFormat, ...] = ("jsonl", "json")
SUFFIXES: dict[FileFormat, str] = {"jsonl": ".jsonl", "json": ".json"}
OTHER: dict[FileFormat, FileFormat] = {"jsonl": "json", "json": "jsonl"}
NO_HARD_LINKS = ".no-hard-links"


def session_name(name: str) -> tuple[str, FileFormat] | None:
    """The id and format a directory entry stores, or ``None`` for temp files, dotfiles and the rest."""
    if name.startswith("."):
        return None
    for file_format, suffix in SUFFIXES.items():
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return (stem, file_format) if SESSION_ID_PATTERN.fullmatch(stem) else None
    return None


def session_files(directory: str) -> list[tuple[str, str, FileFormat]]:
    """``(name, id, format)`` of each session file in ``directory`` (none when it is missing)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return [(name, *parsed) for name in names if (parsed := session_name(name)) is not None]


class Layout:
    """The paths of one store: its root and the format it writes."""

    __slots__ = ("format", "other", "root")

    def __init__(self, root: str, file_format: FileFormat) -> None:
        self.root = root
        self.format: FileFormat = file_format
        self.other: FileFormat = OTHER[file_format]

    def path(self, session_id: str, file_format: FileFormat | None = None) -> str:
        """The session's file in ``file_format`` (the store's, by default)."""
        return os.path.join(self.root, session_id + SUFFIXES[file_format or self.format])

    def name(self, session_id: str, file_format: FileFormat | None = None) -> str:
        """The session file's name under the root."""
        return session_id + SUFFIXES[file_format or self.format]

    def index_dir(self, parent_id: str) -> str:
        """The directory indexing ``parent_id``'s forks."""
        return os.path.join(self.root, parent_id + "-forks")

    def newer_file(self, session_id: str) -> tuple[str, FileFormat] | None:
        """The name and format of the session's file that loads read when both formats exist
        (the newer by mtime, the store's format on a tie); ``None`` when neither does."""
        newest: tuple[int, str, FileFormat] | None = None
        for file_format in (self.format, self.other):
            name = self.name(session_id, file_format)
            try:
                mtime = os.stat(os.path.join(self.root, name)).st_mtime_ns
            except FileNotFoundError:
                continue
            if newest is None or mtime > newest[0]:
                newest = (mtime, name, file_format)
        return None if newest is None else newest[1:]

    def make_root(self, fsync: bool) -> str:
        """Create the root and missing parents (durably with ``fsync``); returns the root."""
        if os.path.isdir(self.root):
            return self.root
        missing = []
        path = os.path.abspath(self.root)
        while not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        os.makedirs(self.root, exist_ok=True)
        if fsync:
            for created in reversed(missing):
                fsync_dir(os.path.dirname(created))
        return self.root
