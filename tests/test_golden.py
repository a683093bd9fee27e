"""The golden fixtures of ``tests/fixtures/``, shared with ``cargo test``, on both backends:
``dumps/NAME.in.json`` is written as ``dumps/NAME.out.json`` byte for byte, each case
of ``slug.json`` derives its expected label, and the journal of ``records.json`` verifies as
far as it says, whole, cut short and damaged."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from simulacra_session import SerializationError

FIXTURES = Path(__file__).parent / "fixtures"
DUMPS = sorted(FIXTURES.glob("dumps/*.in.json"))
SLUGS: list[dict[str, Any]] = json.loads((FIXTURES / "slug.json").read_text(encoding="utf-8"))
RECORDS: dict[str, Any] = json.loads((FIXTURES / "records.json").read_text(encoding="utf-8"))


def test_the_fixtures_are_there() -> None:
    assert len(DUMPS) >= 3
    assert len(SLUGS) >= 10
    assert len(RECORDS["cuts"]) >= 4


@pytest.mark.parametrize("source", DUMPS, ids=[path.name.removesuffix(".in.json") for path in DUMPS])
def test_dumps_golden(hotpath: ModuleType, source: Path) -> None:
    data = source.read_bytes()
    expected = source.with_name(source.name.replace(".in.json", ".out.json")).read_bytes()
    assert hotpath.dumps(hotpath.loads(data)) == expected
    assert hotpath.dumps(json.loads(data)) == expected  # the value the standard library reads
    assert hotpath.loads(expected) == json.loads(data)


@pytest.mark.parametrize("case", SLUGS, ids=[f"slug{index}" for index in range(len(SLUGS))])
def test_derive_slug_golden(hotpath: ModuleType, case: dict[str, Any]) -> None:
    assert hotpath.derive_slug(case["text"], case["limit"]) == case["expected"]


def test_derive_slug_errors(hotpath: ModuleType) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1, got 0"):
        hotpath.derive_slug("x", 0)
    with pytest.raises(SerializationError, match="lone surrogate"):
        hotpath.derive_slug("a\ud800")
    assert hotpath.derive_slug("x" * 80) == "x" * 50


def test_verify_records_golden(hotpath: ModuleType) -> None:
    data, first, seed = RECORDS["journal"].encode(), RECORDS["first"], RECORDS["seed"]
    assert hotpath.record_checksum(data[: first - 1]) == seed
    assert list(hotpath.verify_records(data, first, seed)) == RECORDS["verified"]
    cuts = RECORDS["cuts"]
    for (cut, *expected), following in zip(cuts, [*cuts[1:], [len(data) + 1]], strict=True):
        for length in range(cut, following[0]):
            assert list(hotpath.verify_records(data[:length], first, seed)) == expected, length
    for offset, flip, *expected in RECORDS["damaged"]:
        damaged = bytearray(data)
        damaged[offset] ^= flip
        assert list(hotpath.verify_records(bytes(damaged), first, seed)) == expected, (offset, flip)
