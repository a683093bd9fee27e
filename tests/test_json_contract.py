"""The JSON contract of the hot path (``dumps``, ``loads``, ``loads_lines``), checked on
both backends in one process (the ``hotpath`` fixture)."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from types import ModuleType
from typing import Any

import pytest

from simulacra_session import SerializationError


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
def test_dumps_vectors(hotpath: ModuleType, value: Any, expected: str) -> None:
    assert hotpath.dumps(value) == expected.encode()
    if not isinstance(value, OrderedDict):
        assert hotpath.dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def test_dumps_huge_ints_beyond_cpython_digit_limit(hotpath: ModuleType) -> None:
    for value in (10**5000, -(10**5000) + 7, 3**20000):
        text = hotpath.dumps(value)
        assert len(text) > 4300
        assert hotpath.loads(text) == value


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
        ({"\udfff": {"a b\ud83d": [{2}]}}, 'cannot serialize set at $["\\udfff"]["a b\\ud83d"][0]'),
        (object(), "cannot serialize object at $"),
        ({"when": __import__("datetime").datetime(2026, 1, 1)}, "cannot serialize datetime at $.when"),
        ([{"é": [None, set()]}], 'cannot serialize set at $[0]["é"][1]'),
    ],
)
def test_dumps_errors_name_the_path(hotpath: ModuleType, value: Any, message: str) -> None:
    with pytest.raises(SerializationError) as caught:
        hotpath.dumps(value)
    assert str(caught.value) == message
    assert isinstance(caught.value, TypeError)


def test_dumps_first_fault_in_document_order(hotpath: ModuleType) -> None:
    with pytest.raises(SerializationError, match=r"dict key of type int at \$\[1\]"):
        hotpath.dumps(["\ud800", {1: 2}, {1}])


def nested(depth: int) -> list[Any]:
    root: list[Any] = []
    current = root
    for _ in range(depth - 1):
        current.append([])
        current = current[0]
    return root


def test_depth_limit_128(hotpath: ModuleType) -> None:
    assert hotpath.dumps(nested(128)).count(b"[") == 128
    with pytest.raises(SerializationError, match=r"nesting deeper than 128 at \$(\[0\]){128}$"):
        hotpath.dumps(nested(129))
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError, match="nesting deeper than 128"):
        hotpath.dumps(cycle)
    assert hotpath.loads(b"[" * 128 + b"]" * 128) == nested(128)
    with pytest.raises(ValueError, match="128"):
        hotpath.loads(b"[" * 129 + b"]" * 129)
    with pytest.raises(ValueError, match="128"):
        hotpath.loads(b'{"a":' * 129 + b"{}" + b"}" * 129)


def test_loads_values(hotpath: ModuleType) -> None:
    data = b' {"a": 1, "a": 2, "b": [1.5, -0, -0.0, 1e5, 12345678901234567890123], "c": "\\ud83d\\ude00"} '
    assert hotpath.loads(data) == {"a": 2, "b": [1.5, 0, -0.0, 100000.0, 12345678901234567890123], "c": "😀"}
    assert list(hotpath.loads(b'{"z":1,"a":2,"z":3}')) == ["z", "a"]
    keys = ["a", "a\x00", "a\x00\x00", "ab", "ba", "abcd", "abce", "x" * 16, "x" * 17, "x" * 15 + "y"]
    doubled = hotpath.dumps([{key: 0 for key in keys}] * 2)
    assert list(hotpath.loads(doubled)[1]) == keys  # the key cache tells them apart
    assert hotpath.loads("[true,false,null]") == [True, False, None]
    assert hotpath.loads(bytearray(b'"x"')) == "x"
    big = b"-" + b"7" * 9000
    seven_2500 = int("7" * 2500)
    assert hotpath.loads(big) == -(int("7" * 4000) * 10**5000 + seven_2500 * 10**2500 + seven_2500)
    parsed = hotpath.loads(b"[0.1, 1e-7, 2.5e300]")
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
        b'["\\ud800", 1,]',
        b'["\\udc00x"] x',
        b'{"\\ud800": 1 "b": 2}',
        b'["\\ud800\x01"]',
        b'["\\ud800", tru]',
        b'["\\ud800", 01]',
        b'["\\ud800\\x"]',
        b'"\\ud800',
        b"1e400",
        b"-1e400",
        b"[1,]",
        b"{'a': 1}",
        b"01",
        "\ud800",
    ],
)
def test_loads_rejects(hotpath: ModuleType, data: bytes | str) -> None:
    with pytest.raises(ValueError, match=r"."):
        hotpath.loads(data)


def test_loads_lines(hotpath: ModuleType) -> None:
    data = b'{"a": 1}\n["metadata",{}]\n  "x"\r\n[1.5, 12345678901234567890123]\n'
    values = [{"a": 1}, ["metadata", {}], "x", [1.5, 12345678901234567890123]]
    assert hotpath.loads_lines(data) == (values, 0)
    assert hotpath.loads_lines(data, skip=b'["metadata",') == ([values[0], *values[2:]], 16)
    assert hotpath.loads_lines(data, 0, 9) == ([{"a": 1}], 0)
    assert hotpath.loads_lines(data, 9, 9) == ([], 0)
    assert hotpath.loads_lines(data, 9, 25, b"[") == ([], 16)
    assert hotpath.loads_lines(data, 9, 24, b"[") == ([], 15)  # the last line's newline is not there
    assert hotpath.loads_lines(data, len(data)) == hotpath.loads_lines(data, 99) == ([], 0)
    assert hotpath.loads_lines(data, 25, -31) == hotpath.loads_lines(data, -38, 32) == (["x"], 0)
    assert hotpath.loads_lines(b"") == hotpath.loads_lines(b"1", 1) == ([], 0)
    assert hotpath.loads_lines(bytearray(b"1\n2")) == ([1, 2], 0)
    assert hotpath.loads_lines(b"[" * 127 + b"]" * 127) == ([nested(127)], 0)


@pytest.mark.parametrize(
    ("data", "line"),
    [(b"\n", 1), (b"1\n\n2\n", 2), (b"1\n2,3\n", 2), (b"1\n[\n]\n", 2), (b"1\n2\n\xff", 3), (b"{} {}", 1)],
)
def test_loads_lines_errors_name_the_line(hotpath: ModuleType, data: bytes, line: int) -> None:
    with pytest.raises(ValueError, match=f"^line {line}: "):
        hotpath.loads_lines(data)


def test_loads_lines_nesting_counts_the_list(hotpath: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"^line 2: .*128"):
        hotpath.loads_lines(b"1\n" + b"[" * 128 + b"]" * 128)


def test_loads_type_error(hotpath: ModuleType) -> None:
    with pytest.raises(TypeError):
        hotpath.loads(123)
    with pytest.raises(TypeError, match="bytes or bytearray, not str"):
        hotpath.loads_lines("1")


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
def test_loads_lines_bad_arguments(
    hotpath: ModuleType, args: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    """Both twins check the arguments in order, with the same errors."""
    with pytest.raises(error) as raised:
        hotpath.loads_lines(*args)
    assert str(raised.value) == message
