"""A FUSE file system in memory that can lose power: what survives is what was synced.

Run as a process of its own (``python power_cut_fs.py MOUNT``, as root); it serves ``MOUNT``
until it is unmounted. Every file and directory keeps two states: the one processes see,
and the one a disk would hold after a power cut. A file's durable content is what it held
at its last ``fsync``/``fdatasync`` (nothing before the first); a directory's durable
entries are the ones it held at its last ``fsync`` of the directory itself (POSIX promises
no more: ext4, XFS and btrfs often keep more, never less).

One mount serves many runs, one after another (starting a server per run cost more than
the run). Writing ``RUN\nIMAGES`` to ``MOUNT/.power-reset`` starts a run: the power is back,
the previous run's tree is dropped, and ``MOUNT/RUN/store`` exists, durable, empty, for the
store under test (a new name each run: nothing the kernel knows of an earlier run's files
can stand for this one's).

Writing to ``MOUNT/.power-cut`` cuts the power: every later operation fails with ``EIO``
(but those on ``.power-reset``), and the run's durable state is written out under
``IMAGES`` as plain directories, hard links kept:

- ``IMAGES/strict``: exactly what was synced;
- ``IMAGES/mixed-N`` (N from 0): what a journaling file system may also keep. Each file
  holds its synced content, its current one, or, where the current content extends the
  synced one, the synced content and a random part of the rest, possibly followed by zeros
  (a size written before its data). Each directory holds its synced or its current entries
  (a rename is atomic, so one directory never mixes the two). Seeded by N, so a failure
  names the image that shows it.

The write returns once every image is complete. tests/test_store_power_loss.py drives it.
"""

from __future__ import annotations

import errno
import itertools
import os
import random
import shutil
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mfusepy

CUT = ".power-cut"
RESET = ".power-reset"
STORE = "store"
MIXED_IMAGES = 8


def _now() -> int:
    return time.time_ns()


@dataclass(eq=False)
class Node:
    """An inode: a file's bytes or a directory's entries, each as seen and as durable."""

    mode: int
    ino: int
    data: bytearray = field(default_factory=bytearray)
    synced_data: bytes = b""
    entries: dict[str, Node] = field(default_factory=dict)
    synced_entries: dict[str, Node] = field(default_factory=dict)
    nlink: int = 0
    times: list[int] = field(default_factory=lambda: [_now()] * 3)  # atime, mtime, ctime

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    def touch(self) -> None:
        self.times[1] = self.times[2] = _now()


class PowerCutFS(mfusepy.Operations):  # type: ignore[misc]
    """The operations the store uses, on nodes in memory; see the module's docstring."""

    use_ns = True
    # Operations on an open file find it by its handle (it may be unlinked: ``hard_remove``),
    # without a path. Not on libfuse 3, where mfusepy passes ``truncate`` no handle: there
    # it needs the path.
    flag_nopath = flag_nullpath_ok = mfusepy.fuse_version_major == 2

    def __init__(self) -> None:
        self.inos = itertools.count(1)
        self.root = self._node(stat.S_IFDIR | 0o755)
        self.control = self._node(stat.S_IFREG | 0o644)
        self.reset_control = self._node(stat.S_IFREG | 0o644)
        for name, node in ((CUT, self.control), (RESET, self.reset_control)):
            self._enter(self.root, name, node)
        self.root.synced_entries = dict(self.root.entries)
        self.run: Node | None = None  # the run's directory, holding ``store``
        self.images = Path()
        self.handles: dict[int, Node] = {}
        self.fhs = itertools.count(1)
        self.cut = False
        self.mutex = threading.Lock()
        self._guard()

    # -- the tree ----------------------------------------------------------------------------

    def _node(self, mode: int) -> Node:
        return Node(mode=mode, ino=next(self.inos), nlink=2 if stat.S_ISDIR(mode) else 0)

    @staticmethod
    def _enter(parent: Node, name: str, node: Node) -> None:
        parent.entries[name] = node
        node.nlink += 1
        parent.touch()

    def _split(self, path: str) -> tuple[Node, str]:
        head, _, name = path.rstrip("/").rpartition("/")
        parent = self._find(head or "/")
        if not parent.is_dir:
            raise mfusepy.FuseOSError(errno.ENOTDIR)
        return parent, name

    def _find(self, path: str) -> Node:
        node = self.root
        for part in filter(None, path.split("/")):
            if not node.is_dir:
                raise mfusepy.FuseOSError(errno.ENOTDIR)
            if part not in node.entries:
                raise mfusepy.FuseOSError(errno.ENOENT)
            node = node.entries[part]
        return node

    def _target(self, path: str | None, fh: int | None) -> Node:
        if fh:
            return self.handles[fh]
        if path is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        return self._find(path)

    def _handle(self, node: Node) -> int:
        fh = next(self.fhs)
        self.handles[fh] = node
        return fh

    # -- every operation goes through here ---------------------------------------------------

    def _guard(self) -> None:
        """Make each operation (an attribute of this instance, which mfusepy calls) take the
        lock and fail with ``EIO`` after the cut. Done once: an ``__getattribute__`` doing
        it ran on every attribute read, several for each call."""
        for name in _OPERATIONS:
            setattr(self, name, self._guarded(name, getattr(self, name)))

    def _guarded(self, name: str, operation: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any) -> Any:
            with self.mutex:
                if self.cut and not self._resets(name, args):
                    raise mfusepy.FuseOSError(errno.EIO)
                return operation(*args)

        return guarded

    def _resets(self, name: str, args: tuple[Any, ...]) -> bool:
        """Whether an operation works on ``.power-reset`` (by its path, or a handle open on
        it): the one thing that still goes through after the cut."""
        if args and args[0] == f"/{RESET}":
            return True
        where = _HANDLE_ARGUMENT.get(name)
        return where is not None and len(args) > where and self.handles.get(args[where]) is self.reset_control

    # -- reading -----------------------------------------------------------------------------

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        node = self._target(path, fh)
        atime, mtime, ctime = node.times
        return {
            "st_mode": node.mode,
            "st_ino": node.ino,
            "st_nlink": node.nlink,
            "st_size": len(node.data) if not node.is_dir else 4096,
            "st_blocks": (len(node.data) + 511) // 512,
            "st_atime": atime,
            "st_mtime": mtime,
            "st_ctime": ctime,
            "st_uid": os.getuid(),
            "st_gid": os.getgid(),
        }

    def readdir(self, path: str | None, fh: int) -> list[tuple[str, dict[str, int], int]]:
        # With use_ino every entry needs its inode number: readdir(3) skips an entry of 0.
        node = self._target(path, fh)
        entries = [(".", node), ("..", node), *node.entries.items()]
        return [(name, {"st_mode": entry.mode, "st_ino": entry.ino}, 0) for name, entry in entries]

    def opendir(self, path: str) -> int:
        node = self._find(path)
        if not node.is_dir:
            raise mfusepy.FuseOSError(errno.ENOTDIR)
        return self._handle(node)

    def releasedir(self, path: str | None, fh: int) -> int:
        self.handles.pop(fh, None)
        return 0

    def open(self, path: str, flags: int) -> int:
        node = self._find(path)
        if flags & os.O_TRUNC and node.data:  # libfuse 3 passes O_TRUNC here (atomic_o_trunc)
            node.data.clear()
            node.touch()
        return self._handle(node)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        return bytes(self.handles[fh].data[offset : offset + size])

    def release(self, path: str | None, fh: int) -> int:
        self.handles.pop(fh, None)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        return {
            "f_bsize": 4096,
            "f_frsize": 4096,
            "f_blocks": 1 << 20,
            "f_bfree": 1 << 19,
            "f_bavail": 1 << 19,
            "f_files": 1 << 16,
            "f_ffree": 1 << 15,
            "f_favail": 1 << 15,
            "f_namemax": 255,
        }

    # -- changing ----------------------------------------------------------------------------

    def create(self, path: str, mode: int, flags: int) -> int:
        parent, name = self._split(path)
        if name in parent.entries:
            raise mfusepy.FuseOSError(errno.EEXIST)
        node = self._node(stat.S_IFREG | (mode & 0o7777))
        self._enter(parent, name, node)
        return self._handle(node)

    def mkdir(self, path: str, mode: int) -> int:
        parent, name = self._split(path)
        if name in parent.entries:
            raise mfusepy.FuseOSError(errno.EEXIST)
        self._enter(parent, name, self._node(stat.S_IFDIR | (mode & 0o7777)))
        parent.nlink += 1
        return 0

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        node = self.handles[fh]
        if node is self.control:
            self._power_cut()
            return len(data)
        if node is self.reset_control:
            self._reset(data)
            return len(data)
        if offset > len(node.data):
            node.data.extend(bytes(offset - len(node.data)))
        node.data[offset : offset + len(data)] = data
        node.touch()
        return len(data)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        node = self._target(path, fh)
        del node.data[length:]
        node.data.extend(bytes(length - len(node.data)))
        node.touch()
        return 0

    def chmod(self, path: str | None, mode: int) -> int:
        node = self._find(path) if path is not None else self.root
        node.mode = stat.S_IFMT(node.mode) | (mode & 0o7777)
        node.times[2] = _now()
        return 0

    def utimens(self, path: str | None, times: tuple[int, int] | None = None) -> int:
        node = self._find(path) if path is not None else self.root
        atime, mtime = times if times is not None else (_now(), _now())
        node.times[:2] = [atime, mtime]
        return 0

    def link(self, target: str, source: str) -> int:
        node = self._find(source)
        if node.is_dir:
            raise mfusepy.FuseOSError(errno.EPERM)
        parent, name = self._split(target)
        if name in parent.entries:
            raise mfusepy.FuseOSError(errno.EEXIST)
        self._enter(parent, name, node)
        node.times[2] = _now()
        return 0

    def _remove(self, path: str, directory: bool) -> None:
        parent, name = self._split(path)
        node = parent.entries.get(name)
        if node is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        if node.is_dir != directory:
            raise mfusepy.FuseOSError(errno.EISDIR if node.is_dir else errno.ENOTDIR)
        if node.entries:
            raise mfusepy.FuseOSError(errno.ENOTEMPTY)
        del parent.entries[name]
        (parent if directory else node).nlink -= 1
        parent.touch()

    def unlink(self, path: str) -> int:
        self._remove(path, directory=False)
        return 0

    def rmdir(self, path: str) -> int:
        self._remove(path, directory=True)
        return 0

    def rename(self, old: str, new: str) -> int:
        source, old_name = self._split(old)
        target, new_name = self._split(new)
        node = source.entries.get(old_name)
        if node is None:
            raise mfusepy.FuseOSError(errno.ENOENT)
        replaced = target.entries.get(new_name)
        if replaced is node:
            return 0
        if replaced is not None:
            if replaced.is_dir and replaced.entries:
                raise mfusepy.FuseOSError(errno.ENOTEMPTY)
            replaced.nlink -= 1
        del source.entries[old_name]
        target.entries[new_name] = node
        source.touch()
        target.touch()
        node.times[2] = _now()
        return 0

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        node = self.handles[fh]
        node.synced_data = bytes(node.data)
        return 0

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        node = self.handles[fh]
        node.synced_entries = dict(node.entries)
        return 0

    def flush(self, path: str | None, fh: int) -> int:
        return 0

    # -- the power cut -----------------------------------------------------------------------

    def _power_cut(self) -> None:
        if self.run is None:
            raise mfusepy.FuseOSError(errno.EINVAL)  # no run started: nothing to image
        self.cut = True
        _write_image(self.run, self.images / "strict", None)
        for seed in range(MIXED_IMAGES):
            _write_image(self.run, self.images / f"mixed-{seed}", random.Random(seed))

    def _reset(self, data: bytes) -> None:
        """Start a run (``data``: its directory's name, a newline, where its images go): the
        power back on, the earlier runs' directories dropped, ``RUN/store`` made, durable."""
        name, _, images = data.decode().partition("\n")
        if not name or "/" in name or name in self.root.entries or not images:
            raise mfusepy.FuseOSError(errno.EINVAL)
        for old in [key for key, node in self.root.entries.items() if node.is_dir]:
            del self.root.entries[old]
            self.root.nlink -= 1
        run = self._node(stat.S_IFDIR | 0o755)
        self._enter(self.root, name, run)
        self.root.nlink += 1
        self._enter(run, STORE, self._node(stat.S_IFDIR | 0o755))
        run.nlink += 1
        run.synced_entries = dict(run.entries)
        self.root.synced_entries = dict(self.root.entries)
        self.run, self.images, self.cut = run, Path(images), False


# Closing still works after the cut (the parent closes the control file it wrote to).
_OPERATIONS = frozenset(
    name
    for name, value in vars(PowerCutFS).items()
    if callable(value) and not name.startswith("_") and name not in {"flush", "release", "releasedir"}
)
# After the cut, ``_resets`` lets an operation through by its handle, the argument here.
_HANDLE_ARGUMENT = {"getattr": 1, "truncate": 2, "write": 3}


def _durable_data(node: Node, chance: random.Random | None) -> bytes:
    if chance is None or chance.random() < 0.3:
        return node.synced_data
    current = bytes(node.data)
    if not current.startswith(node.synced_data) or chance.random() < 0.4:
        return current
    kept = chance.randint(len(node.synced_data), len(current))
    zeros = chance.randint(0, len(current) - kept) if chance.random() < 0.3 else 0
    return current[:kept] + bytes(zeros)


def _write_image(root: Node, image: Path, chance: random.Random | None) -> None:
    """Write what survives a power cut under ``image``; a file under two names stays one inode."""
    shutil.rmtree(image, ignore_errors=True)
    written: dict[int, Path] = {}

    def descend(directory: Node, into: Path) -> None:
        into.mkdir(parents=True)
        synced = chance is None or chance.random() < 0.5
        for name, node in (directory.synced_entries if synced else directory.entries).items():
            path = into / name
            if node.is_dir:
                descend(node, path)
            elif node.ino in written:
                os.link(written[node.ino], path)
            else:
                path.write_bytes(_durable_data(node, chance))
                os.chmod(path, stat.S_IMODE(node.mode))
                os.utime(path, ns=(node.times[0], node.times[1]))  # the store compares mtimes
                written[node.ino] = path

    descend(root, image)


def main() -> None:
    mfusepy.FUSE(
        PowerCutFS(),
        sys.argv[1],
        foreground=True,
        nothreads=True,
        use_ino=True,
        hard_remove=True,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
    )


if __name__ == "__main__":
    main()
