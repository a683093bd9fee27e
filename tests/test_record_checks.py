"""The journal's record checks in each backend (``record_checksum``, ``commit_checksum``,
``verify_records``): the compiled twin agrees with the pure one, its reference, on journals the
store wrote, on every cut and every damaged byte of one, on arbitrary bytes, and on bad
arguments. What a load makes of the outcome is in ``test_journal_checksums``."""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulacra_session import FileSessionStore
from simulacra_session import _pure as reference
from simulacra_session.stores.file.records import SEAL_EVERY
from simulacra_session.testing import msg
from test_journal_checksums import committed_journal


def header_end(data: bytes) -> int:
    """Where a journal's header line ends (after its newline)."""
    return data.find(b"\n") + 1


def seed_of(hotpath: ModuleType, data: bytes) -> int:
    """The checksum of a journal's header, which its first record chains on."""
    seed = hotpath.record_checksum(data[: header_end(data) - 1])
    assert seed is not None
    return int(seed)


def agree(hotpath: ModuleType, data: bytes, first: int, seed: int) -> tuple[int, int]:
    """``verify_records`` of ``hotpath`` and of the reference, which must agree."""
    found = hotpath.verify_records(data, first, seed)
    assert found == reference.verify_records(data, first, seed), (len(data), first, seed)
    return tuple(found)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small journal of a save and appends: several commit records."""
    data, _ = asyncio.run(committed_journal(tmp_path_factory.mktemp("journal")))
    return data


def test_a_whole_journal_verifies_to_its_last_record(hotpath: ModuleType, journal: bytes) -> None:
    start, end = agree(hotpath, journal, header_end(journal), seed_of(hotpath, journal))
    assert end == len(journal)
    assert journal[start:].startswith(b'["metadata",{')


def test_a_long_batch_verifies_through_its_seal_records(hotpath: ModuleType, tmp_path: Path) -> None:
    """A save of more than ``SEAL_EVERY`` bytes of messages: seal records chain, and only the
    commit record after them is a state."""
    messages = [msg("é" * 1000 + str(n)) for n in range(3 * SEAL_EVERY // 1000)]
    asyncio.run(FileSessionStore(tmp_path, fsync=False).save("s", messages))
    data = (tmp_path / "s.jsonl").read_bytes()
    assert data.count(b'\n["metadata",null,') >= 2
    start, end = agree(hotpath, data, header_end(data), seed_of(hotpath, data))
    assert (start, end) == (data.rfind(b"\n", 0, len(data) - 1) + 1, len(data))


def test_every_cut_and_every_damaged_byte_is_judged_alike(hotpath: ModuleType, journal: bytes) -> None:
    first, seed = header_end(journal), seed_of(hotpath, journal)
    states = set()
    for cut in range(first, len(journal) + 1):
        states.add(agree(hotpath, journal[:cut], first, seed))
    assert len(states) > 3  # the header and each commit record in turn
    for offset in range(len(journal)):
        for flip in (0x01, 0x20, 0x80):
            damaged = bytearray(journal)
            damaged[offset] ^= flip
            start, end = agree(hotpath, bytes(damaged), first, seed)
            assert end <= offset or journal[start:end] == damaged[start:end]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # a module, no state
@given(data=st.binary(max_size=300), first=st.integers(0, 320), seed=st.integers(0, 2**32 - 1))
def test_arbitrary_bytes_are_judged_alike(hotpath: ModuleType, data: bytes, first: int, seed: int) -> None:
    agree(hotpath, b'["metadata",' + data, first, seed)
    agree(hotpath, data, first, seed)
    for line in (data, data.split(b"\n")[0]):
        assert hotpath.record_checksum(line) == reference.record_checksum(line)
        assert hotpath.commit_checksum(line, data, seed) == reference.commit_checksum(line, data, seed)


def test_a_record_line_verifies_only_as_written(hotpath: ModuleType) -> None:
    body = b'["metadata",{"a":1},"%08x",' % zlib.crc32(b"lines\n", 5)
    line = body + b'"%08x"]' % zlib.crc32(body)
    assert hotpath.record_checksum(line) == zlib.crc32(body)
    assert hotpath.commit_checksum(line, b"lines\n", 5) == zlib.crc32(body)
    assert hotpath.commit_checksum(line, b"lines\n", 6) is None
    assert hotpath.record_checksum(line.upper()) is None  # the digits are lowercase
    assert hotpath.record_checksum(line[:-1]) is None
    assert hotpath.record_checksum(b'"00000000"]') is None


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda h: h.verify_records(b"x", -1, 0), OverflowError),
        (lambda h: h.verify_records(b"x", 0, 2**32), OverflowError),
        (lambda h: h.verify_records(b"x", 0, -1), OverflowError),
        (lambda h: h.verify_records(bytearray(b"x"), 0, 0), TypeError),
        (lambda h: h.commit_checksum(b"x", memoryview(b"x"), 0), TypeError),
        (lambda h: h.commit_checksum(b"x", b"x", 2**32), OverflowError),
        (lambda h: h.record_checksum("x"), TypeError),
    ],
)
def test_bad_arguments_raise_alike(hotpath: ModuleType, call: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        call(hotpath)  # type: ignore[operator]
