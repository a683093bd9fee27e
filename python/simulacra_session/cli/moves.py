"""``export``, ``import`` and ``copy``: sessions moved between stores as they are (``transfer``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterator
from typing import IO

from rich.text import Text

from ..errors import CorruptSessionError
from ..protocols import SessionStore
from ..stores.file.files import fsync_dir
from ..stores.file.layout import session_name
from ..transfer import CopyStoreError, TransferResult, copy_sessions, export_sessions, import_sessions
from .output import Output, console, named, print_json, progress_bar, unreadable_listed, warn
from .urls import CommandError, OpenStore, on_store, open_store, printable

__all__ = ["add_parsers"]


@contextlib.contextmanager
def _output(path: str | None, complete: Callable[[], bool], placed: list[str]) -> Iterator[Output]:
    """Where an export goes: stdout (``None`` or ``-``), or the file ``path``.

    A regular file (or a new one) is written whole or not at all: under a temp name beside
    it (beside a symlink's target, for a symlink), made durable, then renamed over it, so an
    export that fails (an id mistyped, a session unreadable, a full disk) leaves a file
    already there, yesterday's backup say, as it was. An export that left sessions out
    (``complete()`` false at the end) is renamed to ``{path}.partial`` instead: the file keeps
    the last whole export, which may hold the sessions now unreadable. The file written is
    appended to ``placed``. The file keeps its mode and owner; a
    new one is private to its owner (``0o600``), as sessions are. Anything else (a FIFO, a
    device such as ``/dev/stdout``), or a file whose directory takes no new file, is written
    in place, as the shell's ``>`` would (a file synced before the command succeeds). Its
    write errors name it (``Output``); a file is written unbuffered, so none is left to fail
    again when it closes."""
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
    temp = target = None
    if found is None or stat.S_ISREG(found.st_mode):
        target = os.path.realpath(path)
        temp = _temp_beside(target)
    try:  # from before the temp file is made: a signal just after still has it removed
        if temp is not None:
            try:
                with _named_as(path):  # a file object from the start: its descriptor never leaks
                    file = open(temp, "xb", buffering=0, opener=_private)  # noqa: SIM115 (below)
            except PermissionError:
                temp = None
        if temp is None or target is None:
            with open(path, "wb", buffering=0) as out:
                yield Output(out, path)
                if stat.S_ISREG(os.fstat(out.fileno()).st_mode):  # a FIFO or a device keeps nothing
                    _sync(out, path)
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
        with _named_as(target):
            os.replace(temp, target)
    except BaseException:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise
    fsync_dir(os.path.dirname(target))
    placed.append(target)


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


def _as_session_file(store: SessionStore, path: str | None) -> str | None:
    """The session id ``path`` would be read as by ``store``, a file store, when it names one of
    its session files (``STORE/backup.jsonl``, or a symlink to it); ``None`` otherwise."""
    root = getattr(store, "root", None)
    if not isinstance(root, str) or not path or path == "-":
        return None
    directory, name = os.path.split(os.path.realpath(path))
    found = session_name(name)
    return found[0] if found is not None and directory == os.path.realpath(root) else None


async def _export(store: SessionStore, args: argparse.Namespace) -> int:
    inside = _as_session_file(store, args.output)
    if inside is not None:  # the store would read it as a damaged session, and doctor set it aside
        raise CommandError(
            f"{args.output}: in the store {getattr(store, 'root', '')}, where it would be read as "
            f"session {inside}: write the export elsewhere"
        )
    skipped: list[str] = []

    def unreadable(session_id: str, error: CorruptSessionError) -> None:
        skipped.append(session_id)
        warn(f"session {session_id} not exported: {error}")

    whole_store = not args.ids  # all it can; named sessions are exported all or not at all
    placed: list[str] = []
    with (
        unreadable_listed() as listed,  # named sessions, or their parents, unreadable: an error
        progress_bar("exporting") as progress,
        _output(args.output, lambda: not (skipped or (listed and whole_store)), placed) as out,
    ):
        count = await export_sessions(
            store, out, args.ids or None, progress=progress, on_unreadable=unreadable if whole_store else None
        )
        out.flush()
    if whole_store:
        skipped += sorted(listed)  # files the listing skipped, each named by its warning
    where = console(stderr=True)
    if where.is_terminal or placed or skipped:
        done = f"exported {count} session(s)" + (f" to {placed[0]}" if placed else "")
        left = f"; left out {len(skipped)} unreadable (see the warnings, and doctor)" if skipped else ""
        kept = f"; {args.output} not replaced" if placed and placed[0].endswith(".partial") else ""
        where.print(Text(done + left + kept))
    return 1 if skipped else 0


def _done(result: TransferResult, verb: str, as_json: bool, left_out: int = 0) -> int:
    """Print what an import or copy did; its exit status (1 when it left out ``left_out``)."""
    if as_json:
        print_json(dataclasses.asdict(result))
    else:
        there = result.skipped - result.passed_over
        parts = [f"{verb} {result.written} session(s)"]
        parts += [f"replaced {result.replaced}"] if result.replaced else []
        parts += [f"skipped {there} already there"] if there else []
        parts += [f"passed over {result.passed_over} (see the warnings)"] if result.passed_over else []
        left = f"; left out {left_out} unreadable (see the warnings, and doctor)" if left_out else ""
        console().print(Text(", ".join(parts) + left))
    return 1 if left_out else 0


async def _import(store: SessionStore, args: argparse.Namespace) -> int:
    source: str | IO[bytes] = sys.stdin.buffer if args.file == "-" else args.file
    with progress_bar("importing") as progress:
        result = await import_sessions(store, source, on_conflict=args.on_conflict, progress=progress)
    return _done(result, "imported", args.json)


def _listed_in(paths: set[str], store: SessionStore) -> set[str]:
    """The files of ``paths`` (skipped by a listing) that are ``store``'s own: not the target's."""
    root = getattr(store, "root", None)
    if not isinstance(root, str):
        return set()
    where = os.path.realpath(root)
    return {path for path in paths if os.path.realpath(os.path.dirname(path)) == where}


def _same_directory(source: OpenStore, target: OpenStore) -> bool:
    """Whether both are file stores of one directory, however it is spelled (``s/``, ``s/.``,
    a symlink to it, ``file:s?format=json``): the same device and inode, not the same string."""
    roots = [getattr(opened.store, "root", None) for opened in (source, target)]
    if not all(isinstance(root, str) for root in roots):
        return False
    try:
        return os.path.samefile(str(roots[0]), str(roots[1]))
    except FileNotFoundError:  # a target not made yet: no directory of the source's
        return False


def _copy(args: argparse.Namespace) -> int:
    skipped: list[str] = []

    def unreadable(session_id: str, error: CorruptSessionError) -> None:
        skipped.append(session_id)
        warn(f"session {session_id} not copied: {error}")

    async def run() -> int:
        source = open_store(args.source, create=False)
        try:
            target = open_store(args.target, create=True)
            try:
                if _same_directory(source, target):
                    raise CommandError(
                        f"{source.label}: copying a store onto itself ({args.target} is the same directory)"
                    )
                with unreadable_listed() as listed, progress_bar("copying") as progress:
                    result = await copy_sessions(
                        source.store,
                        target.store,
                        args.ids or None,
                        on_conflict=args.on_conflict,
                        progress=progress,
                        on_unreadable=None if args.ids else unreadable,  # the whole store: all it can
                    )
            except CopyStoreError as error:  # name the store that failed, by its URL
                failed = source if error.side == "source" else target
                raise CommandError(f"{failed.label}: {error.reason}") from None
            finally:
                await target.close()
        finally:
            await source.close()
        left_out = len(skipped) + len(_listed_in(listed, source.store))  # each named by its warning
        return _done(result, "copied", args.json, left_out)

    for name, url in (("SRC", args.source), ("DST", args.target)):
        if not url:
            raise CommandError(f"copy: {name} is empty: name a directory or a store URL")
    if printable(args.source) == printable(args.target):
        raise CommandError(f"{printable(args.source)}: copying a store onto itself")
    return asyncio.run(run())


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``export``, ``import`` and ``copy``."""
    conflict = argparse.ArgumentParser(add_help=False)
    conflict.add_argument(
        "--on-conflict",
        choices=["error", "skip", "replace"],
        default="error",
        help="a session the target has already: error (default: nothing is written), skip it "
        "(resumes an interrupted run), or replace it",
    )
    conflict.add_argument(
        "--json",
        action="store_true",
        help='{"written", "replaced", "skipped", "passed_over"}: skipped counts those passed over '
        "(not in the target, each warned of) and those already there",
    )
    export = commands.add_parser(
        "export", parents=[common], help="a versioned JSONL export of all or the given sessions"
    )
    export.add_argument("ids", nargs="*", metavar="ID", help="these sessions (and what they inherit from)")
    export.add_argument(
        "-o",
        "--output",
        help="file to write (default: stdout); a regular file is replaced whole or not at all: "
        "a failed export leaves it as it was, and one that left unreadable sessions out goes to "
        "FILE.partial",
    )
    export.set_defaults(run=on_store(_export, create=False))
    imports = commands.add_parser(
        "import", parents=[common, conflict], help="write an export's sessions into the store, as they were"
    )
    imports.add_argument("file", help="the export (- for stdin)")
    imports.set_defaults(run=on_store(_import, create=True))
    copy = commands.add_parser("copy", parents=[conflict], help="copy sessions from one store to another")
    copy.add_argument("source", metavar="SRC", help="the store to copy from (a directory or a URL)")
    copy.add_argument("target", metavar="DST", help="the store to copy to (made when missing)")
    copy.add_argument("ids", nargs="*", metavar="ID", help="these sessions (and what they inherit from)")
    copy.set_defaults(run=_copy)
