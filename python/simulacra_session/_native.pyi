"""Type stub of the compiled hot path; ``simulacra_session._pure`` is its pure-Python twin.

Both twins expose the same twelve functions and two classes, with the same bytes, results and
exception types; ``_bind_errors`` is the compiled one's alone (see there). Messages are the
same where this library words them (``SerializationError``'s JSONPath, invalid UTF-8, lone
surrogates, ``OSError``'s errno and path); a JSON syntax error is worded by each twin's parser
(serde_json here, the stdlib's ``json`` in the twin), naming the same fault, at the same line
and column for most (at the end of the input serde_json counts one column short; the stdlib
points an unterminated string at its start); an argument of the wrong type or range gets
pyo3's wording here, the twin's own there.
"""

import os
from typing import final

__all__ = [
    "CommitChannel",
    "Committer",
    "_bind_errors",
    "atomic_write",
    "commit_checksum",
    "copy_json",
    "derive_slug",
    "dumps",
    "link_fork",
    "loads",
    "loads_lines",
    "record_checksum",
    "stamps",
    "sync_files",
    "verify_records",
]

def _bind_errors(
    serialization: type[Exception], invalid_session_id: type[Exception], unsafe_path: type[Exception]
) -> None:
    """Take the classes of ``simulacra_session.errors`` to raise: ``SerializationError``,
    ``InvalidSessionIdError``, ``UnsafePathError`` (the first binding holds; ``TypeError``
    for a class that is no exception). ``simulacra_session._backend`` calls it on import, so
    the extension imports no module of the package; the pure twin imports them itself."""

def dumps(obj: object) -> bytes:
    """Serialize ``obj`` to compact UTF-8 JSON (no spaces, no ASCII escaping, dict order kept).

    Accepts dict (str keys), list, tuple, str, bool, int of any size, finite float and None,
    subclasses included (written as their base value). Strings escape ``"`` ``\\`` and
    U+0000-U+001F only (``\\b \\f \\n \\r \\t`` short, others ``\\u00xx``), and a lone surrogate
    (a JavaScript string may hold one) as a lowercase ``\\udxxx``, as ``JSON.stringify`` writes
    it; floats are written as Python's ``repr``. Containers nest at most 128 deep.

    Raises ``SerializationError`` naming the JSONPath of the fault, e.g.
    ``cannot serialize set at $.messages[3].content[0].result.deep[1]``.
    """

def loads(data: bytes | bytearray | str) -> object:
    """Parse one strict RFC 8259 JSON document.

    Integers (no ``.``/``e``) become ``int`` of any size, other numbers ``float``; a lone
    surrogate escape becomes that surrogate in the ``str``, as ``dumps`` writes it. Rejected
    with ``ValueError``: invalid UTF-8, a ``str`` holding a lone surrogate, NaN/Infinity,
    trailing data, raw control characters in strings, numbers that overflow a float, nesting
    deeper than 128. Duplicate keys keep the last value, like ``dict``.
    """

def loads_lines(
    data: bytes | bytearray, start: int = 0, end: int | None = None, skip: bytes | None = None
) -> tuple[list[object], int]:
    """Parse each line of ``data[start:end]`` as one JSON document, as ``loads`` does.

    Lines end with ``\\n`` (the last one may end at ``end`` instead; no bytes, no lines). Lines
    starting with ``skip`` (when given and not empty) are left out unread. Returns the values
    in order and the size in bytes of the lines left out, their newlines included. Each value
    counts as an item of the returned list for the nesting limit, so it may nest 127 deep.
    Reads a journal in one pass, without splitting it into lines and joining them back.
    ``ValueError`` naming the line (counted from 1, skipped lines included) as ``loads``
    would raise it; ``TypeError`` unless ``data`` is bytes or bytearray.
    """

def copy_json(obj: object) -> object:
    """A deep copy of a JSON value: exactly ``loads(dumps(obj))``, result and errors.

    A tree of the exact built-in types (dict, list, str, int within 64 bits, finite float,
    bool, None) within the nesting limit is copied directly: new dicts and lists, the
    immutable leaves shared. Anything else takes the ``dumps``/``loads`` round trip.
    """

def record_checksum(line: bytes) -> int | None:
    """The checksum of a journal's record ``line`` (without its newline) when it verifies: the
    line ends with ``"cccccccc"]``, the CRC-32 (zlib's) of the bytes before it in 8 lowercase
    hex digits. ``None`` otherwise."""

def commit_checksum(line: bytes, batch: bytes, seed: int) -> int | None:
    """The checksum of the commit or seal record ``line`` when it verifies and so do the
    message lines ``batch`` it commits: ``line`` ends with ``"bbbbbbbb","cccccccc"]``, where
    ``bbbbbbbb`` is the CRC-32 of ``batch`` continued from ``seed`` (the checksum of the record
    before them). ``None`` otherwise; ``OverflowError`` unless ``0 <= seed < 2**32``."""

def verify_records(data: bytes, first: int, seed: int) -> tuple[int, int]:
    """How far the journal ``data`` verifies: the start and end (after its newline) of its
    last header or commit record that verifies with every record and message line before it.

    ``first`` is where the header's line ends (after its newline) and ``seed`` its checksum:
    ``(0, first)`` when no commit record after it verifies. Records (lines starting
    ``["metadata",``) are checked in order with ``commit_checksum``; seal records
    (``["metadata",null,``) chain but are no state; the first record that does not verify,
    or a last one cut short, ends the search. ``OverflowError`` for a negative ``first`` or
    a ``seed`` beyond 32 bits. Checks gigabytes per second, the interpreter released for
    large journals in the compiled twin.
    """

def derive_slug(text: str, limit: int = 50) -> str | None:
    """Derive a session label from a user's first message.

    Whitespace runs (``str.isspace``) collapse to one space and the ends are stripped; text of
    at most ``limit`` code points is returned whole, longer text is cut at the last word
    boundary within ``limit`` code points, or hard at ``limit`` when the first word is longer.
    Returns ``None`` for blank text. ``ValueError`` when ``limit < 1``.
    """

def atomic_write(path: str | os.PathLike[str], data: bytes, fsync: bool = True, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new bytes, never a mix.

    Writes the temp file ``.{name}.tmp`` in the same directory with exactly the permission
    bits ``mode`` (whatever the umask; Windows: the directory's ACL), fsyncs it
    (``F_FULLFSYNC`` on macOS), renames it over ``path`` and fsyncs the directory (not on
    Windows, where a directory cannot be synced); ``fsync=False`` skips both fsyncs, keeping
    the atomic rename. The writer holds ``flock`` on its temp file from its creation until
    the rename: a temp file nobody holds is residue of a killed writer, removed by the next
    writer of the same name (a live one's is waited for). Windows has no ``flock``: there a
    temp file found is taken for residue (one process writes a root). Names are reached from
    the directory's descriptor without following a symlink: a symlink at ``path`` or at the
    temp name raises ``UnsafePathError`` naming it and is left alone. No temp file survives
    an error; ``OSError`` carries errno and ``path``, also for a path that names no file
    (``ENOENT`` when empty, ``EISDIR`` when it ends in a separator, ``.`` or ``..``);
    ``ValueError`` for a mode beyond ``0o777``. The GIL is released during the I/O.
    """

def link_fork(
    root: str | os.PathLike[str],
    parent_id: str,
    child_id: str,
    fsync: bool = True,
    suffix: str = ".json",
    dir_mode: int = 0o700,
) -> bool:
    """Point the index entry ``{root}/{parent_id}-forks/{child_id}{suffix}`` at ``{root}/{child_id}{suffix}``.

    Creates the ``-forks`` directory when missing (with exactly ``dir_mode``, whatever the
    umask; not on Windows) and atomically (re)places the hard link through a temp link
    ``.{child_id}{suffix}.{random}.tmp``, so that it shares the inode of the current session
    file; fsyncs the directory when it changed and ``fsync`` is true (not on Windows). The
    linker holds a shared ``flock`` on the index directory while its temp link exists (a
    sweep takes it exclusively). Every name is reached from ``root``'s descriptor without
    following a symlink: a symlink at the child's file, the index directory or its entry
    raises ``UnsafePathError`` naming it and is left alone. Returns ``False`` where the file
    system has no hard links (FAT, exFAT, some network and FUSE mounts; Unix file systems
    and NTFS have them). ``InvalidSessionIdError`` for a bad id, ``ValueError`` for a suffix
    that is not a dot and lowercase letters or a mode beyond ``0o777``; ``OSError`` (errno,
    filename) otherwise.
    """

def stamps(directory: str | os.PathLike[str], names: list[str]) -> list[tuple[int, int, int] | None]:
    """``(st_ino, st_size, st_mtime_ns)`` of each of ``names`` in ``directory``, of a symlink
    itself (never what it points to, as ``os.lstat``); ``None`` for an absent name. On Unix
    each is one ``fstatat`` on the directory's descriptor (no walk of the whole path); on
    Windows each joined path is stat'ed as ``os.lstat`` does (so a missing directory gives
    ``None`` for every name). Without the GIL. ``OSError`` (errno, the whole path) for any
    other failure, ``ValueError`` for a NUL byte.
    """

def sync_files(fds: list[int]) -> list[int]:
    """Make the data written through each open descriptor durable; the errno of each, in
    order (0: durable). The descriptors stay open. Without the GIL.

    Linux: ``fdatasync`` each; a batch holding 4 or more regular files of one disk file
    system (ext4, XFS, Btrfs, F2FS, ZFS, bcachefs, tmpfs, overlayfs) gets one ``syncfs`` for
    them instead, on kernels from 5.8 (older ones did not report writeback errors through
    it); a failed ``syncfs`` falls back to ``fdatasync`` each, so each reports its own error.
    Pipes, sockets, devices, /proc files and ``O_PATH`` descriptors are synced alone: each
    descriptor's outcome is the one ``fdatasync`` gives it, whatever the batch. macOS:
    ``fcntl(F_FULLFSYNC)`` (``fsync`` where the file system refuses it).
    Windows: ``FlushFileBuffers`` through the C runtime's ``_commit``, as ``os.fsync``.
    A descriptor that is not open gives ``EBADF``; ``OverflowError`` beyond a C ``int``.
    """

@final
class CommitChannel:
    """Where one event loop receives the outcomes of the descriptors it handed to a
    ``Committer``: ``fileno()`` (an eventfd on Linux, a pipe's read end on other Unix) turns
    readable when outcomes arrive, and ``drain()`` takes them. ``OSError`` on Windows, which
    has no descriptor an event loop can watch for this."""

    def __init__(self) -> None: ...
    def fileno(self) -> int:
        """The descriptor that turns readable when outcomes arrive."""

    def drain(self) -> list[tuple[int, int]]:
        """The ``(fd, errno)`` outcomes delivered since the last drain, in order (errno 0:
        durable); the descriptor's readiness is cleared. The caller now owns each ``fd``."""

    def close(self) -> None:
        """Nobody will drain any more: descriptors delivered and not drained, and any
        delivered later, are closed (by the thread, for those not yet done)."""

@final
class Committer:
    """The group-commit thread, started on the first ``submit``: it sleeps until
    descriptors are handed over, makes every one handed over meanwhile durable together
    (``sync_files``), and delivers each outcome to the ``CommitChannel`` named with it,
    waking the channel's reader once per batch. It never closes a descriptor it was handed
    while the channel is open: whoever drains the outcome does."""

    def __init__(self) -> None: ...
    def submit(self, fd: int, channel: CommitChannel) -> bool:
        """Hand ``fd`` over to be made durable; its outcome arrives in ``channel``. ``False``
        (``fd`` not taken) once ``stop`` was called; ``OSError`` if the thread cannot start."""

    def stop(self) -> None:
        """Refuse further work, make durable what was handed over, and wait for the thread
        to end. Without the GIL."""
