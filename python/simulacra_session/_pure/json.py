"""Twin of ``rust/src/json`` and ``rust/src/python/{json,ser,de,copy}.rs``: ``dumps``,
``loads``, ``loads_lines`` and ``copy_json``, with the same bytes, values and errors; and a
journal's record checksums (``record_checksum``, ``commit_checksum``, ``verify_records``).

The standard library's ``json`` does the work; what it does differently is checked or
redone here: lone surrogates (written as ``\\udxxx`` escapes, as JavaScript writes them),
the nesting limit, non-finite floats, ints beyond CPython's 4300 digits, and the JSONPath
of a fault.
"""

from __future__ import annotations

import json
import math
import operator
import re
import sys
import zlib
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
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False)


class _Fault(Exception):
    """A serialization fault; ``segments`` gathers the path while unwinding."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments: list[str] = []

    def error(self) -> SerializationError:
        return SerializationError(f"{self.reason} at $" + "".join(reversed(self.segments)))


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


def _check(obj: Any, depth: int) -> bool:
    """Validate ``obj`` in document order; returns whether it holds an int too big for ``repr``."""
    if isinstance(obj, str):
        return False
    if isinstance(obj, dict):
        if depth > MAX_DEPTH:
            raise _Fault(f"cannot serialize: nesting deeper than {MAX_DEPTH}")
        huge = False
        for key, value in obj.items():
            if not isinstance(key, str):
                raise _Fault(f"cannot serialize dict key of type {type(key).__name__}")
            try:
                huge = _check(value, depth + 1) or huge
            except _Fault as fault:
                fault.segments.append(_key_segment(key))
                raise
        return huge
    if isinstance(obj, (list, tuple)):
        if depth > MAX_DEPTH:
            raise _Fault(f"cannot serialize: nesting deeper than {MAX_DEPTH}")
        huge = False
        for index, value in enumerate(obj):
            try:
                huge = _check(value, depth + 1) or huge
            except _Fault as fault:
                fault.segments.append(f"[{index}]")
                raise
        return huge
    if obj is None or isinstance(obj, bool):
        return False
    if isinstance(obj, int):
        return not -_INT_LIMIT < obj < _INT_LIMIT
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise _Fault(f"cannot serialize non-finite float {float.__repr__(obj)}")
        return False
    raise _Fault(f"cannot serialize {type(obj).__name__}")


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


def _write(obj: Any, out: list[str]) -> None:
    """Reference writer, used only for documents holding huge ints (already validated)."""
    if isinstance(obj, str):
        out.append(_encode_str(obj))
    elif isinstance(obj, dict):
        out.append("{")
        for index, (key, value) in enumerate(obj.items()):
            out.append("," + _encode_str(key) + ":" if index else _encode_str(key) + ":")
            _write(value, out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for index, value in enumerate(obj):
            if index:
                out.append(",")
            _write(value, out)
        out.append("]")
    elif obj is None:
        out.append("null")
    elif isinstance(obj, bool):
        out.append("true" if obj else "false")
    elif isinstance(obj, int):
        out.append(_int_text(obj))
    else:
        out.append(float.__repr__(obj))


def dumps(obj: object) -> bytes:
    """Serialize ``obj`` to compact UTF-8 JSON; see ``_native.pyi`` for the exact rules."""
    try:
        huge = _check(obj, 1)
    except _Fault as fault:
        raise fault.error() from None
    if huge:
        out: list[str] = []
        _write(obj, out)
        return _utf8("".join(out))
    return _utf8(_compact.encode(obj))


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


def _check_depth(value: Any) -> None:
    """Enforce the depth limit."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise ValueError(f"nesting deeper than {MAX_DEPTH}")
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise ValueError(f"nesting deeper than {MAX_DEPTH}")
            stack.extend((child, depth + 1) for child in item)


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
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int
        )
    except json.JSONDecodeError as error:  # a plain ValueError, as the native twin raises
        raise ValueError(str(error)) from None
    except RecursionError:
        raise ValueError(f"nesting deeper than {MAX_DEPTH}") from None
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _check_depth(value)
    return value


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
            items = loads("[" + text + "]")  # the line as a list's item, for the nesting limit
        except ValueError as error:
            raise ValueError(f"line {number}: {error}") from None
        assert isinstance(items, list)
        if len(items) != 1:
            raise ValueError(f"line {number}: expected one JSON value, found {len(items)}")
        values.append(items[0])
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
