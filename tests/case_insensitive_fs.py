"""A real case-insensitive, case-preserving file system for the file store's tests: a 64 MiB
exFAT image (the format of SD cards and USB drives, which compares names as macOS's APFS and
Windows' NTFS do by default), attached to a loop device and mounted through FUSE
(``exfat-fuse``; ``scripts/exfat-tools.sh`` installs it and ``exfatprogs``).

Mounting needs root, ``/dev/fuse`` and a free loop device: elsewhere the tests skip, naming
what is missing, and fail under CI. Each test gets a directory of its own on the one mount,
which lies outside pytest's temporary directories: another pytest run removing its old ones
must not descend into it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["case_insensitive_dir", "exfat_mount"]

_TOOLS = ("mkfs.exfat", "mount.exfat-fuse", "losetup", "umount")


def _cannot_mount() -> str | None:
    """Why an exFAT image cannot be mounted here, or ``None``."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "mounting a file system needs root"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (scripts/exfat-tools.sh installs them)"
    return None


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
    why = _cannot_mount()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a case-insensitive file system under CI: {why}")
        pytest.skip(why)
    base = Path(tempfile.mkdtemp(prefix="simulacra-exfat-"))
    try:
        image, mount = base / "image", base / "mount"
        mount.mkdir()
        with image.open("wb") as file:
            file.truncate(64 * 1024 * 1024)
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
    finally:
        shutil.rmtree(base)


@pytest.fixture
def case_insensitive_dir(exfat_mount: Path) -> Path:
    """A new directory of this test's own on the exFAT mount."""
    made = exfat_mount / uuid.uuid4().hex
    made.mkdir()
    return made
