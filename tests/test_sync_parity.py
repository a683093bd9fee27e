"""``sync_files`` on both backends: each descriptor made durable, left open, errors per descriptor."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _open_written(tmp_path: Path, count: int) -> list[int]:
    fds = []
    for index in range(count):
        fd = os.open(tmp_path / f"f{index}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"data %d\n" % index)
        fds.append(fd)
    return fds


@pytest.mark.parametrize("count", [0, 1, 2, 4, 9])
def test_sync_files_syncs_each_and_leaves_it_open(hotpath: ModuleType, tmp_path: Path, count: int) -> None:
    fds = _open_written(tmp_path, count)
    try:
        assert hotpath.sync_files(fds) == [0] * count
        for index, fd in enumerate(fds):
            os.fstat(fd)  # still open
            assert (tmp_path / f"f{index}").read_bytes() == b"data %d\n" % index
    finally:
        for fd in fds:
            os.close(fd)


def test_sync_files_reports_errno_per_descriptor(hotpath: ModuleType, tmp_path: Path) -> None:
    fds = _open_written(tmp_path, 5)
    closed = fds.pop()
    os.close(closed)
    try:
        assert hotpath.sync_files([closed]) == [errno.EBADF]
        assert hotpath.sync_files([-1]) == [errno.EBADF]
        mixed = [fds[0], closed, fds[1], -1, fds[2], fds[3]]
        assert hotpath.sync_files(mixed) == [0, errno.EBADF, 0, errno.EBADF, 0, 0]
    finally:
        for fd in fds:
            os.close(fd)


def _sync_one(fd: int) -> int:
    """What one ``fdatasync`` (``fsync`` where there is none) says of ``fd``: its errno, 0."""
    try:
        os.fdatasync(fd) if hasattr(os, "fdatasync") else os.fsync(fd)
    except OSError as error:
        return error.errno or errno.EIO
    return 0


@pytest.mark.skipif(os.name != "posix", reason="a pipe's descriptor is a socket-like handle elsewhere")
@pytest.mark.parametrize("count", [1, 4])
def test_sync_files_reports_what_cannot_be_synced(hotpath: ModuleType, count: int) -> None:
    """A batch large enough for one ``syncfs`` reports a pipe as one ``fdatasync`` does
    (``EINVAL`` on Linux), however many are handed over with it."""
    read_end, write_end = os.pipe()
    try:
        expected = _sync_one(write_end)
        assert hotpath.sync_files([write_end] * count) == [expected] * count
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux pseudo files and O_PATH")
@pytest.mark.parametrize("kind", ["pipes", "/dev/null", "/proc", "O_PATH"])
def test_a_syncfs_batch_reports_no_pseudo_file_as_durable(
    hotpath: ModuleType, tmp_path: Path, kind: str
) -> None:
    """Descriptors a ``syncfs`` would pass but ``fdatasync`` refuses (pipes, character
    devices, /proc files, ``O_PATH``) get ``fdatasync``'s errno in a batch of regular files
    of one file system too, and the regular files stay durable."""
    regular = _open_written(tmp_path, 4)
    if kind == "pipes":
        pipes = [os.pipe() for _ in range(4)]
        odd = [write_end for _, write_end in pipes]
        opened = [fd for pipe in pipes for fd in pipe]
    else:
        path, flags = {
            "/dev/null": ("/dev/null", os.O_WRONLY),
            "/proc": ("/proc/self/status", os.O_RDONLY),
            "O_PATH": (str(tmp_path / "f0"), os.O_PATH),
        }[kind]
        odd = opened = [os.open(path, flags) for _ in range(4)]
    try:
        expected = [_sync_one(fd) for fd in odd]
        assert expected != [0] * 4  # what the batch must not hide
        assert hotpath.sync_files(odd) == expected
        assert hotpath.sync_files(regular + odd) == [0] * 4 + expected
    finally:
        for fd in regular + opened:
            os.close(fd)


@pytest.mark.parametrize("bad", [2**31, 2**64])
def test_sync_files_rejects_numbers_beyond_a_c_int(hotpath: ModuleType, bad: int) -> None:
    with pytest.raises(OverflowError):
        hotpath.sync_files([bad])


def test_sync_files_rejects_what_is_not_a_number(hotpath: ModuleType) -> None:
    with pytest.raises(TypeError):
        hotpath.sync_files(["3"])
