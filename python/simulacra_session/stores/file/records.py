"""Checksums of journal records (format version 2): sealing a record, checking one, and how
far a journal's records verify.

Every record line ends with the CRC-32 of its bytes before it, as 8 hex digits
(``...,"cccccccc"]``). A commit record carries before that the CRC-32 of the message lines it
commits (the bytes from the end of the record before it to its own start), seeded with
that record's checksum: ``["metadata",{...},"bbbbbbbb","cccccccc"]``. So a commit record
vouches for itself alone (``list()`` checks the one it reads from a journal's end), and
through the chain of seeds for every byte before it (``load`` checks them all, in order).

CRC-32 (zlib's, the IEEE polynomial) rather than CRC-32C: it is in the standard library, so
both backends compute it alike with no dependency, at gigabytes per second over bytes the
event loop has already built; and it detects what matters as CRC-32C does: every error
within 32 consecutive bits (so any one damaged byte, or up to four in a row) and every odd
number of flipped bits. Other damage goes unnoticed with probability 2^-32.
"""

from __future__ import annotations

import zlib

__all__ = ["COMMIT_PREFIX", "batch_seal", "checksum", "seal", "verified"]

COMMIT_PREFIX = b'["metadata",'
_SEALED = 11  # the bytes of a record's line after what its checksum covers: "cccccccc"]
_QUOTE = 0x22


def seal(prefix: bytes) -> bytes:
    """The line (newline included) of the record ``prefix`` holds, up to its checksum."""
    return b'%b"%08x"]\n' % (prefix, zlib.crc32(prefix))


def batch_seal(batch: bytes | memoryview, seed: int) -> bytes:
    """The checksum of the message lines ``batch`` as a commit record holds it, after a record
    whose checksum is ``seed``."""
    return b"%08x" % zlib.crc32(batch, seed)


def checksum(line: bytes) -> int | None:
    """The checksum of the record ``line`` (without its newline) when the line verifies, else ``None``."""
    if len(line) <= _SEALED or line[-2:] != b'"]' or line[-_SEALED] != _QUOTE:
        return None
    sealed = line[-10:-2]
    if b"%08x" % zlib.crc32(line[:-_SEALED]) != sealed:
        return None
    return int(sealed, 16)


def _commit_checksum(line: bytes, batch: memoryview, seed: int) -> int | None:
    """The checksum of commit record ``line`` when it and the message lines ``batch`` it
    commits verify, else ``None``."""
    found = checksum(line)
    if found is None or line[-21:-13] != batch_seal(batch, seed) or line[-22:-21] != b'"':
        return None
    return found


def verified(data: bytes, first: int, seed: int) -> tuple[int, int]:
    """The start and end of the last record of ``data`` that verifies, with every record and
    message line before it: ``(0, first)`` when that is the header (which ends at ``first``
    with checksum ``seed``). Records are looked at in order from the header; the first that
    does not verify (a commit record, or the lines before it, damaged; or a line where one
    was expected that is no commit record) ends the search, whatever follows."""
    view = memoryview(data)
    last = (0, first)
    position = first
    while True:
        found = data.find(b"\n" + COMMIT_PREFIX, position - 1)
        if found < 0:
            return last
        start = found + 1
        end = data.find(b"\n", start) + 1
        if end == 0:
            return last
        checked = _commit_checksum(data[start : end - 1], view[position:start], seed)
        if checked is None:
            return last
        seed, last, position = checked, (start, end), end
