"""Type stub of the compiled hot path; ``simulacra_session._fallback`` is its pure-Python twin.

Both twins expose the same eight functions and the ``FileSyncer`` and ``Mailbox``
classes, with the same bytes, results and errors.
"""

import os
from collections.abc import Callable
from typing import Any, final

from typing_extensions import Self

__all__ = [
    "FileSyncer",
    "Mailbox",
    "atomic_write",
    "copy_json",
    "derive_slug",
    "dumps",
    "link_fork",
    "loads",
    "loads_lines",
    "read_cached",
    "stamps",
    "sync_files",
]

def dumps(obj: object) -> bytes:
    """Serialize ``obj`` to compact UTF-8 JSON (no spaces, no ASCII escaping, dict order kept).

    Accepts dict (str keys), list, tuple, str, bool, int of any size, finite float and None,
    subclasses included (written as their base value). Strings escape ``"`` ``\\`` and
    U+0000-U+001F only (``\\b \\f \\n \\r \\t`` short, others ``\\u00xx``); floats are written
    as Python's ``repr``. Containers nest at most 128 deep.

    Raises ``SerializationError`` naming the JSONPath of the fault, e.g.
    ``cannot serialize set at $.messages[3].content[0].result.deep[1]``.
    """

def loads(data: bytes | bytearray | str) -> object:
    """Parse one strict RFC 8259 JSON document.

    Integers (no ``.``/``e``) become ``int`` of any size, other numbers ``float``. Rejected with
    ``ValueError``: invalid UTF-8, NaN/Infinity, trailing data, raw control characters in
    strings, lone surrogate escapes, numbers that overflow a float, nesting deeper than 128.
    Duplicate keys keep the last value, like ``dict``.
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

def derive_slug(text: str, limit: int = 50) -> str | None:
    """Derive a session label from a user's first message.

    Whitespace runs (``str.isspace``) collapse to one space and the ends are stripped; text of
    at most ``limit`` code points is returned whole, longer text is cut at the last word
    boundary within ``limit`` code points, or hard at ``limit`` when the first word is longer.
    Returns ``None`` for blank text. ``ValueError`` when ``limit < 1``.
    """

def atomic_write(path: str | os.PathLike[str], data: bytes, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new bytes, never a mix.

    Writes a temp file ``.{name}.{random}.tmp`` in the same directory, fsyncs it, renames it
    over ``path`` and fsyncs the directory (``fsync=False`` skips both fsyncs, keeping the
    atomic rename). No temp file survives an error; ``OSError`` carries errno and filename.
    The GIL is released during the I/O.
    """

def link_fork(
    root: str | os.PathLike[str],
    parent_id: str,
    child_id: str,
    fsync: bool = True,
    suffix: str = ".json",
) -> bool:
    """Point the index entry ``{root}/{parent_id}-forks/{child_id}{suffix}`` at ``{root}/{child_id}{suffix}``.

    Creates the ``-forks`` directory when missing and atomically (re)places the hard link, so
    that it shares the inode of the current session file; fsyncs the directory when it changed
    and ``fsync`` is true. Returns ``False`` where the file system has no hard links.
    ``InvalidSessionIdError`` for a bad id, ``ValueError`` for a suffix that is not a dot and
    lowercase letters; ``OSError`` (errno, filename) otherwise.
    """

def stamps(directory: str | os.PathLike[str], names: list[str]) -> list[tuple[int, int, int] | None]:
    """``(st_ino, st_size, st_mtime_ns)`` of each of ``names`` in ``directory``, symlinks
    followed as ``os.stat`` follows them; ``None`` for an absent name. Each is one ``fstatat``
    on the directory's descriptor (no walk of the whole path), without the GIL. ``OSError``
    (errno, the whole path) for any other failure, ``ValueError`` for a NUL byte.
    """

def sync_files(fds: list[int]) -> list[int]:
    """Make the data written through each open descriptor durable; the errno of each, in
    order (0: durable). The descriptors stay open. Without the GIL.

    Linux: ``fdatasync`` each; a batch holding 4 or more descriptors of one file system gets
    one ``syncfs`` for them instead, on kernels from 5.8 (older ones did not report writeback
    errors through it); a failed ``syncfs`` falls back to ``fdatasync`` each, so each reports
    its own error. macOS: ``fcntl(F_FULLFSYNC)`` (``fsync`` where the file system refuses it).
    Windows: ``FlushFileBuffers`` through the C runtime's ``_commit``, as ``os.fsync``.
    A descriptor that is not open gives ``EBADF``; ``OverflowError`` beyond a C ``int``.
    """

def read_cached(path: str | os.PathLike[str]) -> tuple[bytes, int, int] | None:
    """The regular file's bytes, inode and mtime (ns) when all of it is in memory: the path
    resolved from the dentry cache alone (``openat2`` ``RESOLVE_CACHED``, Linux 5.12+) and
    the bytes read from the page cache alone (``preadv2`` ``RWF_NOWAIT``); it never waits on
    the disk, so an event loop may call it. ``None`` when a blocking read must tell (not in
    memory, not a regular file, any error, not Linux); ``FileNotFoundError`` when the dentry
    cache knows the path is absent. Holds the GIL (a copy from memory).
    """

@final
class Mailbox:
    """Where the sync thread leaves outcomes for one event loop, waking it through ``wake_fd``.

    ``wake_fd`` (an eventfd or a pipe's write end, non-blocking; never closed here, nor
    written once ``close`` has returned) gets 8 bytes when outcomes arrive while the owner is
    neither polling nor signalled since it last took them. Posting needs no GIL: the loop is
    woken once, not again by a GIL handoff.
    """

    def __new__(cls, wake_fd: int) -> Self: ...
    def take(self, polling: bool) -> list[tuple[Any, int, bool]]:
        """Every outcome posted so far, oldest first. ``polling``: the owner will call again
        by itself, so posts need not wake it until a later ``take(False)``."""

    def close(self) -> list[tuple[Any, int, bool]]:
        """Refuse later outcomes (they go to the syncer's ``deliver``); returns those unread."""

@final
class FileSyncer:
    """Writes journal appends and makes files durable on a background thread, many at a time.

    The thread takes every job submitted while it was busy: it writes each append (when
    the file is still the one expected), makes every descriptor durable together (one
    ``syncfs`` for a batch of 4 or more on Linux 5.8+, else an ``fdatasync`` each), closes those
    submitted, then posts each outcome ``(token, errno, written)`` to the job's mailbox, or
    calls ``deliver([(token, errno, written), ...])`` once for those without an open one:
    ``written`` when the bytes are in the file, ``errno`` 0 when nothing failed (not written
    with errno 0: the file was not the one expected, nothing was written). An exception
    from ``deliver`` is logged to the ``simulacra_session`` logger. Waiting, writing, syncing,
    closing and posting run detached from the interpreter; only ``deliver`` holds the GIL.

    A journal appended to stays *leased*: open and ``flock``ed, so the next append that
    expects the state the last one left (inode, end, last record) is a ``pwrite`` alone. A
    lease is let go (its descriptor closed, never unlocked: a forked child may share it)
    after 250 idle milliseconds, when 256 newer ones (at most a quarter of the descriptor
    limit) are held, when a write through it fails, or by :meth:`release`; every writer of
    a journal, in any process, takes its ``flock`` before changing or replacing it, so a
    writer elsewhere waits for a lease until its holder has been idle that long. The thread
    leaves after 5 idle seconds with no lease held; the next job or lease starts one.
    """

    def __new__(cls, deliver: Callable[[list[tuple[Any, int, bool]]], object]) -> Self: ...
    def submit(self, fd: int, token: Any, mailbox: Mailbox | None = None) -> None:
        """Make the data written to ``fd`` durable, then close it; the outcome comes with ``token``.

        After :meth:`stop` this is done at once, in the caller's thread. ``RuntimeError``
        when no thread can be started (nothing is queued then).
        """

    def append(
        self,
        path: str | os.PathLike[str],
        inode: int,
        end: int,
        last: bytes,
        payload: bytes,
        token: Any,
        mailbox: Mailbox | None = None,
    ) -> None:
        """Append ``payload`` to the journal at ``path`` and make it durable, holding its ``flock``.

        Written only when ``path`` opens to the inode ``inode``, ``end`` bytes long and
        ending with ``last`` (the journal's last record: a file that reused the inode number
        at the same size differs there), not locked by another process and still named
        ``path`` once locked; then at ``end``. Through the journal's lease instead, when the
        lease's last append left exactly that state (another state: not written). Otherwise
        nothing is written (not written, errno 0). Everywhere but POSIX, never written.
        After :meth:`stop` this is done at once, in the caller's thread.
        """

    def append_now(
        self, path: str | os.PathLike[str], inode: int, end: int, last: bytes, payload: bytes
    ) -> tuple[int, bool]:
        """Append ``payload`` to the journal now, in this thread, as :meth:`append` does but
        without making it durable: ``(errno, written)`` as it reports them. Releases the GIL."""

    def expedite(self, mailbox: Mailbox) -> None:
        """The owner of ``mailbox`` waits for its jobs: it will take by itself, as after
        ``take(True)``, and while the thread syncs one of them it keeps its CPU from halting:
        a thread of idle priority spins there, so the disk's completions wake it without a
        halted virtual CPU's exit (Linux; see ``rust/src/awake.rs``). Jobs of a mailbox taken
        with ``polling`` true are kept so too."""

    def release(self, path: str | os.PathLike[str]) -> None:
        """Let go of the lease on ``path``, if any: its lock goes once no write under way
        holds it. A blocking writer of this process calls this before it locks the journal."""

    def abandon_leases(self) -> None:
        """In a forked child: close every leased descriptor (they are the parent's, and would
        keep its journals locked), without the locks a vanished thread may hold."""

    def stop(self) -> None:
        """Let the thread finish what is queued and wait for it, and let go of every lease;
        later work is done inline."""
