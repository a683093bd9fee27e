"""The two twins, side by side in one process: identical bytes, results and errors."""

from __future__ import annotations

import errno
import json
import logging
import os
import platform
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulacra_session import _fallback
from simulacra_session.errors import SerializationError

try:
    from simulacra_session import _native
except ImportError:  # pragma: no cover - only without a build
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("the compiled extension is not built", allow_module_level=True)

TWINS: tuple[ModuleType, ModuleType] = (_native, _fallback)

keys = st.one_of(st.text(max_size=8), st.sampled_from(["role", "content", "a b", "é", "_x1", "1x", ""]))
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True),
    st.text(),
    st.text(alphabet=st.characters(codec=None, categories=None), max_size=5),  # surrogates too
)
bad_leaves = st.one_of(st.sets(st.integers(), max_size=2), st.binary(max_size=3), st.just(object()))
trees = st.recursive(
    st.one_of(leaves, leaves, leaves, bad_leaves),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(keys, children, max_size=4),
        st.dictionaries(st.one_of(keys, st.integers()), children, max_size=2),
    ),
    max_leaves=25,
)


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except Exception as error:  # compare what each twin raised
        return (type(error).__name__, str(error) if not isinstance(error, ValueError) else None)


@given(trees)
def test_dumps_parity(value: Any) -> None:
    native, pure = (outcome(lambda twin=twin: twin.dumps(value)) for twin in TWINS)
    assert native == pure


@given(trees)
def test_loads_parity_on_valid_documents(value: Any) -> None:
    try:
        data = _fallback.dumps(value)
    except Exception:
        return
    native, pure = (outcome(lambda twin=twin: twin.loads(data)) for twin in TWINS)
    assert native[0] == pure[0] == "ok"
    assert _fallback.dumps(native[1]) == _fallback.dumps(pure[1]) == data


wide_parts = ["a", " ", "agent ", "\x7f", "é", "ÿ", "Ā", "—", "東京", "\ud7ff", "\uffff", "🙂", "\U0010ffff"]
wide_text = st.lists(st.sampled_from(wide_parts), max_size=40).map("".join)


@given(wide_text, st.booleans())
def test_loads_makes_strs_of_every_width_as_python_does(text: str, ensure_ascii: bool) -> None:
    """The compiled twin builds a non-ASCII str at the width its widest character needs
    (not through CPython's decoder): equal to Python's own, of the same type and hash, raw
    or escaped, in a document or in lines."""
    data = json.dumps([text, {"k": text}], ensure_ascii=ensure_ascii).encode()
    for twin in TWINS:
        for loaded in (twin.loads(data), twin.loads_lines(data + b"\n" + data)[0][1]):
            assert loaded == [text, {"k": text}]
            assert type(loaded[0]) is str
            assert hash(loaded[0]) == hash(text)


json_ish = st.text(alphabet='{}[]",:0123456789.eE-+ \\tnulruefasNIy\u00e9\ud800', max_size=30)


@given(st.one_of(json_ish, st.binary(max_size=30)))
def test_loads_parity_on_garbage(data: str | bytes) -> None:
    native, pure = (outcome(lambda twin=twin: twin.loads(data)) for twin in TWINS)
    assert native[0] == pure[0]  # both ValueError (messages differ), or both the same value
    if native[0] == "ok":
        assert _fallback.dumps(native[1]) == _fallback.dumps(pure[1])


SKIP = b'["metadata",'
lines_of_trees = st.lists(
    st.one_of(trees, st.just(["metadata", {}])), max_size=5
)  # commit-like lines among the values, for ``skip``
bounds = st.one_of(st.none(), st.integers(min_value=-40, max_value=400))


@given(lines_of_trees, st.booleans(), st.sampled_from([None, b"", SKIP]), st.integers(0, 3), bounds)
def test_loads_lines_parity_on_valid_lines(
    values: list[Any], newline: bool, skip: bytes | None, start: int, end: int | None
) -> None:
    try:
        lines = [_fallback.dumps(value) for value in values]
    except Exception:
        return
    data = b"\n".join(lines) + (b"\n" if newline and lines else b"")
    native, pure = (outcome(lambda twin=twin: twin.loads_lines(data, skip=skip)) for twin in TWINS)
    assert native[0] == pure[0] == "ok"
    assert _fallback.dumps(native[1]) == _fallback.dumps(pure[1])
    kept = [line for line in lines if not (skip and line.startswith(skip))]
    assert _fallback.dumps(native[1][0]) == b"[" + b",".join(kept) + b"]"
    left_out = sum(len(line) + 1 for line in lines if skip and line.startswith(skip))
    assert native[1][1] == left_out - (
        1 if lines and not newline and skip and lines[-1].startswith(skip) else 0
    )
    native, pure = (outcome(lambda twin=twin: twin.loads_lines(b"x\n" + data, start, end)) for twin in TWINS)
    assert native[0] == pure[0]
    if native[0] == "ok":
        assert _fallback.dumps(native[1]) == _fallback.dumps(pure[1])


@given(
    st.one_of(
        st.text(alphabet='{}[]",:0123456789.e- \t\r\nnul\u00e9\ud800', max_size=30), st.binary(max_size=30)
    )
)
def test_loads_lines_parity_on_garbage(text: str | bytes) -> None:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    native, pure = (outcome(lambda twin=twin: twin.loads_lines(data, skip=b"[")) for twin in TWINS)
    assert native[0] == pure[0]  # both ValueError (messages differ), or both the same values
    if native[0] == "ok":
        assert _fallback.dumps(native[1]) == _fallback.dumps(pure[1])
    native, pure = (outcome(lambda twin=twin: twin.loads_lines(data)) for twin in TWINS)
    assert native[0] == pure[0]
    if native[0] == "ok":
        assert _fallback.dumps(native[1]) == _fallback.dumps(pure[1])


@pytest.mark.parametrize("data", [b"[" * 127 + b"]" * 127, b"[" * 128 + b"]" * 128, b"1\n{}\n" * 3])
def test_loads_lines_parity_at_the_limits(data: bytes) -> None:
    native, pure = (outcome(lambda twin=twin: twin.loads_lines(data)) for twin in TWINS)
    assert native == pure or (native[0] == pure[0] == "ValueError")
    assert outcome(lambda: _fallback.loads_lines(bytearray(data))) == pure


@pytest.mark.parametrize("data", ["1\n", 1, memoryview(b"1"), None])
def test_loads_lines_type_errors(data: Any) -> None:
    native, pure = (outcome(lambda twin=twin: twin.loads_lines(data)) for twin in TWINS)
    assert native == pure
    assert native[0] == "TypeError"


@given(st.text(), st.integers(min_value=-2, max_value=80))
def test_derive_slug_parity(text: str, limit: int) -> None:
    native, pure = (outcome(lambda twin=twin: twin.derive_slug(text, limit)) for twin in TWINS)
    assert native == pure


@given(st.text(alphabet=" \t\n\x1c\x85\u3000ab", max_size=70), st.integers(min_value=1, max_value=60))
def test_derive_slug_parity_whitespace(text: str, limit: int) -> None:
    assert _native.derive_slug(text, limit) == _fallback.derive_slug(text, limit)


VECTORS: list[Any] = [
    0.1,
    1e16,
    1e-05,
    5e-324,
    -0.0,
    2**64,
    -(10**5000),
    "\x00\x1f\x7f\u2028é🙂",
    {"a": [1, (2, 3)]},
    [[[]]],
    {"k": {"n": None, "t": True}},
    1.7976931348623157e308,
    123456789.123456789,
]


@pytest.mark.parametrize("value", VECTORS, ids=[f"v{i}" for i in range(len(VECTORS))])
def test_tricky_vectors_byte_identical(value: Any) -> None:
    assert _native.dumps(value) == _fallback.dumps(value)
    assert _native.loads(_native.dumps(value)) == _fallback.loads(_fallback.dumps(value))


def typed(value: Any) -> Any:
    """``value`` with the exact type of every node spelled out, for type-strict comparison."""
    if isinstance(value, dict):
        return ("dict", type(value).__name__, [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, [typed(item) for item in value])
    if type(value) is int:
        return ("int", value)  # repr of a huge int is refused
    return (type(value).__name__, repr(value))


def copy_outcome(copy: Callable[[Any], Any], value: Any) -> tuple[str, Any]:
    kind, result = outcome(lambda: copy(value))
    return (kind, typed(result) if kind == "ok" else result)


@given(trees)
def test_copy_json_parity(value: Any) -> None:
    native = copy_outcome(_native.copy_json, value)
    assert native == copy_outcome(_fallback.copy_json, value)
    assert native == copy_outcome(lambda v: _native.loads(_native.dumps(v)), value)


class Text(str):
    pass


class Number(int):
    pass


class Real(float):
    pass


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


COPY_VECTORS: list[Any] = [
    *VECTORS,
    {"a": Text("sub"), Text("key"): 1},
    [Number(7), Real(0.5), True, False, None],
    {"big": 2**63, "small": -(2**63), "huge": 10**30},
    [float("inf")],
    "pair \ud83d\ude00",
    {"x": [1, {"y": "\ud800"}]},
    nested(128),
    nested(129),
    {"k": nested(127)},
]


@pytest.mark.parametrize("value", COPY_VECTORS, ids=[f"v{i}" for i in range(len(COPY_VECTORS))])
def test_copy_json_vectors(value: Any) -> None:
    expected = copy_outcome(lambda v: _fallback.loads(_fallback.dumps(v)), value)
    assert copy_outcome(_native.copy_json, value) == copy_outcome(_fallback.copy_json, value) == expected


@pytest.mark.parametrize("twin", TWINS, ids=["native", "pure"])
def test_copy_json_shares_nothing_mutable(twin: ModuleType) -> None:
    original: dict[str, Any] = {"content": [{"type": "text", "text": "hi"}], "n": 1}
    copied = twin.copy_json(original)
    assert copied == original
    copied["content"][0]["text"] = "changed"
    copied["content"].append(None)
    assert original == {"content": [{"type": "text", "text": "hi"}], "n": 1}
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError, match="nesting deeper than 128"):
        twin.copy_json(cycle)


def synced_outcomes(
    twin: ModuleType, jobs: list[int | tuple[Path, int, int, bytes, bytes]], stop_first: bool = False
) -> list[tuple[Any, int, bool]]:
    """Run ``jobs`` (descriptors to sync, or appends) through the twin's FileSyncer, tokens
    their positions; the outcomes, sorted."""
    delivered: list[tuple[Any, int, bool]] = []
    done = threading.Event()

    def deliver(outcomes: list[tuple[Any, int, bool]]) -> None:
        delivered.extend(outcomes)
        if len(delivered) == len(jobs):
            done.set()

    syncer = twin.FileSyncer(deliver)
    if stop_first:
        syncer.stop()
    for token, job in enumerate(jobs):
        if isinstance(job, int):
            syncer.submit(job, token)
        else:
            syncer.append(*job, token)
    assert done.wait(10)
    syncer.stop()
    return sorted(delivered)


def open_files(tmp_path: Path, count: int) -> list[int]:
    fds = []
    for index in range(count):
        fd = os.open(tmp_path / f"f{index}", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"data\n")
        fds.append(fd)
    return fds


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.mark.parametrize("count", [1, 3, 12])
@pytest.mark.parametrize("stop_first", [False, True], ids=["thread", "after-stop"])
def test_file_syncer_parity(tmp_path: Path, count: int, stop_first: bool) -> None:
    results = []
    for twin in TWINS:
        fds = open_files(tmp_path, count)
        results.append(synced_outcomes(twin, list(fds), stop_first))
        assert not any(is_open(fd) for fd in fds)
    assert results[0] == results[1] == [(token, 0, True) for token in range(count)]


def test_file_syncer_reports_errno_per_descriptor(tmp_path: Path) -> None:
    bad = os.open(tmp_path / "gone", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(bad)  # a closed descriptor: fdatasync fails with EBADF
    expected = [(0, errno.EBADF, True)]
    assert synced_outcomes(_native, [bad]) == synced_outcomes(_fallback, [bad]) == expected


@pytest.mark.skipif(os.name != "posix", reason="appends are checked by inode")
@pytest.mark.parametrize("stop_first", [False, True], ids=["thread", "after-stop"])
def test_file_syncer_appends_only_to_the_file_expected(tmp_path: Path, stop_first: bool) -> None:
    results = []
    for twin in TWINS:
        path = tmp_path / f"{twin.__name__}.jsonl"
        path.write_bytes(b"head\n")
        inode = path.stat().st_ino
        replaced = tmp_path / f"{twin.__name__}-replaced.jsonl"
        replaced.write_bytes(b"head\n")
        old_inode = replaced.stat().st_ino
        (tmp_path / "new").write_bytes(b"head\n")
        os.replace(tmp_path / "new", replaced)
        replaced_inode = replaced.stat().st_ino
        jobs: list[int | tuple[Path, int, int, bytes, bytes]] = [
            (path, inode, 5, b"head\n", b"one\n"),  # fits: written
            (path, inode, 4, b"head\n", b"two\n"),  # another size: nothing written
            (path, inode + 1, 5, b"head\n", b"two\n"),  # another inode
            (tmp_path / "missing.jsonl", inode, 5, b"head\n", b"two\n"),
            (replaced, old_inode, 5, b"head\n", b"two\n"),  # replaced since it was known
            (tmp_path, os.stat(tmp_path).st_ino, 0, b"", b"x"),  # a directory: open fails
            (replaced, replaced_inode, 5, b"HEAD\n", b"two\n"),  # same inode and size, not this file
            (replaced, replaced_inode, 5, b"0123456789", b"two\n"),  # a last record longer than it
        ]
        results.append(synced_outcomes(twin, jobs, stop_first))
        assert path.read_bytes() == b"head\none\n"
        assert replaced.read_bytes() == b"head\n"
    stale = (0, False)
    assert results[0] == results[1] == [(0, 0, True), *[(token, *stale) for token in range(1, 8)]]


@pytest.mark.skipif(os.name != "posix", reason="appends are checked by inode")
def test_append_now_parity(tmp_path: Path) -> None:
    """Appending in the caller's thread checks the file as the sync thread does, then goes
    through the journal's lease: only the state the lease's last append left is written."""
    results = []
    for twin in TWINS:
        path = tmp_path / f"{twin.__name__}.jsonl"
        path.write_bytes(b"head\n")
        inode = path.stat().st_ino
        syncer = twin.FileSyncer(lambda outcomes: None)
        results.append(
            [
                syncer.append_now(path, inode, 5, b"head\n", b"one\n"),  # fits: written, leased
                syncer.append_now(path, inode, 5, b"head\n", b"two\n"),  # another size now
                syncer.append_now(path, inode + 1, 9, b"one\n", b"two\n"),  # another inode
                syncer.append_now(tmp_path / "missing", inode, 9, b"one\n", b"two\n"),
                syncer.append_now(path, inode, 9, b"ONE\n", b"two\n"),  # ends otherwise
                syncer.append_now(str(path), inode, 9, b"one\n", b"three\n"),  # a str path: written
            ]
        )
        syncer.release(path)  # as a blocking writer of this process does first
        results[-1].append(syncer.append_now(path, inode, 15, b"three\n", b"[4]\n"))  # opened anew
        syncer.stop()
        assert path.read_bytes() == b"head\none\nthree\n[4]\n"
    stale = (0, False)
    assert results[0] == results[1] == [(0, True), stale, stale, stale, stale, (0, True), (0, True)]


def _kernel_at_least(major: int, minor: int) -> bool:
    if sys.platform != "linux":
        return False
    found = re.match(r"(\d+)\.(\d+)", platform.release())
    return found is not None and (int(found[1]), int(found[2])) >= (major, minor)


#: openat2's RESOLVE_CACHED (5.12) and preadv2's RWF_NOWAIT: what reading from memory needs
READS_FROM_MEMORY = _kernel_at_least(5, 12) and sys.maxsize > 2**32


def _read_outcome(twin: ModuleType, path: Any) -> tuple[str, Any]:
    try:
        return ("ok", twin.read_cached(path))
    except OSError as error:
        return (type(error).__name__, (error.errno, error.filename))


def test_read_cached_parity(tmp_path: Path) -> None:
    """A warm file whole, a path known absent, and what only a blocking read can tell."""
    warm = tmp_path / "warm.jsonl"
    warm.write_bytes(b"x" * 100_000 + b"\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    absent = tmp_path / "absent"
    assert not absent.exists()  # the lookup leaves a negative dentry: known absent from memory
    cases = [warm, str(warm), empty, absent, tmp_path, str(tmp_path) + "/nul\0byte"]
    native, pure = ([_read_outcome(twin, case) for case in cases] for twin in TWINS)
    assert native == pure
    if READS_FROM_MEMORY:
        info = [os.stat(path) for path in (warm, empty)]
        assert native == [
            ("ok", (warm.read_bytes(), info[0].st_ino, info[0].st_mtime_ns)),
            ("ok", (warm.read_bytes(), info[0].st_ino, info[0].st_mtime_ns)),
            ("ok", (b"", info[1].st_ino, info[1].st_mtime_ns)),
            ("FileNotFoundError", (errno.ENOENT, str(absent))),
            ("ok", None),  # a directory
            ("ok", None),  # a NUL in the path
        ]
    else:
        assert all(outcome == ("ok", None) for outcome in native)


def _stamps_outcome(twin: ModuleType, directory: Any, names: list[str]) -> tuple[str, Any]:
    try:
        return ("ok", twin.stamps(directory, names))
    except OSError as error:
        return (type(error).__name__, (error.errno, error.filename))
    except ValueError as error:
        return ("ValueError", str(error))


def test_stamps_parity(tmp_path: Path) -> None:
    """Each name's ``os.stat`` stamp, ``None`` when absent; errors name the whole path."""
    (tmp_path / "a.jsonl").write_bytes(b"x" * 1234)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_bytes(b"{}")
    names = ["a.jsonl", "absent", "sub/b.json", "sub"]
    if hasattr(os, "symlink"):
        os.symlink("a.jsonl", tmp_path / "link")
        os.symlink("nowhere", tmp_path / "dangling")
        names += ["link", "dangling"]
    cases: list[tuple[Any, list[str]]] = [
        (tmp_path, names),
        (str(tmp_path), []),
        (tmp_path, ["a.jsonl/x"]),  # through a file: not a directory
        (tmp_path / "absent", ["a.jsonl"]),
        (tmp_path, ["nul\0byte"]),
        (str(tmp_path) + "\0", ["a.jsonl"]),
    ]
    native, pure = ([_stamps_outcome(twin, *case) for case in cases] for twin in TWINS)
    assert native == pure
    info = {name: os.stat(tmp_path / name) for name in ("a.jsonl", "sub/b.json", "sub")}
    stamp = {name: (st.st_ino, st.st_size, st.st_mtime_ns) for name, st in info.items()}
    expected = [stamp["a.jsonl"], None, stamp["sub/b.json"], stamp["sub"]]
    if hasattr(os, "symlink"):
        expected += [stamp["a.jsonl"], None]  # a link is followed; a dangling one is absent
    assert native[0] == ("ok", expected)
    assert native[1] == ("ok", [])
    assert native[2] == ("NotADirectoryError", (errno.ENOTDIR, str(tmp_path / "a.jsonl/x")))
    assert native[3] == ("FileNotFoundError", (errno.ENOENT, str(tmp_path / "absent")))
    assert native[4] == native[5] == ("ValueError", "embedded null byte")


@pytest.mark.skipif(not READS_FROM_MEMORY, reason="reads from memory need Linux 5.12+")
def test_read_cached_leaves_a_file_off_the_page_cache_to_a_blocking_read(
    tmp_path: Path, evict: Callable[[Path], bool]
) -> None:
    """Off the page cache, a file is left to a blocking read (``None``). The kernel may serve
    a no-wait read anyway when the device answers during the call, so a twin gets a few
    tries; whatever comes back is the whole file, as it is."""
    path = tmp_path / "cold.jsonl"
    path.write_bytes(os.urandom(200_000))
    for twin in TWINS:
        left, evicted_once = False, False
        for _ in range(10):
            evicted = evict(path)
            evicted_once = evicted_once or evicted
            outcome = _read_outcome(twin, path)
            assert outcome[0] == "ok"
            if evicted and outcome[1] is None:
                left = True
                break
            assert outcome[1][0] == path.read_bytes()  # kept (tmpfs), or read as it came
        assert left or not evicted_once, twin.__name__


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_file_syncer_leaves_a_journal_another_process_locks(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "s.jsonl"
    path.write_bytes(b"head\n")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'rb'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)",
            str(path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        job = (path, path.stat().st_ino, 5, b"head\n", b"one\n")
        assert synced_outcomes(_native, [job]) == synced_outcomes(_fallback, [job]) == [(0, 0, False)]
        assert path.read_bytes() == b"head\n"
    finally:
        holder.kill()
        holder.communicate()


@pytest.mark.parametrize("twin", TWINS, ids=["native", "pure"])
def test_file_syncer_logs_a_raising_delivery(
    twin: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    called = threading.Event()

    def deliver(outcomes: list[tuple[Any, int, bool]]) -> None:
        called.set()
        raise RuntimeError("delivery bug")

    syncer = twin.FileSyncer(deliver)
    with caplog.at_level(logging.ERROR, logger="simulacra_session"):
        syncer.submit(open_files(tmp_path, 1)[0], "token")
        assert called.wait(10)
        syncer.stop()
    assert "delivery bug" in caplog.text
    assert "FileSyncer delivery" in caplog.text


def wake_pipe() -> tuple[int, int]:
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    return read, write


def pipe_bytes(fd: int) -> int:
    """How many bytes were waiting in a non-blocking pipe (read out)."""
    try:
        return len(os.read(fd, 4096))
    except BlockingIOError:
        return 0


def mailed_outcomes(
    twin: ModuleType, tmp_path: Path, polling: bool | str | None, close: bool
) -> dict[str, Any]:
    """Three jobs with a mailbox, one without; what the mailbox, the pipe and ``deliver`` got.
    ``polling``: the mailbox was taken so before (``None``: never; ``"expedited"``: the
    syncer was told that its owner waits)."""
    delivered: list[tuple[Any, int, bool]] = []
    tmp_path.mkdir()
    read, write = wake_pipe()
    try:
        box = twin.Mailbox(write)
        syncer = twin.FileSyncer(delivered.extend)
        if polling == "expedited":
            syncer.expedite(box)
        elif polling is not None:
            assert box.take(polling) == []
        left = box.close() if close else None
        fds = open_files(tmp_path, 4)
        for token, fd in enumerate(fds[:3]):
            syncer.submit(fd, token, box)
        syncer.submit(fds[3], "direct")
        syncer.stop()  # waits for every job: all outcomes are out
        woken = pipe_bytes(read)
        return {
            "mailbox": sorted(box.take(False)),
            "woken": woken,
            "again": pipe_bytes(read),
            "delivered": sorted(delivered, key=str),
            "left": left,
        }
    finally:
        os.close(read)
        os.close(write)


MAILED = [(0, 0, True), (1, 0, True), (2, 0, True)]
DIRECT = [("direct", 0, True)]


@pytest.mark.parametrize(
    ("polling", "close", "expected"),
    [
        (None, False, {"mailbox": MAILED, "woken": 8, "delivered": DIRECT, "left": None}),
        (False, False, {"mailbox": MAILED, "woken": 8, "delivered": DIRECT, "left": None}),
        (True, False, {"mailbox": MAILED, "woken": 0, "delivered": DIRECT, "left": None}),
        ("expedited", False, {"mailbox": MAILED, "woken": 0, "delivered": DIRECT, "left": None}),
        (None, True, {"mailbox": [], "woken": 0, "delivered": [*DIRECT, *MAILED], "left": []}),
    ],
    ids=["fresh", "taken", "polling", "expedited", "closed"],
)
def test_mailbox_parity(
    tmp_path: Path, polling: bool | str | None, close: bool, expected: dict[str, Any]
) -> None:
    """Outcomes go to the job's mailbox, which wakes its owner once (8 bytes, as an eventfd
    takes) until taken, and not at all while it polls or once the syncer was told its owner
    waits; a closed one sends them to ``deliver``."""
    results = [mailed_outcomes(twin, tmp_path / twin.__name__, polling, close) for twin in TWINS]
    for result in results:
        assert result.pop("again") == 0
    assert results[0] == results[1] == expected


@pytest.mark.parametrize("twin", TWINS, ids=["native", "pure"])
def test_mailbox_keeps_what_lands_after_a_take(twin: ModuleType, tmp_path: Path) -> None:
    read, write = wake_pipe()
    try:
        box = twin.Mailbox(write)
        syncer = twin.FileSyncer(lambda outcomes: None)
        first, second = open_files(tmp_path, 2)
        syncer.stop()  # later jobs are done inline: deterministic order
        syncer.submit(first, "first", box)
        assert pipe_bytes(read) == 8
        assert box.take(False) == [("first", 0, True)]
        syncer.submit(second, "second", box)
        assert pipe_bytes(read) == 8
        assert box.close() == [("second", 0, True)]
    finally:
        os.close(read)
        os.close(write)
