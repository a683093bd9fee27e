"""The two twins side by side in one process, on generated and tricky values: identical
bytes, results and errors from ``dumps``, ``loads``, ``loads_lines``, ``copy_json`` and
``derive_slug``."""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulacra_session import _pure
from simulacra_session.errors import SerializationError

try:
    from simulacra_session import _native
except ImportError:  # pragma: no cover - only without a build
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("the compiled extension is not built", allow_module_level=True)

TWINS: tuple[ModuleType, ModuleType] = (_native, _pure)

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
        data = _pure.dumps(value)
    except Exception:
        return
    native, pure = (outcome(lambda twin=twin: twin.loads(data)) for twin in TWINS)
    assert native[0] == pure[0] == "ok"
    assert _pure.dumps(native[1]) == _pure.dumps(pure[1]) == data


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
        assert _pure.dumps(native[1]) == _pure.dumps(pure[1])


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
        lines = [_pure.dumps(value) for value in values]
    except Exception:
        return
    data = b"\n".join(lines) + (b"\n" if newline and lines else b"")
    native, pure = (outcome(lambda twin=twin: twin.loads_lines(data, skip=skip)) for twin in TWINS)
    assert native[0] == pure[0] == "ok"
    assert _pure.dumps(native[1]) == _pure.dumps(pure[1])
    kept = [line for line in lines if not (skip and line.startswith(skip))]
    assert _pure.dumps(native[1][0]) == b"[" + b",".join(kept) + b"]"
    left_out = sum(len(line) + 1 for line in lines if skip and line.startswith(skip))
    assert native[1][1] == left_out - (
        1 if lines and not newline and skip and lines[-1].startswith(skip) else 0
    )
    native, pure = (outcome(lambda twin=twin: twin.loads_lines(b"x\n" + data, start, end)) for twin in TWINS)
    assert native[0] == pure[0]
    if native[0] == "ok":
        assert _pure.dumps(native[1]) == _pure.dumps(pure[1])


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
        assert _pure.dumps(native[1]) == _pure.dumps(pure[1])
    native, pure = (outcome(lambda twin=twin: twin.loads_lines(data)) for twin in TWINS)
    assert native[0] == pure[0]
    if native[0] == "ok":
        assert _pure.dumps(native[1]) == _pure.dumps(pure[1])


@pytest.mark.parametrize("data", [b"[" * 127 + b"]" * 127, b"[" * 128 + b"]" * 128, b"1\n{}\n" * 3])
def test_loads_lines_parity_at_the_limits(data: bytes) -> None:
    native, pure = (outcome(lambda twin=twin: twin.loads_lines(data)) for twin in TWINS)
    assert native == pure or (native[0] == pure[0] == "ValueError")
    assert outcome(lambda: _pure.loads_lines(bytearray(data))) == pure


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
    assert _native.derive_slug(text, limit) == _pure.derive_slug(text, limit)


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
    assert _native.dumps(value) == _pure.dumps(value)
    assert _native.loads(_native.dumps(value)) == _pure.loads(_pure.dumps(value))


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
    assert native == copy_outcome(_pure.copy_json, value)
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
    expected = copy_outcome(lambda v: _pure.loads(_pure.dumps(v)), value)
    assert copy_outcome(_native.copy_json, value) == copy_outcome(_pure.copy_json, value) == expected


def test_copy_json_shares_nothing_mutable(hotpath: ModuleType) -> None:
    original: dict[str, Any] = {"content": [{"type": "text", "text": "hi"}], "n": 1}
    copied = hotpath.copy_json(original)
    assert copied == original
    copied["content"][0]["text"] = "changed"
    copied["content"].append(None)
    assert original == {"content": [{"type": "text", "text": "hi"}], "n": 1}
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError, match="nesting deeper than 128"):
        hotpath.copy_json(cycle)


class RedactingDict(dict[Any, Any]):
    """Overrides what the stdlib encoder calls (``items``) and what iteration calls."""

    def items(self) -> Any:
        return [(key, "***") for key in self]

    def keys(self) -> Any:
        return ["forged"]

    def __iter__(self) -> Any:
        return iter(["forged"])


class LazyList(list[Any]):
    def __iter__(self) -> Any:
        return iter([1, 2])


class Pair(tuple[Any, ...]):
    def __iter__(self) -> Any:
        return iter(["x"])


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (RedactingDict(token="secret"), b'{"token":"secret"}'),
        (LazyList([7, 8, 9]), b"[7,8,9]"),
        (Pair((1, 2)), b"[1,2]"),
        ({"a": [LazyList([Pair(("p",))]), 2**70 * 10**4000]}, None),
        (RedactingDict(a={1}), "cannot serialize set at $.a"),
        (LazyList([1, object()]), "cannot serialize object at $[1]"),
        (Pair((1, float("nan"))), "cannot serialize non-finite float nan at $[1]"),
        (RedactingDict({1: "x"}), "cannot serialize dict key of type int at $"),
    ],
    ids=["dict", "list", "tuple", "nested-huge", "dict-bad", "list-bad", "tuple-bad", "dict-key"],
)
def test_subclasses_are_written_as_their_stored_items(
    hotpath: ModuleType, value: Any, written: bytes | str | None
) -> None:
    """A dict, list or tuple subclass is written as its base value: the items it stores,
    whatever ``items()``, ``keys()`` or ``__iter__`` it overrides; those are the items checked."""
    if isinstance(written, str):
        with pytest.raises(SerializationError) as raised:
            hotpath.dumps(value)
        assert str(raised.value) == written
        with pytest.raises(SerializationError):
            hotpath.copy_json(value)
        return
    data = hotpath.dumps(value)
    assert data == (written or _native.dumps(value))
    assert _pure.dumps(hotpath.copy_json(value)) == data


NESTING_DOCS = [
    "[" * 129,
    "[" * 129 + "]",
    "[ " * 129,
    "[" * 128 + "{",
    "[" * 128 + "{}",
    "[" * 128 + '{"a"',
    "[" * 128 + "{ 1",
    "[\n" * 129,
    "[" * 127 + '{"a" [',
    "[" * 5000,
    "[" * 100 + "x" + "[" * 100,
    "[" * 128 + '"["' + "]" * 128,
    "[" * 127 + "[]" + "]" * 127,
    '{"k":' * 129,
    "[1] " + "[" * 200,
]


def fault_kind(call: Callable[[], Any]) -> str:
    try:
        call()
    except ValueError as error:
        return "nesting" if "nesting deeper than 128" in str(error) else "syntax"
    return "ok"


@pytest.mark.parametrize("doc", NESTING_DOCS, ids=[f"d{i}" for i in range(len(NESTING_DOCS))])
def test_nesting_fault_where_the_compiled_parser_finds_it(doc: str) -> None:
    """The nesting limit is counted, not taken from a ``RecursionError``: each twin reports
    it exactly when the other does (a syntax fault before it wins; a ``{`` counts once its
    first key is read), in ``loads`` and in ``loads_lines``, whose lines nest one deeper."""
    for name, data in (("loads", doc), ("loads_lines", doc.encode())):
        native, pure = (fault_kind(lambda twin=twin: getattr(twin, name)(data)) for twin in TWINS)  # noqa: B023
        assert native == pure


def below_the_recursion_limit(call: Callable[[], Any], frames_left: int = 60) -> Any:
    """``call()`` from a stack ``frames_left`` frames short of the recursion limit."""

    def descend(depth: int) -> Any:
        return call() if depth <= 0 else descend(depth - 1)

    return descend(sys.getrecursionlimit() - len(inspect.stack()) - frames_left)


def test_documents_within_the_limit_work_near_the_recursion_limit(hotpath: ModuleType) -> None:
    """A document 100 deep is written, read and copied from a deep call stack: the compiled
    twin needs no Python stack, and the twin neither (it used to raise ``RecursionError`` or
    claim the document nested deeper than 128)."""
    doc: Any = 1
    for _ in range(100):
        doc = [doc]
    data = _native.dumps(doc)
    assert below_the_recursion_limit(lambda: hotpath.dumps(doc)) == data
    assert below_the_recursion_limit(lambda: hotpath.copy_json(doc)) == doc
    assert below_the_recursion_limit(lambda: hotpath.loads(data)) == doc
    assert below_the_recursion_limit(lambda: hotpath.loads_lines(data + b"\n")) == ([doc], 0)


def outcome_message(call: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as raised:  # noqa: PT011 - the message is compared next
        call()
    return str(raised.value)


@pytest.mark.parametrize(
    ("data", "position"),
    [(b"1\n[1] x\n", "line 2: "), (b"1,2\n", "line 1: "), (b"]\n", "line 1: ")],
)
def test_loads_lines_positions_are_the_lines_own(data: bytes, position: str) -> None:
    """A fault's position is counted in its journal line, as ``loads`` counts it in a
    document: the twin no longer reads the line as ``[line]``, one column off."""
    native, pure = (outcome_message(lambda twin=twin: twin.loads_lines(data)) for twin in TWINS)
    column = re.search(r"line 1 column (\d+)", native)
    assert column is not None
    assert native.startswith(position)
    assert pure.startswith(position)
    assert f"line 1 column {column[1]}" in pure
