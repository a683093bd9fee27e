"""``simulacra-session bench``: measure auto-save latency on your own disk.

It drives a SimpleConversation through a SessionManager on the chosen
store and times each auto-save (``message_complete`` to durable on disk), at each conversation
length, beside the floor measured on the same disk: appending one line and fdatasyncing it.
``--store sql --url URL`` measures a database instead (tables of its own, dropped after).
``bench --help`` says so too (``commands``, which imports this module when ``bench`` runs).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator

from .._backend import BACKEND
from ..conversation import SimpleConversation
from ..manager import SessionManager
from ..messages import Message
from ..protocols import SessionStore
from ..stores import FileSessionStore, InMemorySessionStore
from . import signals
from .output import named, print_text
from .urls import CommandError

__all__: list[str] = []  # ``_bench`` runs through the parser of ``commands``

_LINE = b'{"role":"user","content":[{"type":"text","text":"' + b"x" * 1450 + b'"}]}\n'


def _message(index: int) -> Message:
    """A ~1.5 KB message, different each time."""
    text = f"message {index}: " + "lorem ipsum dolor sit amet " * 52
    if index % 2:
        return {"role": "assistant", "content": [{"type": "text", "text": text}]}
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    """p50 and p99 in microseconds."""
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) / 1000, p99 / 1000


def _floor(root: str, rounds: int, fsync: bool) -> tuple[float, float]:
    """Append one line (and fdatasync it) ``rounds`` times: the floor of a durable save. The
    file is removed however the run ends; its errors name it."""
    path = os.path.join(root, ".floor.jsonl")
    sync = getattr(os, "fdatasync", os.fsync)
    samples = []
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for _ in range(rounds):
                start = time.perf_counter_ns()
                os.write(fd, _LINE)
                if fsync:
                    sync(fd)
                samples.append(time.perf_counter_ns() - start)
        finally:
            os.close(fd)
    except OSError as error:
        raise named(error, path) from error
    finally:
        with contextlib.suppress(OSError):  # never made (its error raised), or gone already
            os.unlink(path)
    return _percentiles(samples)


async def _nothing() -> None:
    return None


def _store(
    args: argparse.Namespace, root: str, length: int, fsync: bool
) -> tuple[SessionStore, Callable[[], Awaitable[None]]]:
    """The store to measure, and what removes what it wrote (the root directory goes anyway)."""
    if args.store == "memory":
        return InMemorySessionStore(), _nothing
    if args.store == "sql":
        from ..stores.sql import SqlSessionStore  # needs the sql extra

        store = SqlSessionStore(args.url, table=f"simulacra_bench_{os.getpid()}_{length}")

        async def drop() -> None:
            await store.drop_tables()
            await store.close()

        return store, drop
    return FileSessionStore(os.path.join(root, f"n{length}"), fsync=fsync, format=args.format), _nothing


async def _autosave(
    store: SessionStore, cleanup: Callable[[], Awaitable[None]], length: int, rounds: int
) -> tuple[float, float]:
    """Time ``rounds`` auto-saves of a conversation that starts ``length`` messages long."""
    try:
        return await _timed_autosaves(store, length, rounds)
    finally:
        await cleanup()


async def _timed_autosaves(store: SessionStore, length: int, rounds: int) -> tuple[float, float]:
    conversation = SimpleConversation()
    async with SessionManager(store, conversation) as manager:
        manager.start_new()
        conversation.load([_message(index) for index in range(length)])
        await manager.save(full=True)
        samples = []
        for index in range(length, length + rounds):
            message = _message(index)
            start = time.perf_counter_ns()
            conversation.append(message)
            await manager.flush()
            samples.append(time.perf_counter_ns() - start)
    return _percentiles(samples)


def _printable(url: str) -> str:
    """``url`` with its password hidden, for printing; ``CommandError`` if it is none (never
    repeated: it may hold a password)."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise CommandError("--url is no database URL (dialect+driver://user:password@host/db)") from None


def _lengths(given: str) -> list[int]:
    """``--lengths``: sizes >= 0, comma-separated; ``CommandError`` naming the value otherwise."""
    parts = [part.strip() for part in given.split(",") if part.strip()]
    if not parts or not all(part.isdecimal() for part in parts):
        raise CommandError(f"--lengths must list sizes >= 0, comma-separated, not {given!r}")
    return [int(part) for part in parts]


def _bench(args: argparse.Namespace) -> int:
    lengths = _lengths(args.lengths)
    if args.rounds < 1:
        raise CommandError(f"--rounds must be >= 1, not {args.rounds}")
    if (args.store == "sql") != (args.url is not None):
        raise CommandError("--url goes with --store sql, and --store sql needs it")
    fsync = not args.no_fsync
    where = f"url={_printable(args.url)}" if args.url else f"format={args.format} fsync={fsync}"
    with _root(args.root) as root:
        print_text(f"backend={BACKEND} store={args.store} {where} root={root}")
        floor_p50, floor_p99 = _floor(root, max(args.rounds, 50), fsync)
        label = "append+fdatasync" if fsync else "append"
        print_text(f"floor ({label} of a 1.5 KB line): p50 {floor_p50:9.1f} us   p99 {floor_p99:9.1f} us")
        print_text(f"{'messages':>9}  {'p50 us':>9}  {'p99 us':>9}  {'p50/floor':>9}")
        for length in lengths:
            p50, p99 = signals.run(_autosave(*_store(args, root, length, fsync), length, args.rounds))
            ratio = p50 / floor_p50 if floor_p50 else float("inf")
            print_text(f"{length:>9}  {p50:9.1f}  {p99:9.1f}  {ratio:8.1f}x")
    return 0


@contextlib.contextmanager
def _root(given: str | None) -> Iterator[str]:
    """The directory to write in: ``--root`` (made if missing, kept), else a new private one
    in ``$TMPDIR``, removed after however the run ends. Its name is picked before it is made
    (``tempfile.mkdtemp`` names it only once made), so an interrupt just after still has it
    removed."""
    if given is not None:
        os.makedirs(given, exist_ok=True)
        yield given
        return
    root = os.path.join(tempfile.gettempdir(), f"simulacra-bench-{secrets.token_hex(8)}")
    try:
        try:
            os.mkdir(root, 0o700)
        except FileExistsError:
            root = ""  # not this run's: left alone
            raise
        yield root
    finally:
        if root:
            shutil.rmtree(root, ignore_errors=True)
