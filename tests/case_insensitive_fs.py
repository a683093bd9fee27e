"""Real case-insensitive file systems for the file store's tests.

- ``exfat_mount``: case-preserving, as macOS's APFS and Windows' NTFS compare names by
  default: a 64 MiB exFAT image (the format of SD cards and USB drives) attached to a loop
  device and mounted through FUSE (``exfat-fuse``).
- ``lowercasing_mount``: one that does not keep the case of names (it lists every name in
  lower case), with hard links: a 64 MiB NTFS image mounted by ``lowntfs-3g -o ignore_case``.

``scripts/fs-tools.sh`` installs their tools. Mounting needs root and ``/dev/fuse`` (exFAT a
free loop device too): elsewhere the tests skip, naming what is missing, and fail under CI.
Each test gets a directory of its own on the one mount, which lies outside pytest's
temporary directories: another pytest run removing its old ones must not descend into it.

The images lie in memory (``/dev/shm``) where it has room: every ``fsync`` the store makes
reaches the image through the file system's daemon as before, but costs no disk flush (on
a disk, a 300-save test spent most of its time waiting for them). What is tested, the
names, is the same on any backing.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fuse_mounts import in_memory, require_fuse
from residue_stores import FILE_STORES
from simulacra_session import FileSessionStore
from test_store_file import FileStoreJournals

__all__ = ["FileStoreOnAMount", "case_insensitive_dir", "exfat_mount", "lowercasing_dir", "lowercasing_mount"]


IMAGE_SIZE = 64 * 1024 * 1024


@contextmanager
def _image(prefix: str) -> Iterator[tuple[Path, Path]]:
    """A 64 MiB image file (sparse, in memory where there is room) and an empty mount
    point, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=in_memory()))
    try:
        image, mount = base / "image", base / "mount"
        mount.mkdir()
        with image.open("wb") as file:
            file.truncate(IMAGE_SIZE)
        yield image, mount
    finally:
        shutil.rmtree(base)


def _run(*command: str | Path, check: bool = True) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _detach(loop: str, image: Path) -> None:
    """Detach ``loop`` from ``image``; done too when someone else detached it already."""
    detached = _run("losetup", "--detach", loop, check=False)
    if _run("losetup", "--associated", image).strip():
        raise RuntimeError(f"{image} is still attached to a loop device: {detached}")


@pytest.fixture(scope="session")
def exfat_mount() -> Iterator[Path]:
    """The mount point of a fresh exFAT file system, unmounted, detached and removed afterwards."""
    require_fuse("a case-insensitive file system", "mkfs.exfat", "mount.exfat-fuse", "losetup", "umount")
    with _image("simulacra-exfat-") as (image, mount):
        _run("mkfs.exfat", image)
        loop = _run("losetup", "--find", "--show", image).strip()
        try:
            _run("mount.exfat-fuse", loop, mount)
            try:
                yield mount
            finally:
                _run("umount", mount)
        finally:
            _detach(loop, image)


@pytest.fixture(scope="session")
def lowercasing_mount() -> Iterator[Path]:
    """The mount point of a fresh NTFS file system that ignores case and lists names in lower
    case (``lowntfs-3g -o ignore_case``, reading the image itself), unmounted and removed afterwards."""
    require_fuse("a case-insensitive file system", "mkntfs", "lowntfs-3g", "umount")
    with _image("simulacra-ntfs-") as (image, mount):
        _run("mkntfs", "--force", "--quick", "--quiet", image)
        _run("lowntfs-3g", "-o", "ignore_case", image, mount)
        try:
            yield mount
        finally:
            _run("umount", mount)


def _own_dir(mount: Path) -> Path:
    made = mount / uuid.uuid4().hex
    made.mkdir()
    return made


@pytest.fixture
def case_insensitive_dir(exfat_mount: Path) -> Path:
    """A new directory of this test's own on the exFAT mount."""
    return _own_dir(exfat_mount)


@pytest.fixture
def lowercasing_dir(lowercasing_mount: Path) -> Path:
    """A new directory of this test's own on the lower-casing NTFS mount."""
    return _own_dir(lowercasing_mount)


class FileStoreOnAMount(FileStoreJournals):
    """The conformance kit's fixtures for a file store on one of these mounts (its class gives
    the ``store``): ``session_file``, and writers killed mid-save there (``residue_stores``)."""

    @pytest.fixture
    def residue_factory(self, store: FileSessionStore) -> tuple[str, Path]:
        return FILE_STORES[store.format], Path(store.root)
