"""The checksum rule, for a store that keeps a session's bytes in a file: damage is never read
as data. With any one byte of the file damaged, ``load`` returns a state the session was
once committed in, or raises ``CorruptSessionError``.

The kit cannot know where a store keeps its bytes: a test class whose store keeps them in
files overrides the ``session_file`` fixture; the test is skipped otherwise (a database, a
store in memory, a format without checksums). The failure names the contract and the byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..errors import CorruptSessionError
from ..protocols import AppendableSessionStore, SessionStore
from .helpers import StoreFixture, msg, run

__all__ = ["StoreChecksumContract"]

CHECKSUM = (
    "A store keeping bytes never loads damaged ones as data: a state once committed, or CorruptSessionError"
)

SessionFile = Callable[[str], Path]


def _state(stored: Any) -> str:
    return json.dumps([stored.messages, stored.metadata.to_json_dict()], sort_keys=True)


class StoreChecksumContract(StoreFixture):
    """Every byte of a session's file damaged in turn, when the store keeps one."""

    @pytest.fixture
    def session_file(self, store: SessionStore) -> SessionFile | None:
        """Override: a function giving the path of the file holding session ``id``'s bytes
        (``None``, the default, skips the test)."""
        return None

    def test_damaged_bytes_never_load_as_data(
        self, store: SessionStore, session_file: SessionFile | None
    ) -> None:
        if session_file is None:
            pytest.skip("not applicable: the store keeps no bytes in a file (override session_file)")
        writes: list[Callable[[], Any]] = [
            lambda: store.save("c", [msg("one " + "." * 100)], {"label": "a"}),
            lambda: store.save("c", [msg("one " + "." * 100), msg("two " + "." * 100)], {"label": "b"}),
        ]
        if isinstance(store, AppendableSessionStore):
            appending = store
            writes.append(lambda: appending.append("c", [msg("three " + "." * 100)], {"label": "c"}))
            writes.append(lambda: appending.append("c", [], {"label": "d"}))

        async def check() -> None:
            committed = set()
            for write in writes:
                await write()
                stored = await store.load("c")
                committed.add(_state(stored))
            path = session_file("c")
            data = path.read_bytes()
            try:
                for offset in range(len(data)):
                    for damage in {data[offset] ^ 0x01, 0x0A} - {data[offset]}:
                        path.write_bytes(data[:offset] + bytes([damage]) + data[offset + 1 :])
                        try:
                            stored = await store.load("c")
                        except CorruptSessionError:
                            continue
                        except Exception as error:
                            raise AssertionError(
                                f"{CHECKSUM}: byte {offset} set to {damage} raises {type(error).__name__}, "
                                f"not CorruptSessionError: {error}"
                            ) from error
                        assert stored is not None, (
                            f"{CHECKSUM}: byte {offset} set to {damage}: the session is gone"
                        )
                        assert _state(stored) in committed, (
                            f"{CHECKSUM}: byte {offset} set to {damage} loads a state never committed"
                        )
            finally:
                path.write_bytes(data)

        run(check())
