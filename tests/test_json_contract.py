"""The hot-path contract, checked on the live backend (native, or pure under SIMULACRA_SESSION_PURE=1)."""

from __future__ import annotations

import enum
import json
import os
import stat
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest

import simulacra_session
from simulacra_session import InvalidSessionIdError, SerializationError
from simulacra_session._backend import (
    BACKEND,
    atomic_write,
    derive_slug,
    dumps,
    link_fork,
    loads,
    loads_lines,
)


def test_backend_is_the_requested_one() -> None:
    assert simulacra_session.BACKEND == BACKEND
    forced = os.environ.get("SIMULACRA_SESSION_PURE", "") not in ("", "0")
    if forced:
        assert BACKEND == "pure"
    elif os.environ.get("CI") == "true":
        assert BACKEND == "native", "CI must test the compiled extension"


def test_source_tree_imports_without_the_extension(tmp_path: Path) -> None:
    package = Path(simulacra_session.__file__).parent
    copy = tmp_path / "simulacra_session"
    copy.mkdir()
    for source in package.rglob("*"):
        if source.suffix in {".py", ".pyi", ".typed"}:
            target = copy / source.relative_to(package)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "SIMULACRA_SESSION_PURE"}
    out = subprocess.run(
        [sys.executable, "-c", "import simulacra_session as s; print(s.BACKEND)"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "pure"


class Color(enum.IntEnum):
    RED = 1


class Text(str):
    pass


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [True, False, None]}, '{"b":1,"a":[true,false,null]}'),
        ((1, (2,), []), "[1,[2],[]]"),
        ("é中🙂\u2028\x7f", '"é中🙂\u2028\x7f"'),
        ('"\\\b\f\n\r\t\x00\x1f', '"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f"'),
        (0.1, "0.1"),
        (-0.0, "-0.0"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (1e-05, "1e-05"),
        (0.0001, "0.0001"),
        (1.5e-07, "1.5e-07"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (123456789012345678.0, "1.2345678901234568e+17"),
        (2**63, "9223372036854775808"),
        (-(2**64) - 1, "-18446744073709551617"),
        (Color.RED, "1"),
        (Text("sub"), '"sub"'),
        (OrderedDict([("z", 1), ("a", 2)]), '{"z":1,"a":2}'),
        ({"": {"x y": []}}, '{"":{"x y":[]}}'),
    ],
)
def test_dumps_vectors(value: Any, expected: str) -> None:
    assert dumps(value) == expected.encode()
    if not isinstance(value, OrderedDict):
        assert dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def test_dumps_huge_ints_beyond_cpython_digit_limit() -> None:
    for value in (10**5000, -(10**5000) + 7, 3**20000):
        text = dumps(value)
        assert len(text) > 4300
        assert loads(text) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"messages": [0, 1, 2, {"content": [{"result": {"deep": [0, {1}]}}]}]},
            "cannot serialize set at $.messages[3].content[0].result.deep[1]",
        ),
        ({"a": float("nan")}, "cannot serialize non-finite float nan at $.a"),
        ([float("inf")], "cannot serialize non-finite float inf at $[0]"),
        ({"x": [float("-inf")]}, "cannot serialize non-finite float -inf at $.x[0]"),
        ({"k": {1: "v"}}, "cannot serialize dict key of type int at $.k"),
        ({"a b": b"raw"}, 'cannot serialize bytes at $["a b"]'),
        ({"k": "\ud800"}, "cannot serialize str with a lone surrogate at $.k"),
        ({"\udfff": 1}, "cannot serialize dict key with a lone surrogate at $"),
        (object(), "cannot serialize object at $"),
        ({"when": __import__("datetime").datetime(2026, 1, 1)}, "cannot serialize datetime at $.when"),
        ([{"é": [None, set()]}], 'cannot serialize set at $[0]["é"][1]'),
    ],
)
def test_dumps_errors_name_the_path(value: Any, message: str) -> None:
    with pytest.raises(SerializationError) as caught:
        dumps(value)
    assert str(caught.value) == message
    assert isinstance(caught.value, TypeError)


def test_dumps_first_fault_in_document_order() -> None:
    with pytest.raises(SerializationError, match=r"lone surrogate at \$\[0\]"):
        dumps(["\ud800", {1}])


def nested(depth: int) -> list[Any]:
    root: list[Any] = []
    current = root
    for _ in range(depth - 1):
        current.append([])
        current = current[0]
    return root


def test_depth_limit_128() -> None:
    assert dumps(nested(128)).count(b"[") == 128
    with pytest.raises(SerializationError, match=r"nesting deeper than 128 at \$(\[0\]){128}$"):
        dumps(nested(129))
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError, match="nesting deeper than 128"):
        dumps(cycle)
    assert loads(b"[" * 128 + b"]" * 128) == nested(128)
    with pytest.raises(ValueError, match="128"):
        loads(b"[" * 129 + b"]" * 129)
    with pytest.raises(ValueError, match="128"):
        loads(b'{"a":' * 129 + b"{}" + b"}" * 129)


def test_loads_values() -> None:
    data = b' {"a": 1, "a": 2, "b": [1.5, -0, -0.0, 1e5, 12345678901234567890123], "c": "\\ud83d\\ude00"} '
    assert loads(data) == {"a": 2, "b": [1.5, 0, -0.0, 100000.0, 12345678901234567890123], "c": "😀"}
    assert list(loads(b'{"z":1,"a":2,"z":3}')) == ["z", "a"]
    keys = ["a", "a\x00", "a\x00\x00", "ab", "ba", "abcd", "abce", "x" * 16, "x" * 17, "x" * 15 + "y"]
    assert list(loads(dumps([{key: 0 for key in keys}] * 2))[1]) == keys  # the key cache tells them apart
    assert loads("[true,false,null]") == [True, False, None]
    assert loads(bytearray(b'"x"')) == "x"
    big = b"-" + b"7" * 9000
    seven_2500 = int("7" * 2500)
    assert loads(big) == -(int("7" * 4000) * 10**5000 + seven_2500 * 10**2500 + seven_2500)
    parsed = loads(b"[0.1, 1e-7, 2.5e300]")
    assert parsed == [0.1, 1e-7, 2.5e300]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"NaN",
        b"[Infinity]",
        b"-Infinity",
        b"[1] x",
        b"{} {}",
        b"\xff",
        b'"\xc3"',
        b"\xef\xbb\xbf{}",
        b'"a\x01b"',
        b'"\\ud800"',
        b'["\\udc00x"]',
        b"1e400",
        b"-1e400",
        b"[1,]",
        b"{'a': 1}",
        b"01",
        "\ud800",
    ],
)
def test_loads_rejects(data: bytes | str) -> None:
    with pytest.raises(ValueError, match=r"."):
        loads(data)


def test_loads_lines() -> None:
    data = b'{"a": 1}\n["metadata",{}]\n  "x"\r\n[1.5, 12345678901234567890123]\n'
    values = [{"a": 1}, ["metadata", {}], "x", [1.5, 12345678901234567890123]]
    assert loads_lines(data) == (values, 0)
    assert loads_lines(data, skip=b'["metadata",') == ([values[0], *values[2:]], 16)
    assert loads_lines(data, 0, 9) == ([{"a": 1}], 0)
    assert loads_lines(data, 9, 9) == ([], 0)
    assert loads_lines(data, 9, 25, b"[") == ([], 16)
    assert loads_lines(data, 9, 24, b"[") == ([], 15)  # the last line's newline is not there
    assert loads_lines(data, len(data)) == loads_lines(data, 99) == ([], 0)
    assert loads_lines(data, 25, -31) == loads_lines(data, -38, 32) == (["x"], 0)
    assert loads_lines(b"") == loads_lines(b"1", 1) == ([], 0)
    assert loads_lines(bytearray(b"1\n2")) == ([1, 2], 0)
    assert loads_lines(b"[" * 127 + b"]" * 127) == ([nested(127)], 0)


@pytest.mark.parametrize(
    ("data", "line"),
    [(b"\n", 1), (b"1\n\n2\n", 2), (b"1\n2,3\n", 2), (b"1\n[\n]\n", 2), (b"1\n2\n\xff", 3), (b"{} {}", 1)],
)
def test_loads_lines_errors_name_the_line(data: bytes, line: int) -> None:
    with pytest.raises(ValueError, match=f"^line {line}: "):
        loads_lines(data)


def test_loads_lines_nesting_counts_the_list() -> None:
    with pytest.raises(ValueError, match=r"^line 2: .*128"):
        loads_lines(b"1\n" + b"[" * 128 + b"]" * 128)


def test_loads_type_error() -> None:
    with pytest.raises(TypeError):
        loads(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes or bytearray, not str"):
        loads_lines("1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((b"1\n", "x"), TypeError, "'str' object cannot be interpreted as an integer"),
        ((b"1\n", 0, 1.5), TypeError, "'float' object cannot be interpreted as an integer"),
        ((b"1\n", 2**70), OverflowError, "Python int too large to convert to C long"),
        ((b"1\n", 0, -(2**70)), OverflowError, "Python int too large to convert to C long"),
        ((b"1\n", 0, None, "x"), TypeError, "'str' object is not an instance of 'bytes'"),
        ((b"1\n", 0, None, bytearray(b"1")), TypeError, "'bytearray' object is not an instance of 'bytes'"),
        (("1\n", "x"), TypeError, "'str' object cannot be interpreted as an integer"),
    ],
)
def test_loads_lines_bad_arguments(args: tuple[Any, ...], error: type[Exception], message: str) -> None:
    """Both twins check the arguments in order, with the same errors."""
    with pytest.raises(error) as raised:
        loads_lines(*args)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("  hello \n\t world  ", 50, "hello world"),
        (
            "Please summarize the quarterly report for the board meeting tomorrow",
            50,
            "Please summarize the quarterly report for the",
        ),
        ("x" * 60, 50, "x" * 50),
        ("aaaa bbbb", 4, "aaaa"),
        ("aaa bbbb", 4, "aaa"),
        ("a\x1cb\x85c\xa0d\u3000e", 50, "a b c d e"),
        ("   \t\n ", 50, None),
        ("", 50, None),
        ("ééé éé", 5, "ééé"),
    ],
)
def test_derive_slug(text: str, limit: int, expected: str | None) -> None:
    assert derive_slug(text, limit) == expected


def test_derive_slug_errors() -> None:
    with pytest.raises(ValueError, match="limit must be at least 1, got 0"):
        derive_slug("x", 0)
    with pytest.raises(SerializationError, match="lone surrogate"):
        derive_slug("a\ud800")
    assert derive_slug("x" * 80) == "x" * 50


def test_atomic_write(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    atomic_write(str(target), b"one")
    atomic_write(target, b"two", False)
    assert target.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["s.json"]
    mode = stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_atomic_write_failures_leave_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "s.json"
    with pytest.raises(FileNotFoundError) as caught:
        atomic_write(missing, b"x")
    assert caught.value.filename == str(missing)
    assert caught.value.errno is not None
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(IsADirectoryError):  # cannot rename a file over a directory
        atomic_write(tmp_path / "dir.json", b"x")
    assert sorted(os.listdir(tmp_path)) == ["dir.json"]
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "s.json", "text")  # type: ignore[arg-type]
    assert sorted(os.listdir(tmp_path)) == ["dir.json"]


def test_link_fork(tmp_path: Path) -> None:
    child = tmp_path / "child.json"
    atomic_write(child, b"v1")
    assert link_fork(tmp_path, "parent", "child") is True
    entry = tmp_path / "parent-forks" / "child.json"
    assert entry.stat().st_ino == child.stat().st_ino
    assert link_fork(str(tmp_path), "parent", "child", False) is True  # already linked
    atomic_write(child, b"v2")
    assert entry.stat().st_ino != child.stat().st_ino
    assert link_fork(tmp_path, "parent", "child") is True
    assert entry.stat().st_ino == child.stat().st_ino
    assert entry.read_bytes() == b"v2"
    assert os.listdir(tmp_path / "parent-forks") == ["child.json"]


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", ".hidden", "x" * 129, "a\n", 7])
def test_link_fork_rejects_bad_ids_before_io(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(InvalidSessionIdError):
        link_fork(tmp_path, bad, "child")
    with pytest.raises(InvalidSessionIdError):
        link_fork(tmp_path, "parent", bad)
    assert os.listdir(tmp_path) == []


def test_link_fork_missing_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        link_fork(tmp_path, "parent", "ghost")
