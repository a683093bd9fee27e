"""``sync_files`` on both backends: each descriptor made durable, left open, errors per descriptor."""

from __future__ import annotations

import errno
import os
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


@pytest.mark.skipif(os.name != "posix", reason="a pipe's descriptor is a socket-like handle elsewhere")
def test_sync_files_reports_what_cannot_be_synced(hotpath: ModuleType) -> None:
    read_end, write_end = os.pipe()
    try:
        try:
            os.fdatasync(write_end) if hasattr(os, "fdatasync") else os.fsync(write_end)
            expected = 0
        except OSError as error:
            expected = error.errno
        assert hotpath.sync_files([write_end]) == [expected]
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize("bad", [2**31, 2**64])
def test_sync_files_rejects_numbers_beyond_a_c_int(hotpath: ModuleType, bad: int) -> None:
    with pytest.raises(OverflowError):
        hotpath.sync_files([bad])


def test_sync_files_rejects_what_is_not_a_number(hotpath: ModuleType) -> None:
    with pytest.raises(TypeError):
        hotpath.sync_files(["3"])
