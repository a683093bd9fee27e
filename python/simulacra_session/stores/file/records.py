"""Checksums of journal records (format version 2): sealing a record, checking one, and how
far a journal's records verify.

The checks are the backend's (``checksum`` is ``record_checksum``, ``verified`` is
``verify_records``, and ``commit_checksum``; see ``_native.pyi``), so a load checks a
journal's records at the compiled twin's speed; the sealing a write does is here.

Every record line ends with the CRC-32 of its bytes before it, as 8 hex digits
(``...,"cccccccc"]``). A commit record carries before that the CRC-32 of the message lines it
commits (the bytes from the end of the record before it to its own start), seeded with
that record's checksum: ``["metadata",{...},"bbbbbbbb","cccccccc"]``. So a commit record
vouches for itself alone (``list()`` checks the one it reads from a journal's end), and
through the chain of seeds for every byte before it (``load`` checks them all, in order).

A seal record, ``["metadata",null,"bbbbbbbb","cccccccc"]``, checksums and chains the lines before
it like a commit record but commits nothing: a write puts one after each ``SEAL_EVERY`` bytes
of message lines, so a tail read (``tail``) checks the lines it returns against the chain
without reading the rest of a long batch.

CRC-32 (zlib's, the IEEE polynomial) rather than CRC-32C: it is in the standard library, so
both backends compute it alike with no dependency, at gigabytes per second over bytes the
event loop has already built; and it detects what matters as CRC-32C does: every error
within 32 consecutive bits (so any one damaged byte, or up to four in a row) and every odd
number of flipped bits. Other damage goes unnoticed with probability 2^-32.
"""

from __future__ import annotations

import zlib

from ..._backend import commit_checksum
from ..._backend import record_checksum as checksum
from ..._backend import verify_records as verified

__all__ = [
    "COMMIT_PREFIX",
    "MESSAGE_PREFIX",
    "SEAL_EVERY",
    "SEAL_PREFIX",
    "batch_seal",
    "checksum",
    "commit_checksum",
    "seal",
    "sealed",
    "verified",
]

COMMIT_PREFIX = b'["metadata",'
SEAL_PREFIX = COMMIT_PREFIX + b"null,"
#: How a message line that is not a JSON object starts: ``["message",value]``.
MESSAGE_PREFIX = b'["message",'
#: The bytes of message lines a write puts between two records at most (a longer line aside).
SEAL_EVERY = 64 * 1024
_SEALED = 11  # the bytes of a record's line after what its checksum covers: "cccccccc"]


def seal(prefix: bytes) -> bytes:
    """The line (newline included) of the record ``prefix`` holds, up to its checksum."""
    return b'%b"%08x"]\n' % (prefix, zlib.crc32(prefix))


def batch_seal(batch: bytes | memoryview, seed: int) -> bytes:
    """The checksum of the message lines ``batch`` as a commit record holds it, after a record
    whose checksum is ``seed``."""
    return b"%08x" % zlib.crc32(batch, seed)


def sealed(batch: bytes, seed: int) -> tuple[bytes, int, int]:
    """The message lines ``batch``, after a record whose checksum is ``seed``, with a seal record
    after the line that crosses each ``SEAL_EVERY`` bytes (never after the last line): the
    bytes, where the lines the next record commits start in them, and the seed it chains on."""
    if len(batch) <= SEAL_EVERY:
        return batch, 0, seed
    view = memoryview(batch)
    parts: list[bytes | memoryview] = []
    position = 0
    while len(batch) - position > SEAL_EVERY:
        cut = batch.find(b"\n", position + SEAL_EVERY - 1) + 1
        if cut in (0, len(batch)):
            break
        record = seal(SEAL_PREFIX + b'"%b",' % batch_seal(view[position:cut], seed))
        parts += [view[position:cut], record]
        seed, position = zlib.crc32(record[: -_SEALED - 1]), cut
    written = b"".join(parts)
    return written + batch[position:], len(written), seed
