"""Twin of ``rust/src/json`` and ``rust/src/python/{json,ser,de,copy}.rs``: ``dumps``,
``loads``, ``loads_lines`` and ``copy_json``, with the same bytes, values and exception
types; and a journal's record checksums (``record_checksum``, ``commit_checksum``,
``verify_records``).

The standard library's ``json`` does the work; what it does differently is checked or
redone here: lone surrogates (written as ``\\udxxx`` escapes, as JavaScript writes them),
the nesting limit (counted, where the compiled twin's parser finds it), non-finite floats,
ints beyond CPython's 4300 digits, subclasses (read as their stored items), and the
JSONPath of a fault. A JSON syntax error keeps the stdlib's wording (``Expecting value:
line 1 column 5 (char 4)``) where the compiled twin has serde_json's (``expected value at
line 1 column 5``): the same fault, at the same position for most (see ``_native.pyi``).
Nothing recurses on the Python stack that the compiled twin would not: called near the
recursion limit, the stdlib's parser runs on a fresh thread.
"""

from __future__ import annotations

import json
import math
import operator
import re
import sys
import threading
import zlib
from collections.abc import Iterator
from typing import Any

from ..errors import SerializationError

__all__ = [
    "commit_checksum",
    "copy_json",
    "dumps",
    "loads",
    "loads_lines",
    "record_checksum",
    "verify_records",
]

MAX_DEPTH = 128
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_UTF8 = re.compile(b"\xed[\xa0-\xbf][\x80-\xbf]")  # as "surrogatepass" encodes one
_INT_DIGITS = 4000  # below CPython's int<->str digit limit (4300)
_INT_LIMIT = 10**_INT_DIGITS
_encode_str: Any = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring
_CONTAINERS = (dict, list, tuple)
_END = object()
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False)


class _Fault(Exception):
    """A serialization fault in the container at ``at`` (its keys and indexes from the top)."""

    def __init__(self, reason: str, at: list[str | int]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = "".join(_key_segment(key) if isinstance(key, str) else f"[{key}]" for key in at)

    def error(self) -> SerializationError:
        return SerializationError(f"{self.reason} at ${self.path}")


def _key_segment(key: str) -> str:
    if _IDENTIFIER.fullmatch(key):
        return "." + key
    return "[" + _utf8(_encode_str(key)).decode() + "]"


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def _surrogate_escape(found: re.Match[bytes]) -> bytes:
    middle, last = found[0][1], found[0][2]
    return b"\\u%04x" % (0xD000 | (middle & 0x3F) << 6 | last & 0x3F)


def _utf8(text: str) -> bytes:
    """``text`` as UTF-8, each lone surrogate written as a lowercase ``\\udxxx`` escape (as
    JavaScript's ``JSON.stringify`` writes one): ``text`` is JSON, so they are in strings."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_UTF8.sub(_surrogate_escape, text.encode("utf-8", "surrogatepass"))


def _stored(container: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> Iterator[Any]:
    """The items a dict (its ``(key, value)`` pairs), list or tuple stores, read as its base
    type's, whatever a subclass overrides (``items``, ``keys``, ``__iter__``): the compiled
    twin reads the stored items, and so must the twin."""
    if isinstance(container, dict):
        return iter(dict.items(container))
    return list.__iter__(container) if isinstance(container, list) else tuple.__iter__(container)


def _check(obj: object) -> tuple[bool, bool]:
    """Validate ``obj`` in document order, as the compiled twin writes it: whether it holds an
    int too big for ``repr``, and a dict, list or tuple subclass (both written by ``_write``).

    The containers open are counted on a list, not on the Python stack: a document within the
    nesting limit validates wherever it is called from, as in the compiled twin."""
    huge = subclassed = False
    levels: list[tuple[Iterator[Any], bool]] = []  # each open container's items left, is a dict
    at: list[str | int] = []  # the key or index of the item being checked in each
    value: Any = obj
    while True:
        kind = type(value)
        if kind is str or kind is bool or value is None:  # the most common, first
            pass
        elif isinstance(value, (dict, list, tuple)):
            if len(levels) == MAX_DEPTH:
                raise _Fault(f"cannot serialize: nesting deeper than {MAX_DEPTH}", at)
            subclassed = subclassed or kind not in _CONTAINERS
            keyed = isinstance(value, dict)
            levels.append((_stored(value) if keyed else enumerate(_stored(value)), keyed))
            at.append(0)
        elif isinstance(value, str):
            pass
        elif isinstance(value, int):
            huge = huge or not -_INT_LIMIT < value < _INT_LIMIT
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise _Fault(f"cannot serialize non-finite float {float.__repr__(value)}", at)
        else:
            raise _Fault(f"cannot serialize {type(value).__name__}", at)
        while levels:  # the next item, in the innermost container that has one left
            items, keyed = levels[-1]
            step = next(items, None)
            if step is None:
                levels.pop()
                at.pop()
                continue
            key, value = step
            if keyed and not isinstance(key, str):
                at.pop()
                raise _Fault(f"cannot serialize dict key of type {type(key).__name__}", at)
            at[-1] = key
            break
        else:
            return huge, subclassed


def _int_text(value: int) -> str:
    """Decimal digits of an int of any size (CPython's ``str`` stops at 4300 digits)."""
    if -_INT_LIMIT < value < _INT_LIMIT:
        return int.__repr__(value)
    sign, value = ("-", -value) if value < 0 else ("", value)
    chunks = []
    while value >= _INT_LIMIT:
        value, low = divmod(value, _INT_LIMIT)
        chunks.append(int.__repr__(low).zfill(_INT_DIGITS))
    chunks.append(int.__repr__(value))
    return sign + "".join(reversed(chunks))


def _write(obj: object) -> str:
    """The JSON text of ``obj`` (validated), as the compiled twin writes it: ints of any size,
    subclasses as the items they store; on a list of open containers, not the Python stack.
    The stdlib's encoder does the usual documents faster."""
    out: list[str] = []
    levels: list[tuple[Iterator[Any], bool, str]] = []  # items left, is a dict, closing bracket
    value: Any = obj
    while True:
        if isinstance(value, str):
            out.append(_encode_str(value))
        elif isinstance(value, (dict, list, tuple)):
            keyed = isinstance(value, dict)
            out.append("{" if keyed else "[")
            levels.append((_stored(value), keyed, "}" if keyed else "]"))
        elif value is None:
            out.append("null")
        elif isinstance(value, bool):
            out.append("true" if value else "false")
        elif isinstance(value, int):
            out.append(_int_text(value))
        else:
            out.append(float.__repr__(value))
        while levels:
            items, keyed, closing = levels[-1]
            step: Any = next(items, _END)
            if step is _END:
                out.append(closing)
                levels.pop()
                continue
            if out[-1] not in ("{", "["):  # pieces are whole tokens: only an opening bracket is one
                out.append(",")
            if keyed:
                key, value = step
                out.append(_encode_str(key) + ":")
            else:
                value = step
            break
        else:
            return "".join(out)


def dumps(obj: object) -> bytes:
    """Serialize ``obj`` to compact UTF-8 JSON; see ``_native.pyi`` for the exact rules."""
    try:
        huge, subclassed = _check(obj)
    except _Fault as fault:
        raise fault.error() from None
    if not (huge or subclassed):
        try:
            return _utf8(_compact.encode(obj))
        except RecursionError:  # its C encoder recurses on the Python stack (3.11): _write does not
            pass
    return _utf8(_write(obj))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _parse_int(text: str) -> int:
    if len(text) <= _INT_DIGITS:
        return int(text)
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    value = 0
    for start in range(0, len(digits), _INT_DIGITS):
        chunk = digits[start : start + _INT_DIGITS]
        value = value * 10 ** len(chunk) + int(chunk)
    return -value if negative else value


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)  # a string, or a bracket
_STRING = re.compile(r'[ \t\n\r]*(?:}|"(?:[^"\\]|\\.)*")', re.DOTALL)  # ws, then a key or }


def _nesting_fault(text: str, depth: int) -> tuple[int, int] | None:
    """Where the compiled twin's parser finds ``text``, inside ``depth`` open containers,
    nesting deeper than the limit: the position of the opening bracket, and how much of the
    text it reads before saying so (up to that ``[``; for a ``{``, its first key or ``}``
    too). ``None`` when it never does. Counted on the text: the stdlib's parser recurses."""
    for token in _TOKEN.finditer(text):
        bracket = token[0]
        if bracket in "[{":
            if depth == MAX_DEPTH:
                if bracket == "[":
                    return token.start(), token.end()
                key = _STRING.match(text, token.end())
                return None if key is None else (token.start(), key.end())
            depth += 1
        elif bracket in "]}":
            depth -= 1
    return None


def _stdlib_loads(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int)


def _parse(text: str) -> Any:
    """``text`` parsed by the stdlib's parser, which recurses on the Python stack (counted
    against the recursion limit up to Python 3.11): called near the limit, it runs again on
    a new thread's empty stack, as the compiled twin needs none."""
    try:
        return _stdlib_loads(text)
    except RecursionError:
        outcome: list[tuple[bool, Any]] = []

        def run() -> None:
            try:
                outcome.append((True, _stdlib_loads(text)))
            except Exception as error:  # handed to the caller's thread
                outcome.append((False, error))

        thread = threading.Thread(target=run, name="simulacra-session loads")
        thread.start()
        thread.join()
        parsed, value = outcome[0]
        if parsed:
            return value
        raise value from None


def _loads_text(text: str, depth: int = 0) -> object:
    """One document inside ``depth`` open containers, with the compiled twin's faults: the
    first in the text, the nesting limit's where its parser would find it."""
    fault = _nesting_fault(text, depth) if text.count("[") + text.count("{") > MAX_DEPTH - depth else None
    try:
        return _parse(text if fault is None else text[: fault[1]])
    except json.JSONDecodeError as error:  # a plain ValueError, as the native twin raises
        if fault is None or error.pos < fault[1]:
            raise ValueError(str(error)) from None
    # the text read so far holds no other fault, and the containers open cannot close
    raise ValueError(str(json.JSONDecodeError(f"nesting deeper than {MAX_DEPTH}", text, fault[0])))


def loads(data: bytes | bytearray | str) -> object:
    """Parse one strict RFC 8259 JSON document (a lone surrogate escape gives a lone surrogate);
    ``ValueError`` on anything else."""
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"invalid UTF-8 at byte {error.start}") from None
    elif isinstance(data, str):
        text = data
        if _has_surrogate(text):
            raise ValueError("lone surrogate in input text")
    else:
        raise TypeError(f"loads() takes bytes, bytearray or str, not {type(data).__name__}")
    return _loads_text(text)


def _c_long(value: object) -> int:
    """An index taken as the compiled twin takes it, with its ``TypeError``/``OverflowError``."""
    index = operator.index(value)  # type: ignore[arg-type]
    if not -sys.maxsize - 1 <= index <= sys.maxsize:
        raise OverflowError("Python int too large to convert to C long")
    return index


def loads_lines(
    data: bytes | bytearray, start: int = 0, end: int | None = None, skip: bytes | None = None
) -> tuple[list[object], int]:
    """Parse each line of ``data[start:end]`` as one JSON document, but those starting with ``skip``.

    Returns the values and the size of the lines left out; see ``_native.pyi``.
    """
    start, end = _c_long(start), None if end is None else _c_long(end)
    if skip is not None and not isinstance(skip, bytes):
        raise TypeError(f"'{type(skip).__name__}' object is not an instance of 'bytes'")
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"loads_lines() takes bytes or bytearray, not {type(data).__name__}")
    region = bytes(data[start:end])
    lines = region.split(b"\n")
    if not lines[-1]:  # the last line's newline, or no lines at all
        lines.pop()
    values = []
    skipped = offset = 0
    for number, line in enumerate(lines, 1):
        size = min(len(line) + 1, len(region) - offset)  # the newline, unless the last has none
        offset += size
        if skip and line.startswith(skip):
            skipped += size
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"line {number}: invalid UTF-8 at byte {error.start}") from None
        try:
            values.append(_loads_text(text, 1))  # as a list's item, for the nesting limit
        except ValueError as error:
            raise ValueError(f"line {number}: {error}") from None
    return values, skipped


def copy_json(obj: object) -> object:
    """A deep copy of a JSON value: exactly ``loads(dumps(obj))``, result and errors."""
    return loads(dumps(obj))


_RECORD_START = b'\n["metadata",'  # a commit or seal record, after the line before it
_SEAL_PREFIX = b'["metadata",null,'
_SEALED = 11  # the bytes of a record's line after what its checksum covers: "cccccccc"]
_QUOTE = 0x22


def _bytes(value: object) -> bytes:
    """``value`` when it is bytes, as the compiled twin takes a byte string; else ``TypeError``."""
    if not isinstance(value, bytes):
        raise TypeError(f"'{type(value).__name__}' object is not an instance of 'bytes'")
    return value


def _unsigned(value: object, bits: int) -> int:
    """An index taken as the compiled twin takes an unsigned one, with its ``OverflowError``."""
    index = operator.index(value)  # type: ignore[arg-type]
    if not 0 <= index < 1 << bits:
        raise OverflowError(f"{index} does not fit an unsigned {bits}-bit integer")
    return index


def record_checksum(line: bytes) -> int | None:
    """The checksum of the record ``line`` (without its newline) when the line verifies."""
    line = _bytes(line)
    if len(line) <= _SEALED or line[-2:] != b'"]' or line[-_SEALED] != _QUOTE:
        return None
    sealed = line[-10:-2]
    if b"%08x" % zlib.crc32(line[:-_SEALED]) != sealed:
        return None
    return int(sealed, 16)


def commit_checksum(line: bytes, batch: bytes, seed: int) -> int | None:
    """The checksum of the commit or seal record ``line`` when it and the message lines
    ``batch`` it commits, after a record whose checksum is ``seed``, verify."""
    return _commit_checksum(_bytes(line), _bytes(batch), _unsigned(seed, 32))


def _commit_checksum(line: bytes, batch: bytes | memoryview, seed: int) -> int | None:
    found = record_checksum(line)
    if found is None or len(line) < 22 or line[-22] != _QUOTE:
        return None
    return found if line[-21:-13] == b"%08x" % zlib.crc32(batch, seed) else None


def verify_records(data: bytes, first: int, seed: int) -> tuple[int, int]:
    """The start and end of the last state record of the journal ``data`` that verifies, with
    everything before it: ``(0, first)`` when that is the header (ending at ``first``,
    checksum ``seed``). The first record that does not verify ends the search."""
    data, seed = _bytes(data), _unsigned(seed, 32)
    first = _unsigned(first, sys.maxsize.bit_length() + 1)
    view = memoryview(data)
    last = (0, first)
    position = first
    while True:
        found = data.find(_RECORD_START, max(position - 1, 0))
        if found < 0:
            return last
        start = found + 1
        end = data.find(b"\n", start) + 1
        if end == 0:
            return last
        checked = _commit_checksum(data[start : end - 1], view[position:start], seed)
        if checked is None:
            return last
        if not data.startswith(_SEAL_PREFIX, start):
            last = (start, end)
        seed, position = checked, end
