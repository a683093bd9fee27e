"""No residue after a kill, for a store that keeps its files in a directory: what a writer
killed mid-write leaves there is gone once each session is used again and deleted.

A writer in another process saves sessions (and appends to them, an
``AppendableSessionStore``) with large messages in a loop and is killed with ``SIGKILL`` at
a random moment; twenty writers in turn, forked from one process that imported the store.
Then a fresh store in this process loads each session, saves or appends to it once, and
deletes it: nothing may be left in the directory but what that leaves when nobody was
killed (a database file, say), measured first. The sleeps only decide when to kill; nothing
is timed.

The kit cannot know where a store keeps its files, nor how to open one in another process: a
test class whose store does overrides the ``residue_factory`` fixture to name an importable
factory and the directory; the test is skipped otherwise (a database server, a store in
memory), and on Windows (no ``SIGKILL``). The failure names the contract, the seed of the
random moments, and what is left.
"""

from __future__ import annotations

import importlib
import inspect
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import IO, Any, cast

import pytest

from ..protocols import AppendableSessionStore, SessionStore
from .helpers import msg, run

__all__ = ["StoreResidueContract"]

RESIDUE = (
    "SessionStore: a writer killed mid-write leaves no residue: once each session is used again and "
    "deleted, nothing is left in the store's directory but what writes nobody killed leave"
)

#: An importable factory, ``"module:callable"``, and the directory the store keeps its files
#: in: the callable, given the directory's ``Path``, returns a store working in it.
ResidueFactory = tuple[str, Path]

#: The sessions written: the second is a fork of the first (``parent_id``).
SESSIONS = tuple(f"residue-{n}" for n in range(6))
KILLS = 20

#: Imports the factory ``argv[1]`` once, then for each seed read from stdin forks a writer
#: (which opens the store in ``argv[2]`` and writes the sessions ``argv[3:]`` until killed:
#: saving 1-3 or appending one message of 100 kB, as a ``random.Random(seed)`` chooses;
#: ``ready {pid}`` once its first write is done) and says ``gone`` once that writer is.
#: Forking spares each writer the imports, so that many kills take little time.
WRITER = textwrap.dedent(
    """
    import asyncio, importlib, itertools, os, random, sys, traceback
    from pathlib import Path
    from simulacra_session.protocols import AppendableSessionStore

    async def write(store, rng, sessions):
        for n in itertools.count():
            session = rng.choice(sessions) if n else sessions[0]
            metadata = {"parent_id": sessions[0]} if session == sessions[1] else None
            message = {"role": "user", "content": [{"type": "text", "text": f"{n} " + "x" * 100_000}]}
            if isinstance(store, AppendableSessionStore) and rng.random() < 0.3:
                await store.append(session, [message], metadata)
            else:
                await store.save(session, [message] * rng.randint(1, 3), metadata)
            if n == 0:
                print("ready", os.getpid(), flush=True)

    target, directory, *sessions = sys.argv[1:]
    module, _, name = target.partition(":")
    factory = importlib.import_module(module)
    for part in name.split("."):
        factory = getattr(factory, part)
    for seed in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(write(factory(Path(directory)), random.Random(int(seed)), sessions))
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(1)
        os.waitpid(pid, 0)
        print("gone", flush=True)
    """
)


def _entries(directory: Path) -> set[str]:
    """Every file and directory beneath ``directory``, relative to it."""
    found: set[str] = set()
    for parent, dirs, files in os.walk(directory):
        found.update(os.path.relpath(os.path.join(parent, name), directory) for name in [*dirs, *files])
    return found


def _kill_writers(target: str, directory: Path, seed: int) -> None:
    """Start writers one after the other and kill each at a random moment after its first write."""
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    with tempfile.TemporaryFile() as stderr:
        zygote = subprocess.Popen(
            [sys.executable, "-c", WRITER, target, str(directory), *SESSIONS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            start_new_session=True,
        )
        stdin, stdout = cast(IO[bytes], zygote.stdin), cast(IO[bytes], zygote.stdout)
        try:
            for kill in range(KILLS):
                stdin.write(b"%d\n" % (seed + kill))
                stdin.flush()
                ready = stdout.readline().split()
                if ready[:1] != [b"ready"]:
                    stderr.seek(0)
                    lines = stderr.read().decode(errors="replace").strip().splitlines()
                    raise AssertionError(
                        f"{RESIDUE}: seed {seed}, writer {kill + 1}: it failed: {' | '.join(lines[-5:])}"
                    )
                time.sleep(rng.uniform(0, 0.05))  # decides when to kill: nothing is timed
                os.kill(int(ready[1]), signal.SIGKILL)
                stdout.readline()  # gone
        finally:
            os.killpg(zygote.pid, signal.SIGKILL)  # the writer under way, if any, too
            zygote.communicate()


def _factory(target: str) -> Any:
    """The callable ``"module:callable"`` names."""
    module, _, name = target.partition(":")
    factory: Any = importlib.import_module(module)
    for part in name.split("."):
        factory = getattr(factory, part)
    return factory


async def _use_and_delete(store: SessionStore) -> None:
    """Load each session, save or append to it once, delete it; then close the store, when it
    has a ``close``."""
    try:
        for n, session in enumerate(SESSIONS):
            stored = await store.load(session)
            metadata = {"parent_id": SESSIONS[0]} if n == 1 else None
            if isinstance(store, AppendableSessionStore) and n:
                await store.append(session, [msg("again")], metadata)
            else:
                await store.save(session, [*(stored.messages if stored else []), msg("again")], metadata)
        for session in SESSIONS:
            await store.delete(session)
    finally:
        close: Any = getattr(store, "close", None)
        closed = close() if callable(close) else None
        if inspect.isawaitable(closed):
            await closed


def _settle(target: str, directory: Path, where: str) -> set[str]:
    """Each session used once and deleted by a fresh store; what is left in ``directory``."""
    try:
        run(_use_and_delete(_factory(target)(directory)))
    except Exception as error:
        raise AssertionError(
            f"{RESIDUE}: {where}: using the sessions again raised {type(error).__name__}: {error}"
        ) from error
    return _entries(directory) if directory.exists() else set()


class StoreResidueContract:
    """A writer killed at random moments, then each session used again and deleted."""

    @pytest.fixture
    def residue_factory(self) -> ResidueFactory | None:
        """Override: ``("module:callable", directory)``, an importable factory that, given
        the directory's ``Path``, returns a store keeping its files there (``None``, the
        default, skips the test)."""
        return None

    def test_a_killed_writer_leaves_no_residue(self, residue_factory: ResidueFactory | None) -> None:
        if residue_factory is None:
            pytest.skip("not applicable: the store keeps no files in a directory (override residue_factory)")
        if sys.platform == "win32":
            pytest.skip("not applicable: needs SIGKILL (POSIX)")
        target, directory = residue_factory
        seed = random.randrange(2**32)
        kept = _settle(target, directory, f"seed {seed}, before any kill")
        _kill_writers(target, directory, seed)
        left = sorted(_settle(target, directory, f"seed {seed}, after {KILLS} kills") - kept)
        assert not left, f"{RESIDUE}: seed {seed}, {KILLS} kills: left in {directory}: {left}"
