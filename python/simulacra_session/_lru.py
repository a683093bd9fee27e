"""A mapping that keeps only its most recently used entries.

For per-session caches of a long-lived process: a fleet works through sessions for days,
and what it remembers of each must not grow with every session it ever touched.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["LRU"]

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``size`` entries; storing one more drops the least recently used.

    Reading (``get``) and storing count as use. Each step is one C-level ``OrderedDict``
    operation, so threads sharing it never corrupt it: at worst a race drops an entry
    early, which is a cache miss.
    """

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int) -> None:
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        """The entry of ``key`` (now the most recently used), or ``None``."""
        entries = self._entries
        value = entries.get(key)
        if value is not None:
            try:  # noqa: SIM105 - on every append: suppress() would cost a context manager
                entries.move_to_end(key)
            except KeyError:  # popped by another thread meanwhile
                pass
        return value

    def __setitem__(self, key: K, value: V) -> None:
        entries = self._entries
        entries[key] = value
        try:  # noqa: SIM105 - on every auto-save (the stamps): as in get
            entries.move_to_end(key)
        except KeyError:  # popped by another thread meanwhile
            pass
        while len(entries) > self._size:
            try:
                entries.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break

    def pop(self, key: K) -> V | None:
        """Remove the entry of ``key``; returns it, or ``None`` when there was none."""
        return self._entries.pop(key, None)
