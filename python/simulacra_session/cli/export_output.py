"""Where ``export -o FILE`` writes: FILE replaced whole or not at all, never cut short by an
export that fails or leaves sessions out."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import IO

from ..stores.file.files import fsync_dir
from .output import named
from .printing import Output
from .urls import CommandError

__all__ = ["export_output"]

#: Bytes copied at a time from a spooled export into the file it rewrites in place.
_CHUNK = 1 << 20


@contextlib.contextmanager
def export_output(path: str | None, complete: Callable[[], bool], placed: list[str]) -> Iterator[Output]:
    """Where an export goes: stdout (``None`` or ``-``), or the file ``path``.

    A regular file (or a new one) is written whole or not at all: under a temp name beside
    it (beside a symlink's target, for a symlink), made durable, then renamed over it, so an
    export that fails (an id mistyped, a session unreadable, a full disk) leaves a file
    already there, yesterday's backup say, as it was. An export that left sessions out
    (``complete()`` false at the end) is renamed to ``{path}.partial`` instead: the file keeps
    the last whole export, which may hold the sessions now unreadable. The file written is
    appended to ``placed``. The file keeps its mode and owner; a new one is private to its
    owner (``0o600``), as sessions are.

    A file that cannot be replaced by a rename (its directory takes no new file, or it is a
    mount point, as a single file given to a container is) is rewritten in place once the
    export is whole: from the temp file, or from a spool in ``$TMPDIR`` where its directory
    takes none. Only that last copy failing (a full disk) can leave it cut short. An export
    that left sessions out then has nowhere to go: an error, the file kept. Anything else (a
    FIFO, a device such as ``/dev/stdout``) is written to as it goes, as the shell's ``>``
    would (a file synced before the command succeeds). Write errors name the file, or
    ``$TMPDIR`` for the spool (``Output``); a file is written unbuffered, so none is left to
    fail again when it closes."""
    if path is None or path == "-":
        sys.stdout.flush()
        yield Output(sys.stdout.buffer, "stdout")
        return
    if not path:  # ``-o "$UNSET"``: its realpath is the current directory's, no file's
        raise CommandError("-o is empty: name a file, or - for stdout")
    try:
        found: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        found = None
    if found is not None and not stat.S_ISREG(found.st_mode):
        with open(path, "wb", buffering=0) as out:
            yield Output(out, path)
            if stat.S_ISREG(os.fstat(out.fileno()).st_mode):  # a FIFO or a device keeps nothing
                _sync(out, path)
        placed.append(path)
        return
    target = os.path.realpath(path)
    temp = _temp_beside(target)
    try:  # from before the temp file is made: a signal just after still has it removed
        try:
            file: IO[bytes] | None = _opened(temp, _private, path, "xb")  # its descriptor never leaks
        except PermissionError:
            if found is None:  # no file to rewrite either
                raise
            file = None
        if file is None:
            with _spooled(path, complete) as out:
                yield out
            placed.append(path)
            return
        with file as out:
            yield Output(out, path)
            _sync(out, path)
        if found is not None:
            with _named_as(path):
                os.chmod(temp, stat.S_IMODE(found.st_mode))
                _keep_owner(temp, found)
        if not complete():
            target += ".partial"
        if not _replaced(temp, target):  # FILE is a mount point: rewritten in place
            with _opened(path, _in_place) as file, open(temp, "rb") as whole:
                _rewrite(file, path, whole, path)
            os.unlink(temp)
            target = path
        else:
            fsync_dir(os.path.dirname(target))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    placed.append(target)


def _replaced(temp: str, target: str) -> bool:
    """``temp`` renamed over ``target``; ``False`` where ``target`` is a mount point (``EBUSY``),
    which only a rewrite in place can change (never a ``.partial`` file, made here)."""
    with _named_as(target):
        try:
            os.replace(temp, target)
        except OSError as error:
            if error.errno != errno.EBUSY or target.endswith(".partial"):
                raise
            return False
    return True


@contextlib.contextmanager
def _spooled(path: str, complete: Callable[[], bool]) -> Iterator[Output]:
    """The export spooled in ``$TMPDIR`` (a file with no name, gone however this ends), then
    copied over ``path``, whose directory takes no new file, once whole. ``path`` is opened
    first (an error before anything is exported when it cannot be written) and is cut to size
    only at the end."""
    spool_name = tempfile.gettempdir()
    with _opened(path, _in_place) as file, tempfile.TemporaryFile() as spool:
        yield Output(spool, spool_name)
        if not complete():
            raise CommandError(
                f"{path}: kept as it was, as the export left sessions out, and its directory takes "
                f"no {os.path.basename(path)}.partial: export to another directory"
            )
        try:
            spool.seek(0)
        except OSError as error:
            raise named(error, spool_name) from error
        _rewrite(file, path, spool, spool_name)


def _rewrite(file: IO[bytes], path: str, whole: IO[bytes], source: str) -> None:
    """``file`` (``path``, opened with ``_in_place``) rewritten with what ``whole`` holds from
    where it is, made durable. Overwritten from its start and cut to size last, so a file
    system short of space fails only where the new export is longer. Read errors of ``whole``
    name ``source``."""
    out = Output(file, path)
    with _signals_held():
        _copy(whole, out, source)
        try:
            file.truncate()
        except OSError as error:
            raise named(error, path) from error
        _sync(file, path)


def _copy(whole: IO[bytes], out: Output, source: str) -> None:
    """What ``whole`` holds from where it is, written to ``out``; read errors name ``source``."""
    while True:
        try:
            chunk = whole.read(_CHUNK)
        except OSError as error:
            raise named(error, source) from error
        if not chunk:
            break
        out.write(chunk)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Meanwhile, SIGINT and SIGTERM wait, to be raised again once this ends: a rewrite in
    place, once begun, is finished, never left half old and half new by a Ctrl-C. Where
    Python lets handlers be set (the main thread); elsewhere, or where a handler was not set
    from Python, nothing is held."""
    held = (signal.SIGINT, signal.SIGTERM)
    kept = [signal.getsignal(signum) for signum in held]
    if threading.current_thread() is not threading.main_thread() or None in kept:
        yield
        return
    caught: list[int] = []
    for signum in held:
        signal.signal(signum, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        for signum, handler in zip(held, kept, strict=True):
            signal.signal(signum, handler)
        for number in caught:
            signal.raise_signal(number)


def _opened(
    path: str, opener: Callable[[str, int], int], name: str | None = None, mode: str = "wb"
) -> IO[bytes]:
    """``path`` opened unbuffered for writing (``mode``: ``"xb"`` for a temp file, never one
    already there) with ``opener``; an error names ``name`` (the file asked for, where
    ``path`` is its temp file), else ``path``."""
    with _named_as(name or path):
        return open(path, mode, buffering=0, opener=opener)


def _in_place(path: str, flags: int) -> int:
    """``open``'s opener for a file rewritten in place: neither made nor cut short on opening."""
    return os.open(path, flags & ~(os.O_CREAT | os.O_TRUNC))


def _keep_owner(temp: str, found: os.stat_result) -> None:
    """``temp`` owned as ``found``, the file it replaces, is (where it is not already): unless
    this process may not give it away, or the file system keeps no owners (FUSE without
    ``chown``: ``ENOSYS``)."""
    if not hasattr(os, "chown"):
        return
    made = os.stat(temp)
    if (made.st_uid, made.st_gid) == (found.st_uid, found.st_gid):
        return
    try:
        os.chown(temp, found.st_uid, found.st_gid)
    except OSError as error:
        if not isinstance(error, PermissionError) and error.errno not in _NO_OWNERS:
            raise


#: ``chown`` refused by a file system with no owners to set.
_NO_OWNERS = frozenset(
    code for code in (errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", None)) if code is not None
)


def _private(path: str, flags: int) -> int:
    """``open``'s opener for a new file private to its owner (``0o600``), as sessions are."""
    return os.open(path, flags, 0o600)


def _temp_beside(target: str) -> str:
    """A temp name beside ``target``, picked before the file is made (``tempfile.mkstemp``
    names its file only once made: a signal between the two left it behind, nameless)."""
    directory, name = os.path.split(target)
    return os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")


@contextlib.contextmanager
def _named_as(path: str) -> Iterator[None]:
    """Meanwhile, an ``OSError`` on the temp file an export is written to names ``path``, the
    file asked for, as the shell's ``>`` would: never a temp name nobody typed. A
    ``PermissionError`` stays one (a directory that takes no new file)."""
    try:
        yield
    except OSError as error:
        raise type(error)(error.errno, error.strerror or str(error), path) from error


def _sync(out: IO[bytes], path: str) -> None:
    """Make the export written to ``out`` durable; an error names ``path``."""
    try:
        os.fsync(out.fileno())
    except OSError as error:
        raise named(error, path) from error
