"""A journal's torn tail: the bytes after its committed state are either the beginning of one
append that a crash cut short (cut off as they are: they were never committed, nor
acknowledged) or damage (a copy of the file is kept before a write cuts them off or
replaces the file).

An append is one ``pwrite`` at the end of the committed state (``journal.encode_append``):
its message lines, a seal record after each 64 KiB of them, and one commit record (a
truncation, or an append of metadata alone, is that record alone). A ``SIGKILL`` can stop
the write part way (the kernel stops copying pages once a fatal signal is pending), and so
can a full disk: what it leaves is a prefix of those bytes. A power cut can also leave the
file's new size on disk without all of its data, which reads as zeros to the end of the file:
zeros there hold no bytes of anything, so the rule looks at what comes before them. So the
tail is an append cut short exactly when it is, in order (zeros to the end of the file
aside):

- complete message lines as the format writes them: compact JSON (no whitespace outside
  strings), each an object or ``["message",value]``;
- among them, seal records that verify and chain on the committed state (a commit record
  ends an append, so a complete one there is damage, as is a record that does not verify);
- then at most one line without its newline: the beginning of such a line or of a record.

Message lines carry no checksum of their own (the record after them does), so only their
form is checked: damage that leaves a line of the tail well-formed, where no record covers
it, is taken for an append cut short. Anything else (zeros with other bytes after them, a
byte breaking a line's form, bytes after a complete value, a record that does not verify)
is damage. Version 1 journals have no checksums to chain on: their torn tails are always
kept.
"""

from __future__ import annotations

import re

from .files import keep_copy
from .records import COMMIT_PREFIX, MESSAGE_PREFIX, SEAL_PREFIX, checksum, commit_checksum

__all__ = ["cut_short", "keep_damage"]

_PLAIN = r'[^"\\\x00-\x1f]*'  # characters a string holds as they are
_STRING = rf'"{_PLAIN}(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{{4}}){_PLAIN})*'  # no closing quote
_TOKEN = re.compile(
    rf'(?P<string>{_STRING}")|(?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)'
    r"|(?P<word>true|false|null)|(?P<mark>[\[\]{}:,])"
)
#: The beginning of a scalar, to the end of a line cut short.
_CUT = re.compile(
    rf"{_STRING}(?:\\(?:u[0-9a-fA-F]{{0,3}})?)?"
    r"|-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*|(?:\.[0-9]+)?[eE][+-]?[0-9]*)?)?"
    r"|t(?:r(?:ue?)?)?|f(?:a(?:l(?:se?)?)?)?|n(?:u(?:ll?)?)?"
)
# What the scanner expects next.
_VALUE, _ITEM, _KEY, _MEMBER, _COLON, _NEXT, _END = range(7)  # _ITEM, _MEMBER: or the closing mark


def cut_short(data: bytes, end: int) -> bool:
    """Whether the bytes of the journal ``data`` from ``end``, where its committed state ends,
    are the beginning of one append cut short (see the module's rule)."""
    seed = checksum(data[data.rfind(b"\n", 0, end - 1) + 1 : end - 1]) if end > 0 else None
    if seed is None:  # version 1: no chain to check the tail against
        return False
    if data.endswith(b"\0"):  # unwritten space a power cut left: no bytes of anything
        data = data[: max(end, len(data.rstrip(b"\0")))]
    position = batch = end  # the line looked at; where the lines the next record covers start
    while (newline := data.find(b"\n", position)) >= 0:
        line = data[position:newline]
        if line.startswith(SEAL_PREFIX):
            sealed = commit_checksum(line, data[batch:position], seed)
            if sealed is None:
                return False
            seed, batch = sealed, newline + 1
        elif not _message_line(line):
            return False  # a commit record among them too: it would have ended the append
        position = newline + 1
    return _line_begun(data[position:])


def keep_damage(path: str, data: bytes, end: int | None, file_mode: int, fsync: bool) -> str | None:
    """Before a write cuts off or replaces what follows the committed state of the journal
    ``path`` (read as ``data``; the state ends at ``end``, ``None`` when unknown): a copy of
    the file kept aside (``files.keep_copy``), unless that is only an append cut short
    (``cut_short``); the copy's path."""
    if end is not None and cut_short(data, end):
        return None
    return keep_copy(path, data, file_mode, fsync)


def _message_line(line: bytes) -> bool:
    """Whether ``line`` is a complete message line as the format writes it."""
    if line.startswith(MESSAGE_PREFIX):
        return _compact_json(line, whole=True) == 1  # ["message",value]: two items
    return line.startswith(b"{") and _compact_json(line, whole=True) is not None


def _line_begun(line: bytes) -> bool:
    """Whether ``line`` (no newline) is the beginning of a message line or a record, or empty."""
    if not line:
        return True
    if line.startswith(b"{"):
        return _compact_json(line, whole=False) is not None
    for prefix, items in ((MESSAGE_PREFIX, 2), (COMMIT_PREFIX, 4)):  # a record: kind, metadata, 2 checksums
        if prefix.startswith(line[: len(prefix)]):
            commas = _compact_json(line, whole=False)
            return commas is not None and commas < items
    return False


def _compact_json(line: bytes, whole: bool) -> int | None:
    """How many commas separate the items of ``line``'s outer value when ``line`` is compact
    JSON (no whitespace outside strings, UTF-8): one whole value (``whole``), else the
    beginning of one (cut anywhere, within a character too). ``None`` when it is not."""
    try:
        text = line.decode()
    except UnicodeDecodeError as error:  # a character cut at the end only, when not whole
        if whole or error.end != len(line) or error.reason != "unexpected end of data":
            return None
        text = line[: error.start].decode()
    stack: list[int] = []  # the marks of the arrays and objects open
    want, position, commas = _VALUE, 0, 0
    number: tuple[int, int] | None = None  # where the last token began and what was wanted, a number
    while position < len(text):
        token = _TOKEN.match(text, position)
        after = _step(stack, want, token) if token is not None else None
        if after is None:
            cut = (number is not None and _cut(text, *number)) or _cut(text, position, want)
            return commas if cut and not whole else None
        assert token is not None
        commas += token.group() == "," and len(stack) == 1
        number = (position, want) if token.lastgroup == "number" else None
        want, position = after, token.end()
    return commas if want == _END or not whole else None


def _step(stack: list[int], want: int, token: re.Match[str]) -> int | None:
    """What is expected after ``token`` where ``want`` was (``stack`` follows it); ``None``
    when the token does not fit there."""
    mark = token.group() if token.lastgroup == "mark" else ""
    if want == _COLON:
        return _VALUE if mark == ":" else None
    if want in (_KEY, _MEMBER):
        if token.lastgroup == "string":
            return _COLON
        return _closed(stack, "{") if want == _MEMBER and mark == "}" else None
    if want == _NEXT:
        if mark == ",":
            return _VALUE if stack[-1] == ord("[") else _KEY
        return _closed(stack, "[" if mark == "]" else "{") if mark in ("]", "}") else None
    if want == _END:
        return None
    if not mark:  # a scalar where a value goes
        return _NEXT if stack else _END
    if mark in ("[", "{"):
        stack.append(ord(mark))
        return _ITEM if mark == "[" else _MEMBER
    return _closed(stack, "[") if want == _ITEM and mark == "]" else None


def _closed(stack: list[int], opener: str) -> int | None:
    """Close the innermost array or object when ``opener`` opened it; what follows it."""
    if stack[-1] != ord(opener):
        return None
    stack.pop()
    return _NEXT if stack else _END


def _cut(text: str, position: int, want: int) -> bool:
    """Whether ``text`` from ``position`` is the beginning of a scalar where ``want`` was
    expected (a key is a string)."""
    if want in (_KEY, _MEMBER):
        return text.startswith('"', position) and _CUT.fullmatch(text, position) is not None
    return want in (_VALUE, _ITEM) and _CUT.fullmatch(text, position) is not None
