"""``doctor`` and ``compact``: checking a store and repairing it, and rewriting journals.

The parser (``commands``) names these handlers and imports this module when one of them runs."""

from __future__ import annotations

import argparse

from rich.table import Table
from rich.text import Text

from ..doctor import check_store
from ..errors import CorruptSessionError, SessionNotFoundError
from ..protocols import SessionStore
from ..stores import FileSessionStore
from ..stores.file.restore import compact
from .browse import all_sessions
from .logged import quiet_warnings, unreadable_listed
from .output import clean, warn
from .prefixes import full_ids
from .printing import console, print_json, progress_bar

__all__: list[str] = []  # its handlers run through the parser of ``commands``


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
    ids = await full_ids(store, args.ids)  # prefixes too, before any is compacted
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
