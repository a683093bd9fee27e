"""Mutation testing of the conformance kit: each store below makes one small, plausible mistake
a third-party store author makes, breaking a documented contract, and the kit must fail it
with a message naming that contract. The stores wrap ``InMemorySessionStore`` through
``ProtocolOnlyStore`` (``test_conformance_kit``), adding a capability where the mistake
lives in one."""

from __future__ import annotations

import builtins
import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from simulacra_session import JsonObject, Revision, SessionMetadata, StoredSession
from simulacra_session.errors import ConflictError, SessionNotFoundError
from simulacra_session.models import RESERVED_METADATA_KEYS
from simulacra_session.stores._codec import page
from simulacra_session.testing.store_capabilities import APPEND, FORKS
from simulacra_session.testing.store_reads import DELETE, ISOLATION, LISTED, NEGATIVE, ORDER, PAGES
from simulacra_session.testing.store_revisions import STALE
from simulacra_session.testing.store_saves import MERGE, UNKNOWN, VERBATIM
from simulacra_session.testing.store_tails import CUT, TAIL
from test_conformance_kit import ProtocolOnlyStore, _fails_naming_the_contract

pytest_plugins = ["pytester"]


def _recoded(messages: Sequence[JsonObject], dumps: Any = json.dumps, **loads: Any) -> list[JsonObject]:
    """``messages`` through a JSON codec of the mutant's own."""
    return list(json.loads(dumps(list(messages)), **loads))


# -- list ------------------------------------------------------------------------------------


class OldestFirstStore(ProtocolOnlyStore):
    """Lists the least recently updated session first (``ORDER BY updated_at`` without ``DESC``)."""

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        return page((await super().list())[::-1], limit, offset)


class CreatedOrderStore(ProtocolOnlyStore):
    """Orders ``list`` by ``created_at``, not ``updated_at``."""

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        whole = sorted(await super().list(), key=lambda meta: (meta.created_at, meta.id), reverse=True)
        return page(whole, limit, offset)


class ZeroLimitIsAllStore(ProtocolOnlyStore):
    """Treats ``limit=0`` as no limit (``limit or None``)."""

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        return await super().list(limit=limit or None, offset=offset)


class InclusiveLimitStore(ProtocolOnlyStore):
    """Returns one session more than ``limit`` (an inclusive end: ``[offset : offset + limit + 1]``)."""

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        return await super().list(limit=None if limit is None else limit + 1, offset=offset)


class SlicingStore(ProtocolOnlyStore):
    """Pages with a Python slice and no checks: a negative ``limit`` slices from the end."""

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        whole = await super().list()
        return whole[offset : None if limit is None else offset + limit]


class PageThenSortStore(ProtocolOnlyStore):
    """Takes the page in the order the sessions were stored, then sorts the page (a subquery's
    ``LIMIT`` before the outer ``ORDER BY``)."""

    def __init__(self) -> None:
        super().__init__()
        self._created: dict[str, int] = {}

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        stored = sorted(await super().list(), key=lambda meta: self._created[meta.id])
        return sorted(page(stored, limit, offset), key=lambda meta: meta.updated, reverse=True)

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await super().save(id, messages, metadata)
        self._created.setdefault(id, len(self._created))


class StaleListCountStore(ProtocolOnlyStore):
    """Keeps a list index whose ``message_count`` is set when the session is created, never after."""

    def __init__(self) -> None:
        super().__init__()
        self._counts: dict[str, int] = {}

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        page = await super().list(limit=limit, offset=offset)
        return [meta.model_copy(update={"message_count": self._counts[meta.id]}) for meta in page]

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await super().save(id, messages, metadata)
        self._counts.setdefault(id, len(messages))

    async def delete(self, id: str) -> bool:
        self._counts.pop(id, None)
        return await super().delete(id)


class AliasedListStore(ProtocolOnlyStore):
    """Memoizes the metadata ``list`` returns per revision, handing out the cached objects."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[tuple[str, str], SessionMetadata] = {}

    async def list(self, *, limit: int | None = None, offset: int = 0) -> builtins.list[SessionMetadata]:
        page = await super().list(limit=limit, offset=offset)
        return [self._seen.setdefault((meta.id, meta.updated_at), meta) for meta in page]


# -- load and save ---------------------------------------------------------------------------


class AliasedLoadStore(ProtocolOnlyStore):
    """Caches what ``load`` returns and hands the cached session, its message list included, to
    every caller."""

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[str, StoredSession] = {}

    async def load(self, id: str) -> StoredSession | None:
        if id not in self._cache:
            stored = await super().load(id)
            if stored is None:
                return None
            self._cache[id] = stored
        return self._cache[id]

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await super().save(id, messages, metadata)
        self._cache.pop(id, None)

    async def delete(self, id: str) -> bool:
        self._cache.pop(id, None)
        return await super().delete(id)


class ShallowSaveStore(ProtocolOnlyStore):
    """Answers ``load`` from a copy of the message list it was given: a shallow copy, sharing
    the caller's message objects."""

    def __init__(self) -> None:
        super().__init__()
        self._given: dict[str, builtins.list[JsonObject]] = {}

    async def load(self, id: str) -> StoredSession | None:
        stored = await super().load(id)
        if stored is None or id not in self._given:
            return stored
        return dataclasses.replace(stored, messages=list(self._given[id]))

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await super().save(id, messages, metadata)
        self._given[id] = list(messages)

    async def delete(self, id: str) -> bool:
        self._given.pop(id, None)
        return await super().delete(id)


class KnownKeysOnlyStore(ProtocolOnlyStore):
    """Stores the metadata fields it has columns for, dropping the unknown keys."""

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        known = {key: value for key, value in (metadata or {}).items() if key in SessionMetadata.model_fields}
        await super().save(id, messages, known)


class NoneKeepsStore(ProtocolOnlyStore):
    """Skips the keys given as ``None``, so ``None`` never removes a key."""

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        given = {key: value for key, value in (metadata or {}).items() if value is not None}
        await super().save(id, messages, given)


class ReplacingMetadataStore(ProtocolOnlyStore):
    """Replaces the metadata with the keys given instead of merging them into the stored ones."""

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        given = dict(metadata or {})
        stored = await self._inner.load(id)
        if stored is not None:
            for key in stored.metadata.to_json_dict().keys() - RESERVED_METADATA_KEYS - given.keys():
                given[key] = None
        await super().save(id, messages, given)


class SwappedColumnsStore(ProtocolOnlyStore):
    """Reads ``provider`` and ``model`` back from each other's column."""

    async def load(self, id: str) -> StoredSession | None:
        stored = await super().load(id)
        if stored is None:
            return None
        meta = stored.metadata
        return dataclasses.replace(
            stored, metadata=meta.model_copy(update={"provider": meta.model, "model": meta.provider})
        )


class SortedKeysStore(ProtocolOnlyStore):
    """Gives messages back with their keys sorted (MySQL's ``JSON`` column type)."""

    async def load(self, id: str) -> StoredSession | None:
        stored = await super().load(id)
        if stored is None:
            return None
        return dataclasses.replace(
            stored, messages=_recoded(stored.messages, lambda v: json.dumps(v, sort_keys=True))
        )


class FloatNumbersStore(ProtocolOnlyStore):
    """Decodes every JSON number as a float (as JavaScript does): big integers lose digits."""

    async def load(self, id: str) -> StoredSession | None:
        stored = await super().load(id)
        if stored is None:
            return None
        return dataclasses.replace(stored, messages=_recoded(stored.messages, parse_int=float))


def _three_byte_dumps(value: Any) -> str:
    """JSON text with each character past U+FFFF replaced by U+FFFD."""
    return re.sub("[\U00010000-\U0010ffff]", "\ufffd", json.dumps(value, ensure_ascii=False))


class ThreeByteUtf8Store(ProtocolOnlyStore):
    """Keeps text as three-byte UTF-8 (MySQL's ``utf8``): characters past U+FFFF come back as U+FFFD."""

    async def load(self, id: str) -> StoredSession | None:
        stored = await super().load(id)
        if stored is None:
            return None
        return dataclasses.replace(stored, messages=_recoded(stored.messages, _three_byte_dumps))


# -- delete ----------------------------------------------------------------------------------


class CascadingDeleteStore(ProtocolOnlyStore):
    """Deletes a session's forks with it (a foreign key ``ON DELETE CASCADE`` on ``parent_id``)."""

    async def delete(self, id: str) -> bool:
        for meta in await self.list():
            if meta.parent_id == id:
                await super().delete(meta.id)
        return await super().delete(id)


class ResurrectingDeleteStore(ProtocolOnlyStore):
    """Deletes the messages but keeps the metadata row, which a later save of the id merges into."""

    def __init__(self) -> None:
        super().__init__()
        self._tombstones: dict[str, dict[str, Any]] = {}

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        kept = self._tombstones.pop(id, {}) if await super().load(id) is None else {}
        await super().save(id, messages, {**kept, **(metadata or {})})

    async def delete(self, id: str) -> bool:
        stored = await super().load(id)
        if stored is not None:
            self._tombstones[id] = {
                key: value
                for key, value in stored.metadata.to_json_dict().items()
                if key not in RESERVED_METADATA_KEYS
            }
        return await super().delete(id)


# -- forks, revisions, append ----------------------------------------------------------------


class DescendantForksStore(ProtocolOnlyStore):
    """Claims ``forks`` but returns every descendant, the forks of forks included."""

    async def forks(self, id: str) -> builtins.list[SessionMetadata]:
        found, seen = await self._inner.forks(id), {id}
        for meta in found:
            if meta.id not in seen:
                seen.add(meta.id)
                found += await self._inner.forks(meta.id)
        return sorted(found, key=lambda meta: meta.updated, reverse=True)


class OldestForksFirstStore(ProtocolOnlyStore):
    """Claims ``forks`` but returns them least recently updated first."""

    async def forks(self, id: str) -> builtins.list[SessionMetadata]:
        return (await self._inner.forks(id))[::-1]


class CountOnlyRevisionStore(ProtocolOnlyStore):
    """Checks only the ``message_count`` of the revision a writer expects (``WHERE message_count = ?``)."""

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        stored = await self._inner.load(id)
        actual = None if stored is None else stored.revision
        if expected is not None and (actual is None or actual.message_count != expected.message_count):
            raise ConflictError(id, expected, actual)
        return await self._inner.save(id, messages, metadata)


class RevisionedStore(ProtocolOnlyStore):
    """A correct ``save`` that checks ``expected``: the append mutants change their ``append``."""

    async def save(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        return await self._inner.save(id, messages, metadata, expected=expected)


class BlindAppendStore(RevisionedStore):
    """Checks ``expected`` on ``save``, but its ``append`` writes whatever the revision."""

    async def append(
        self,
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected: Revision | None = None,
    ) -> Revision:
        return await self._inner.append(id, messages, metadata)


class FrozenAppendStampStore(ProtocolOnlyStore):
    """Its ``append`` updates ``message_count`` but leaves ``updated_at`` as it was."""

    async def append(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        before = await self._inner.load(id)
        await self._inner.append(id, messages, metadata)
        after = await self._inner.load(id)
        if before is not None and after is not None:
            stamp = {"updated_at": before.metadata.updated_at}
            await self._inner.restore(id, after.messages, after.metadata.model_copy(update=stamp))


# -- tails -----------------------------------------------------------------------------------


class InclusiveTailStore(ProtocolOnlyStore):
    """Its ``load_tail`` reads one message too many (``[end - count - 1, end)``)."""

    async def load_tail(self, id: str, count: int, *, end: int | None = None) -> StoredSession | None:
        return await self._inner.load_tail(id, count + 1, end=end)


class WrongEndTruncateStore(ProtocolOnlyStore):
    """Its ``truncate`` removes the first ``count`` messages (``messages[count:]``)."""

    async def truncate(self, id: str, count: int, *, expected: Revision | None = None) -> Revision:
        stored = await self._inner.load(id)
        if stored is None:
            raise SessionNotFoundError(id)
        if not 0 <= count <= len(stored.messages):
            raise ValueError(f"count {count} is not between 0 and message_count {len(stored.messages)}")
        return await self._inner.save(id, stored.messages[count:], expected=expected)


class ZeroTruncateStore(WrongEndTruncateStore):
    """Its ``truncate`` keeps ``messages[:-count]``: a count of 0 removes every message."""

    async def truncate(self, id: str, count: int, *, expected: Revision | None = None) -> Revision:
        stored = await self._inner.load(id)
        if stored is None:
            raise SessionNotFoundError(id)
        if not 0 <= count <= len(stored.messages):
            raise ValueError(f"count {count} is not between 0 and message_count {len(stored.messages)}")
        return await self._inner.save(id, stored.messages[:-count], expected=expected)


@pytest.mark.parametrize(
    ("store", "test", "contract"),
    [
        (OldestFirstStore, "test_list_most_recent_first", f"{ORDER}: after saving b, a, c"),
        (CreatedOrderStore, "test_list_most_recent_first", f"{ORDER}: after saving b again"),
        (ZeroLimitIsAllStore, "test_list_pages", f"{PAGES}: limit=0 offset=0"),
        (InclusiveLimitStore, "test_list_pages", f"{PAGES}: limit=2 offset=0"),
        (
            SlicingStore,
            "test_list_refuses_negative_pages",
            f"{NEGATIVE}: expected ValueError, nothing was raised",
        ),
        (
            PageThenSortStore,
            "test_list_pages_in_turn_neither_repeat_nor_skip",
            f"{PAGES}: pages of 3 read in turn",
        ),
        (
            StaleListCountStore,
            "test_list_shows_what_load_shows",
            f"{LISTED}: after saves changing message_count",
        ),
        (AliasedListStore, "test_isolation", f"{ISOLATION}: list after changes"),
        (AliasedLoadStore, "test_isolation", f"{ISOLATION}: changing what load or list returned"),
        (
            ShallowSaveStore,
            "test_isolation",
            f"{ISOLATION}: changing what was given to save changed the session",
        ),
        (KnownKeysOnlyStore, "test_unknown_keys_kept", f"{UNKNOWN}: the metadata"),
        (
            NoneKeepsStore,
            "test_merge_rules",
            f"{MERGE}: keys not given are kept, given ones replace, None removes",
        ),
        (ReplacingMetadataStore, "test_merge_rules", f"{MERGE}: keys not given are kept"),
        (SwappedColumnsStore, "test_merge_rules", f"{MERGE}: keys not given are kept"),
        (SortedKeysStore, "test_messages_come_back_verbatim", f"{VERBATIM}: the message"),
        (FloatNumbersStore, "test_messages_come_back_verbatim", f"{VERBATIM}: the message"),
        (ThreeByteUtf8Store, "test_messages_come_back_verbatim", f"{VERBATIM}: the message"),
        (CascadingDeleteStore, "test_delete_fork_and_parent", f"{DELETE}: only the deleted sessions go"),
        (ResurrectingDeleteStore, "test_delete", f"{DELETE}: a session saved again starts afresh, without"),
        (
            DescendantForksStore,
            "test_forks_are_the_children_only",
            f"{FORKS}: forks('p'), not its grandchildren",
        ),
        (OldestForksFirstStore, "test_forks", f"{FORKS}: attached and detached"),
        (
            CountOnlyRevisionStore,
            "test_a_save_stale_by_its_stamp_alone_is_refused",
            f"{STALE}: the same message_count",
        ),
        (
            BlindAppendStore,
            "test_a_stale_append_is_refused",
            f"{STALE}: expected ConflictError, nothing was raised",
        ),
        (FrozenAppendStampStore, "test_append_gives_a_later_updated_at", f"{APPEND}; like save, it gives"),
        (InclusiveTailStore, "test_load_tail", f"{TAIL}: count=3 end=None"),
        (WrongEndTruncateStore, "test_truncate", f"{CUT}: the first 3 remain"),
        (ZeroTruncateStore, "test_truncate", f"{CUT}: count 0 removes nothing"),
    ],
)
def test_a_mutant_store_fails_naming_the_contract(
    pytester: pytest.Pytester, store: type[ProtocolOnlyStore], test: str, contract: str
) -> None:
    _fails_naming_the_contract(pytester, store, test, contract)
