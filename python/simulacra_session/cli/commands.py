"""The command line's grammar: every command, its arguments and help, and the handler it runs.

A handler is named here by its module and function and imported only when its command runs,
so ``--help``, ``--version``, ``COMMAND --help`` and a usage error (exit 2) import argparse
and this package's light modules, never rich, the manager or a store: the handlers' modules
(``browse``, ``moves``, ``care``, ``bench``) import what they need at their top.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .._version import __version__
from .output import print_text
from .urls import STORE_ENV, on_store

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from .urls import Work

    _Commands = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["parser"]

#: A command's ``run``: its exit status, for the parsed arguments.
Run = Callable[[argparse.Namespace], int]

_BENCH = """Measure auto-save latency on your own disk: drive a SimpleConversation through a
SessionManager on the chosen store and time each auto-save (message_complete to durable on
disk), at each conversation length, beside the floor measured on the same disk: appending one
line and fdatasyncing it. --store sql --url URL measures a database instead (tables of its own,
dropped after)."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose ``--help`` and ``--version`` reach stdout or fail the command
    naming it (exit 2), as any output does: argparse drops a failed write of its own (exit 0)."""

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        if file is None or file is sys.stderr or not message:  # usage errors: reported as they can be
            super()._print_message(message, file)
            return
        print_text(message, end="")  # to stdout: argparse writes nowhere else


def _handler(module: str, name: str) -> Any:
    """``simulacra_session.cli.{module}.{name}``, imported now."""
    return getattr(import_module(f"{__package__}.{module}"), name)


def _store_work(module: str, name: str, *, create: bool) -> Run:
    """A command that works on the store ``--store`` names (``urls.on_store``): the work is
    ``name`` of ``module``, imported when the command runs."""

    def run(args: argparse.Namespace) -> int:
        work: Work = _handler(module, name)
        return on_store(work, create=create)(args)

    return run


def _command(module: str, name: str) -> Run:
    """A command that opens its stores itself: ``name`` of ``module``, imported when it runs."""

    def run(args: argparse.Namespace) -> int:
        command: Run = _handler(module, name)
        return command(args)

    return run


def parser() -> argparse.ArgumentParser:
    """The ``simulacra-session`` command's parser (its subparsers are ``_Parser`` too)."""
    top: argparse.ArgumentParser = _Parser(
        prog="simulacra-session",
        description="Durable AI-agent conversations from the terminal: look at sessions, move them "
        "between stores, check a store.",
        epilog=f"--store URL: a directory, file:PATH[?format=json], sqlite:///PATH, "
        f"postgresql+psycopg://..., mysql+pymysql://... (default: ${STORE_ENV}, else ./sessions)",
    )
    top.add_argument("--version", action="version", version=f"simulacra-session {__version__}")
    top.add_argument("--store", dest="store_url", metavar="URL", help="the store to work on")
    common = argparse.ArgumentParser(add_help=False)  # --store after the command works too
    common.add_argument(
        "--store", dest="store_url", metavar="URL", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _browse(commands, common)
    _moves(commands, common)
    _care(commands, common)
    _bench(commands)
    return top


def _browse(commands: _Commands, common: argparse.ArgumentParser) -> None:
    """``list``, ``show``, ``tree``, ``rename`` and ``delete`` (``browse``)."""
    listing = commands.add_parser("list", parents=[common], help="sessions, most recently updated first")
    listing.add_argument("--limit", type=int, help="at most this many")
    listing.add_argument("--offset", type=int, default=0, help="after skipping this many")
    listing.add_argument("--json", action="store_true", help="a JSON array of the sessions' metadata")
    listing.set_defaults(run=_store_work("browse", "_list", create=False))
    show = commands.add_parser(
        "show", parents=[common], help="a session's history, inherited messages included"
    )
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help='{"id", "metadata", "messages", "inherited"}')
    show.set_defaults(run=_store_work("browse", "_show", create=False))
    tree = commands.add_parser("tree", parents=[common], help="the fork tree (of one session, with ID)")
    tree.add_argument("id", nargs="?")
    tree.add_argument(
        "--json",
        action="store_true",
        help='an array of roots, each {"id", "label", "children"} ("cycle": true for a session in a fork '
        "cycle, shown as a root)",
    )
    tree.set_defaults(run=_store_work("browse", "_tree", create=False))
    rename = commands.add_parser("rename", parents=[common], help="set a session's label")
    rename.add_argument("id")
    rename.add_argument("label")
    rename.set_defaults(run=_store_work("browse", "_rename", create=False))
    delete = commands.add_parser(
        "delete", parents=[common], help="delete a session (its forks keep their history)"
    )
    delete.add_argument("id")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask")
    delete.set_defaults(run=_store_work("browse", "_delete", create=False))


def _moves(commands: _Commands, common: argparse.ArgumentParser) -> None:
    """``export``, ``import`` and ``copy`` (``moves``)."""
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
    export.set_defaults(run=_store_work("moves", "_export", create=False))
    imports = commands.add_parser(
        "import", parents=[common, conflict], help="write an export's sessions into the store, as they were"
    )
    imports.add_argument("file", help="the export (- for stdin)")
    imports.set_defaults(run=_store_work("moves", "_import", create=True))
    copy = commands.add_parser("copy", parents=[conflict], help="copy sessions from one store to another")
    copy.add_argument("source", metavar="SRC", help="the store to copy from (a directory or a URL)")
    copy.add_argument("target", metavar="DST", help="the store to copy to (made when missing)")
    copy.add_argument("ids", nargs="*", metavar="ID", help="these sessions (and what they inherit from)")
    copy.set_defaults(run=_command("moves", "_copy"))


def _care(commands: _Commands, common: argparse.ArgumentParser) -> None:
    """``doctor`` and ``compact`` (``care``)."""
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
    doctor.set_defaults(run=_store_work("care", "_doctor", create=False))
    compacting = commands.add_parser(
        "compact", parents=[common], help="rewrite journals without superseded records"
    )
    compacting.add_argument("ids", nargs="*", metavar="ID", help="these sessions (default: all)")
    compacting.set_defaults(run=_store_work("care", "_compact", create=False))


def _bench(commands: _Commands) -> None:
    """``bench`` (``bench``)."""
    bench = commands.add_parser(
        "bench", help="measure auto-save latency against the disk's floor", description=_BENCH
    )
    bench.add_argument("--store", choices=["file", "memory", "sql"], default="file")
    bench.add_argument("--url", help="database URL for --store sql, e.g. postgresql+psycopg://u:pw@host/db")
    bench.add_argument("--format", choices=["jsonl", "json"], default="jsonl", help="file store format")
    bench.add_argument("--root", help="directory to write in (default: a temporary one, removed after)")
    bench.add_argument("--no-fsync", action="store_true", help="atomic but not durable saves")
    bench.add_argument("--lengths", default="10,100,1000", help="conversation lengths, comma-separated")
    bench.add_argument("--rounds", type=int, default=100, help="auto-saves timed per length")
    bench.set_defaults(run=_command("bench", "_bench"))
