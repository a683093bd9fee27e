"""``doctor`` and ``compact``: checking a store and repairing it, and rewriting journals."""

from __future__ import annotations

import argparse

from rich.table import Table
from rich.text import Text

from ..doctor import check_store
from ..errors import CorruptSessionError, SessionNotFoundError
from ..ids import validate_session_id
from ..protocols import SessionStore
from ..stores import FileSessionStore
from ..stores.file.restore import compact
from .browse import all_sessions
from .output import clean, console, print_json, progress_bar, quiet_warnings, unreadable_listed, warn
from .urls import on_store

__all__ = ["add_parsers"]


async def _doctor(store: SessionStore, args: argparse.Namespace) -> int:
    with quiet_warnings():  # the report says it all
        report = await check_store(store, repair=args.repair)
    if args.json:
        print_json(report.to_json())
    else:
        out = console()
        if report.problems:
            table = Table("kind", "session", "repaired", "detail", "path", box=None, header_style="bold")
            for problem in report.problems:
                mark = Text("yes", style="green") if problem.repaired else Text("no", style="red")
                table.add_row(
                    Text(problem.kind),
                    Text(clean(problem.session_id or "")),
                    mark,
                    Text(clean(problem.detail)),  # text, not markup: details quote what they found
                    Text(clean(problem.path or "")),
                )
            out.print(table)
        left = sum(not problem.repaired for problem in report.problems)
        summary = (
            f"{len(report.problems)} problem(s), {left} left" if report.problems else "no problems found"
        )
        out.print(Text(summary, style="bold green" if report.ok else "bold red"))
    return 0 if report.ok else 1


async def _compact(store: SessionStore, args: argparse.Namespace) -> int:
    if not isinstance(store, FileSessionStore):
        console().print(Text("nothing to compact: only the file store keeps journals"))
        return 0
    ids = [validate_session_id(session_id) for session_id in args.ids]
    unlisted: set[str] = set()  # files the listing skipped, each named by its warning
    if not ids:
        with unreadable_listed() as unlisted:
            ids = [meta.id for meta in await all_sessions(store)]
    skipped = 0
    with progress_bar("compacting") as progress:
        for done, session_id in enumerate(ids, start=1):
            try:
                if not await compact(store, session_id) and args.ids:
                    raise SessionNotFoundError(session_id)
            except CorruptSessionError as error:
                if args.ids:  # named sessions are compacted all or the command fails
                    raise
                skipped += 1  # the whole store: all it can, naming each it cannot read
                warn(f"session {session_id} not compacted: {error}")
            if progress is not None:
                progress(done, len(ids))
    left_out = skipped + len(unlisted)
    left = f"; left out {left_out} unreadable (see the warnings, and doctor)" if left_out else ""
    console().print(Text(f"compacted {len(ids) - skipped} session(s){left}"))
    return 1 if left_out else 0


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``doctor`` and ``compact``."""
    doctor = commands.add_parser(
        "doctor", parents=[common], help="check the store (exit 1 when a problem is left), --repair it"
    )
    doctor.add_argument(
        "--repair", action="store_true", help="repair what can be repaired; nothing is deleted"
    )
    doctor.add_argument(
        "--json",
        action="store_true",
        help='{"ok", "problems": [{"kind", "session_id", "path", "detail", "repaired"}]}',
    )
    doctor.set_defaults(run=on_store(_doctor, create=False))
    compacting = commands.add_parser(
        "compact", parents=[common], help="rewrite journals without superseded records"
    )
    compacting.add_argument("ids", nargs="*", metavar="ID", help="these sessions (default: all)")
    compacting.set_defaults(run=on_store(_compact, create=False))
