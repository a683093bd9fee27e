"""Power loss: what a store acknowledged survives, and what survives opens.

A process kill (tests/test_crash.py) keeps every byte written; a power cut keeps only what
reached the disk. Here the store's root lies on ``power_cut_fs.py``, a FUSE file system in
memory that knows what each ``fsync`` made durable. A child process writes sessions (the
file store's formats, or SQLite through ``SqlSessionStore``) and prints what each write
acknowledged; at a random point the power is cut, and every image of what a disk may then
hold is checked (the strict one, exactly what was synced, and eight that also keep some of
what was not):

- every acknowledged save is there: its session is listed and loads with the acknowledged
  messages first (a fork through its parent), or as the write under way at the cut left it;
- every listed session loads, and after ``doctor --repair`` nothing is left to repair;
- a session whose deletion was acknowledged stays deleted (one being deleted at the cut may
  be there or not).

Needs root, ``/dev/fuse``, libfuse and ``mfusepy`` (the ``dev`` extra): elsewhere the tests
skip, naming what is missing, and fail under CI.

Cheap rounds: one mount serves the module (each test a fresh run of it, a directory no
earlier test used); the children are forked from a server that has the package imported
(``preloaded``); and an image identical to one checked already (same names, bytes, modes,
mtimes and hard links: most cuts land where nothing unsynced is left) is not checked again.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import preloaded
from fuse_mounts import in_memory, require_fuse
from power_cut_children import (
    DELETE_CHILD,
    EXPORT_CHILD,
    MANAGER_CHILD,
    ROOT_CHILD,
    SQLITE_CHILD,
    STORE_CHILD,
)
from simulacra_session import FileSessionStore, SessionManager, SessionStore, SimpleConversation
from simulacra_session.doctor import check_store
from simulacra_session.stores.sql import SqlSessionStore

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs FUSE on Linux")

HERE = Path(__file__).parent
CUT, RESET = ".power-cut", ".power-reset"  # power_cut_fs.py's control files (it needs mfusepy)


def _no_libfuse() -> str | None:
    """Why ``power_cut_fs.py`` cannot be served here, if it cannot: mfusepy or libfuse missing."""
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as error:  # OSError: libfuse itself is missing
        return f"mfusepy cannot load libfuse ({error}); scripts/fs-tools.sh and the dev extra bring them"
    return None


class PowerCutServer:
    """One mount of ``power_cut_fs.py``, serving one run after another."""

    def __init__(self, base: Path) -> None:
        self.mount, self.log = base / "mount", base / "server.log"
        self.runs = itertools.count(1)
        self.mount.mkdir()
        with self.log.open("wb") as log:
            self.server = subprocess.Popen(
                [sys.executable, str(HERE / "power_cut_fs.py"), str(self.mount)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while not (self.mount / RESET).is_file():
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"power_cut_fs.py did not mount: {self.log.read_text()}")
            time.sleep(0.05)

    def start_run(self, images: Path) -> PowerCut:
        """A new run: the power on, ``store`` empty in a directory no earlier run had."""
        run = f"run-{next(self.runs)}"
        try:
            with (self.mount / RESET).open("wb", buffering=0) as control:
                control.write(f"{run}\n{images}".encode())
        except OSError as error:
            why = f"{error}; the server's log: {self.log.read_text()}"
            raise RuntimeError(f"power_cut_fs.py did not start a run ({why})") from None
        return PowerCut(self, self.mount / run, images)

    def close(self) -> None:
        """Unmount (lazily where something still holds the mount) and wait for the server."""
        unmount = ["umount", str(self.mount)]
        done = subprocess.run(unmount, capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            subprocess.run([*unmount, "--lazy"], capture_output=True, check=False, timeout=60)
        try:
            self.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
            why = f"umount: {done.stderr.strip()}; the server's log: {self.log.read_text()}"
            raise RuntimeError(f"power_cut_fs.py did not stop once unmounted ({why})") from None


@dataclass
class PowerCut:
    """One run: ``mount`` holds its ``store``; its cut writes the images under ``images``."""

    server: PowerCutServer
    mount: Path
    images: Path

    def cut(self) -> None:
        """Cut the power; returns once every image is written."""
        with (self.server.mount / CUT).open("wb", buffering=0) as control:
            control.write(b"cut")


@pytest.fixture(scope="module")
def power_cut_server() -> Iterator[PowerCutServer]:
    require_fuse("the power-cut file system", missing=_no_libfuse)
    # Outside pytest's temporary directories: another run removing its old ones must not
    # descend into a live mount.
    base = Path(tempfile.mkdtemp(prefix="power-cut-"))
    server = PowerCutServer(base)
    try:
        yield server
    finally:
        server.close()
        os.rmdir(server.mount)
        subprocess.run(["rm", "-rf", str(base)], check=True)


@pytest.fixture
def power_cut(power_cut_server: PowerCutServer) -> Iterator[PowerCut]:
    # The images in memory where there is room: written, then checked and repaired (with
    # syncs), nine of them a test, at no disk's pace.
    base = Path(tempfile.mkdtemp(prefix="power-cut-images-", dir=in_memory()))
    try:
        yield power_cut_server.start_run(base / "images")
    finally:
        shutil.rmtree(base)


def _run_until_cut(power_cut: PowerCut, child: str, acks_before_cut: int, *args: str) -> list[str]:
    """Run ``child`` on the mount (the store's root, then ``args``), forked from the preloaded
    server, and cut the power after ``acks_before_cut`` lines; every whole line the child
    printed. Its errors go to a file (a pipe nobody reads meanwhile would fill and stop it)."""
    with preloaded.start(child, str(power_cut.mount / "store"), *args) as process:
        lines: list[str] = []
        while len(lines) < acks_before_cut:
            line = process.readline()
            if not line.endswith(b"\n"):
                status = process.wait(30)
                raise AssertionError(f"the child stopped before the cut ({status}): {process.stderr()}")
            lines.append(line.decode())
        power_cut.cut()
        process.kill()
        # The kill may cut the last line short: whole lines only.
        while (line := process.readline()).endswith(b"\n"):
            lines.append(line.decode())
    return lines


def _cut_after(seed: int) -> int:
    """How many lines a run of ``seed`` waits for before the cut."""
    return random.Random(seed).randrange(3, 80)


@dataclass
class Expected:
    """What a cut may leave, from the child's lines: each session's messages as last
    acknowledged ("ack") or as the write under way at the cut would leave them ("saving");
    the sessions acknowledged deleted ("gone"; one being deleted at the cut, "deleting", may
    be there or not). ``exact``: a session holds exactly one of its versions (a child whose
    every write is acknowledged before the next), else one of them first (a manager's next
    auto-save may have landed unacknowledged)."""

    versions: dict[str, list[list[str]]]
    gone: set[str]
    exact: bool

    @classmethod
    def read(cls, lines: list[str], *, exact: bool) -> Expected:
        saved: dict[str, list[str]] = {}
        under_way: dict[str, list[str]] = {}
        gone: set[str] = set()
        for line in lines:
            kind, _, payload = line.partition(" ")
            if kind in ("ack", "saving"):
                session_id, texts = json.loads(payload)
                (saved if kind == "ack" else under_way)[session_id] = texts
                gone.discard(session_id)  # written again (or being written: it may land)
                if kind == "ack":
                    under_way.pop(session_id, None)
            elif kind in ("deleting", "gone"):
                session_id = json.loads(payload)
                saved.pop(session_id, None)
                under_way.pop(session_id, None)
                if kind == "gone":
                    gone.add(session_id)
        versions = {
            key: [texts, *([under_way[key]] if key in under_way else [])] for key, texts in saved.items()
        }
        return cls(versions, gone, exact)

    def holds(self, session_id: str, history: list[str]) -> bool:
        """Whether ``history`` is what the cut may have left of ``session_id``."""
        return any(
            (history if self.exact else history[: len(texts)]) == texts for texts in self.versions[session_id]
        )


async def _history(store: SessionStore, session_id: str) -> list[str]:
    with SimpleConversation() as conversation:
        async with SessionManager(store, conversation, auto_save=False) as session:
            await session.load(session_id)
            return [message["content"][0]["text"] for message in conversation.messages]


async def _check_store(store: SessionStore, expected: Expected) -> None:
    listed = {metadata.id for metadata in await store.list()}
    for session_id in expected.versions:
        assert session_id in listed, f"acknowledged {session_id} is not listed"
        history = await _history(store, session_id)
        assert expected.holds(session_id, history), (
            f"{session_id}: acknowledged messages lost: {history}, expected {expected.versions[session_id]}"
        )
    # an acknowledged delete was synced: gone from a directory's synced and current entries
    assert not listed & expected.gone, f"deleted sessions came back: {sorted(listed & expected.gone)}"
    for session_id in listed:
        await _history(store, session_id)
    await check_store(store, repair=True)
    left = (await check_store(store, repair=False)).problems
    assert not left, f"doctor --repair left {left}"
    for session_id in await store.list():
        await _history(store, session_id.id)


async def _check_image(root: Path, expected: Expected) -> None:
    if (root / "sessions.db").exists():
        async with SqlSessionStore(f"sqlite:///{root}/sessions.db", create=False) as store:
            await _check_store(store, expected)
    else:
        await _check_store(FileSessionStore(root), expected)


def _fingerprint(image: Path) -> bytes:
    """A digest of everything in ``image`` that the store reads: each directory's names,
    each file's mode, mtime and bytes, and which names are one inode (hard links). Two
    images with one fingerprint are the same input to the checks (directory mtimes, not
    modelled, differ; the store never compares them)."""
    digest = hashlib.blake2b()
    inodes: dict[int, int] = {}
    for directory, subdirectories, files in os.walk(image):
        subdirectories.sort()
        digest.update(repr((os.path.relpath(directory, image), subdirectories, sorted(files))).encode())
        for name in sorted(files):
            path = Path(directory, name)
            status = path.lstat()
            known = status.st_ino in inodes
            inode = inodes.setdefault(status.st_ino, len(inodes))
            digest.update(repr((name, status.st_mode, status.st_mtime_ns, inode)).encode())
            if not known:
                content = path.read_bytes()
                digest.update(len(content).to_bytes(8, "big") + content)
    return digest.digest()


def _check_images(power_cut: PowerCut, lines: list[str], *, exact: bool = False) -> None:
    expected = Expected.read(lines, exact=exact)
    assert expected.versions, "nothing was acknowledged before the cut"
    images = sorted(power_cut.images.iterdir())
    assert [image.name for image in images][-1] == "strict"
    # The same image twice is checked once (fingerprints first: a check repairs its image).
    alike: dict[bytes, list[Path]] = {}
    for image in images:
        alike.setdefault(_fingerprint(image), []).append(image)
    for image, *same in alike.values():
        with warnings.catch_warnings():
            # A torn append or a fork without its parent loads with a warning, by design.
            warnings.simplefilter("ignore")
            try:
                asyncio.run(_check_image(image / "store", expected))
            except AssertionError as error:
                also = f" (and {', '.join(other.name for other in same)}, the same)" if same else ""
                raise AssertionError(f"image {image.name}{also}: {error}") from error


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
@pytest.mark.parametrize("seed", range(6))
def test_manager_auto_saves_survive_a_power_cut(power_cut: PowerCut, file_format: str, seed: int) -> None:
    lines = _run_until_cut(power_cut, MANAGER_CHILD, _cut_after(seed), file_format, str(seed))
    _check_images(power_cut, lines)


@pytest.mark.parametrize("file_format", ["jsonl", "json", "both"])
@pytest.mark.parametrize("seed", range(6))
def test_store_writes_and_deletions_survive_a_power_cut(
    power_cut: PowerCut, file_format: str, seed: int
) -> None:
    lines = _run_until_cut(power_cut, STORE_CHILD, _cut_after(seed), file_format, str(seed))
    _check_images(power_cut, lines, exact=True)


@pytest.mark.parametrize("file_format", ["jsonl", "json"])
def test_deleted_sessions_leave_no_copy_even_after_a_delete_cut_short(
    power_cut: PowerCut, file_format: str
) -> None:
    # A delete used to leave the fork's link in its parent's index unsynced, and one run
    # again after a crash synced nothing it found done: after the cut, the deleted sessions
    # were back, or their messages were, in the index, as "the last copy" of a session.
    lines = _run_until_cut(power_cut, DELETE_CHILD, 7, file_format)
    _check_images(power_cut, lines, exact=True)
    for image in power_cut.images.iterdir():
        assert sorted(os.listdir(image / "store" / "parent-forks")) == [], image.name


def test_a_root_made_by_another_process_is_made_durable(power_cut: PowerCut) -> None:
    lines = _run_until_cut(power_cut, ROOT_CHILD, 1)
    expected = Expected.read(lines, exact=True)
    for image in power_cut.images.iterdir():
        stored = asyncio.run(FileSessionStore(image / "store" / "made").load("s"))
        assert stored is not None, image.name
        assert expected.holds("s", [message["content"][0]["text"] for message in stored.messages])


def test_an_export_written_in_place_is_synced(power_cut: PowerCut) -> None:
    lines = _run_until_cut(power_cut, EXPORT_CHILD, 2)
    assert lines[-1].strip() == "exported"
    for image in power_cut.images.iterdir():
        written = (image / "store" / "exports" / "backup").read_bytes()
        assert b'"text":"p"' in written.replace(b" ", b""), f"{image.name}: {written[:80]!r}"


@pytest.mark.parametrize("seed", range(4))
def test_sqlite_auto_saves_survive_a_power_cut(power_cut: PowerCut, seed: int) -> None:
    lines = _run_until_cut(power_cut, SQLITE_CHILD, _cut_after(seed))
    _check_images(power_cut, lines)
