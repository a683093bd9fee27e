"""transfer when something fails: an output that takes part of a write (a pipe whose reader
left), an export leaving out the sessions it cannot read, a copy naming the store that failed."""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
from pathlib import Path

import pytest

from session_samples import message, populate
from simulacra_session import CorruptSessionError, FileSessionStore, InMemorySessionStore, StoreError
from simulacra_session.transfer import (
    CopyStoreError,
    copy_sessions,
    export_sessions,
    import_sessions,
    write_all,
)


class _Short(io.BytesIO):
    """A pipe whose reader leaves: it takes ``room`` bytes, then raises ``BrokenPipeError``."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if not self.room:
            raise BrokenPipeError(32, "Broken pipe")
        taken = bytes(data[: self.room])
        self.room -= len(taken)
        return super().write(taken)


def test_write_all_goes_on_after_a_short_write_until_the_error() -> None:
    """``BufferedWriter.write`` returns a short count when the reader leaves mid-write: the
    rest is written again, which raises, instead of being dropped."""
    out = _Short(5)
    with pytest.raises(BrokenPipeError):
        write_all(out, b"0123456789")
    assert out.getvalue() == b"01234"
    roomy = _Short(100)
    write_all(roomy, b"0123456789")
    assert roomy.getvalue() == b"0123456789"


async def test_an_export_into_a_pipe_cut_short_raises(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path / "s")
    await populate(store)
    with pytest.raises(BrokenPipeError):
        await export_sessions(store, _Short(300))


async def test_an_export_with_on_unreadable_leaves_out_what_it_cannot_read(tmp_path: Path) -> None:
    """The sessions it cannot read are passed to ``on_unreadable``; the header counts the rest,
    so the export imports whole. Without it, the first raises, as before."""
    store = FileSessionStore(tmp_path / "s")
    await store.save("ok", [message("user", "fine")])
    await store.save("torn", [message("user", "a"), message("user", "b")])
    journal = tmp_path / "s" / "torn.jsonl"  # a message damaged: listed (its commit record
    journal.write_bytes(journal.read_bytes().replace(b'"text":"a"', b'"text":"c"'))  # verifies), not loadable
    with pytest.raises(CorruptSessionError):
        await export_sessions(store, io.BytesIO())
    left_out: list[str] = []
    out = io.BytesIO()
    assert await export_sessions(store, out, on_unreadable=lambda sid, _: left_out.append(sid)) == 1
    assert left_out == ["torn"]
    out.seek(0)
    target = InMemorySessionStore()
    assert (await import_sessions(target, out)).written == 1
    assert [meta.id for meta in await target.list()] == ["ok"]


async def test_a_copy_with_on_unreadable_leaves_out_what_it_cannot_read(tmp_path: Path) -> None:
    """As an export does: the sessions it cannot read are passed to ``on_unreadable`` and the
    rest copied; without it, the first raises."""
    store = FileSessionStore(tmp_path / "s")
    await store.save("ok", [message("user", "fine")])
    await store.save("torn", [message("user", "a"), message("user", "b")])
    journal = tmp_path / "s" / "torn.jsonl"  # listed, not loadable
    journal.write_bytes(journal.read_bytes().replace(b'"text":"a"', b'"text":"c"'))
    with pytest.raises(CorruptSessionError):
        await copy_sessions(store, InMemorySessionStore())
    left_out: list[str] = []
    target = InMemorySessionStore()
    result = await copy_sessions(store, target, on_unreadable=lambda sid, _: left_out.append(sid))
    assert (result.written, left_out) == (1, ["torn"])
    assert [meta.id for meta in await target.list()] == ["ok"]


class _Failing(InMemorySessionStore):
    """A store whose backend fails every listing."""

    async def list(self, *, limit: int | None = None, offset: int = 0) -> list:  # type: ignore[override,type-arg]
        raise StoreError("list of sessions in table 't' failed: OperationalError: gone")


@pytest.mark.parametrize("side", ["source", "target"])
async def test_a_copy_names_the_store_that_failed(side: str) -> None:
    healthy = InMemorySessionStore()
    await populate(healthy)
    failing = _Failing()
    source, target = (failing, healthy) if side == "source" else (healthy, failing)
    with pytest.raises(CopyStoreError) as raised:
        await copy_sessions(source, target)
    assert raised.value.side == side
    assert raised.value.reason == "list of sessions in table 't' failed: OperationalError: gone"
    assert str(raised.value).startswith(f"copy {side} {failing!r}: list of sessions")
    assert isinstance(raised.value, StoreError)


@pytest.mark.parametrize("on_conflict", ["error", "skip", "replace"])
async def test_a_session_twice_in_an_export_is_named_whatever_on_conflict(on_conflict: str) -> None:
    """An export holding a session twice (two exports pasted together, a hand edit) is damaged
    with every ``on_conflict``: "replace" wrote the second over the first and counted it
    replaced, "skip" counted it "already there"; the second is never written."""
    header = b'{"format":"simulacra-session-export","version":1,"sessions":3}\n'
    stamps = {"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "message_count": 1}
    lines = [
        {"id": "a", "metadata": stamps, "messages": [message("user", "first")]},
        {"id": "b", "metadata": stamps, "messages": [message("user", "other")]},
        {"id": "a", "metadata": stamps, "messages": [message("user", "second")]},
    ]
    export = header + b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    target = InMemorySessionStore()
    with pytest.raises(CorruptSessionError, match="<stream>: session a is in it twice"):
        await import_sessions(target, io.BytesIO(export), on_conflict=on_conflict)  # type: ignore[arg-type]
    stored = await target.load("a")
    if on_conflict == "error":
        assert (stored, await target.list()) == (None, [])
    else:
        assert stored is not None
        assert stored.messages == [message("user", "first")]


class _FailingRead(io.RawIOBase):
    """A stream (a pipe, a tape) that serves ``data``, then fails to read: ``EIO``."""

    name = "<pipe>"

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.left = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self.left:
            raise OSError(errno.EIO, "Input/output error")
        taken, self.left = self.left[: len(buffer)], self.left[len(buffer) :]
        buffer[: len(taken)] = taken
        return len(taken)


_HEADER = b'{"format":"simulacra-session-export","version":1,"sessions":2}\n'


@pytest.mark.parametrize("on_conflict", ["error", "skip"])  # read twice (spooled first), once
@pytest.mark.parametrize("data", [b"", _HEADER], ids=["at its header", "after it"])
async def test_an_export_that_fails_to_read_is_named_not_the_store(on_conflict: str, data: bytes) -> None:
    """A read error names the export read (its path, a stream's name): one naming no file was
    taken for the store's (the command named the store as failing with "Input/output error")."""
    target = InMemorySessionStore()
    source = io.BufferedReader(_FailingRead(data))
    with pytest.raises(OSError, match="Input/output error") as raised:
        await import_sessions(target, source, on_conflict=on_conflict)  # type: ignore[arg-type]
    assert (raised.value.errno, raised.value.filename) == (errno.EIO, "<pipe>")
    assert await target.list() == []


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="Linux: /proc/self/mem fails to read")
async def test_an_export_file_that_fails_to_read_is_named() -> None:
    with pytest.raises(OSError, match="Input/output error") as raised:
        await import_sessions(InMemorySessionStore(), "/proc/self/mem")
    assert raised.value.filename == "/proc/self/mem"


async def test_an_error_of_a_stream_not_the_systems_passes_as_it_is() -> None:
    """An ``OSError`` with no errno (gzip's ``BadGzipFile``) is the stream's own words: not
    rebuilt as ``[Errno None] ...: '<stream>'``."""
    source = gzip.GzipFile(fileobj=io.BytesIO(b"not gzipped at all"))
    with pytest.raises(gzip.BadGzipFile) as raised:
        await import_sessions(InMemorySessionStore(), source)  # type: ignore[arg-type]
    assert str(raised.value) == "Not a gzipped file (b'no')"
