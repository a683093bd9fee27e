"""dumps/loads of the corpus: native vs pure twin vs orjson vs stdlib json."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from simulacra_session import _native, _pure

from corpus import LENGTHS, document


def _stdlib_dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


DUMPS: dict[str, Callable[[Any], bytes]] = {
    "native": _native.dumps,
    "pure": _pure.dumps,
    "orjson": orjson.dumps,
    "json": _stdlib_dumps,
}
LOADS: dict[str, Callable[[bytes], Any]] = {
    "native": _native.loads,
    "pure": _pure.loads,
    "orjson": orjson.loads,
    "json": json.loads,
}


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("impl", list(DUMPS))
def test_dumps(benchmark: Any, impl: str, length: int) -> None:
    doc = document(length)
    benchmark.group = f"dumps {length} messages"
    out = benchmark(DUMPS[impl], doc)
    benchmark.extra_info["bytes"] = len(out)
    assert orjson.loads(out) == doc


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("impl", list(LOADS))
def test_loads(benchmark: Any, impl: str, length: int) -> None:
    doc = document(length)
    data = _native.dumps(doc)
    benchmark.group = f"loads {length} messages"
    assert benchmark(LOADS[impl], data) == doc
