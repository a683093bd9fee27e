"""``export``, ``import`` and ``copy``: sessions moved between stores as they are (``transfer``).

The parser (``commands``) names these handlers and imports this module when one of them runs."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import IO

from rich.text import Text

from ..errors import CorruptSessionError, StoreError
from ..protocols import SessionStore
from ..stores.file.layout import session_name
from ..transfer import CopyStoreError, TransferResult, copy_sessions, export_sessions, import_sessions
from . import signals
from .export_output import export_output
from .logged import unreadable_listed
from .output import warn
from .prefixes import full_ids
from .printing import console, print_json, progress_bar
from .urls import CommandError, OpenStore, open_store, printable

__all__: list[str] = []  # its handlers run through the parser of ``commands``


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

    ids = await full_ids(store, args.ids)  # prefixes too, before the output is touched
    whole_store = not ids  # all it can; named sessions are exported all or not at all
    placed: list[str] = []
    with (
        unreadable_listed() as listed,  # named sessions, or their parents, unreadable: an error
        progress_bar("exporting") as progress,
        export_output(args.output, lambda: not (skipped or (listed and whole_store)), placed) as out,
    ):
        count = await export_sessions(
            store, out, ids or None, progress=progress, on_unreadable=unreadable if whole_store else None
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
            try:  # prefixes too, in the source, before the target is made
                ids = await full_ids(source.store, args.ids)
            except StoreError as error:
                raise CommandError(f"{source.label}: {error}") from None
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
                        ids or None,
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
    return signals.run(run())
