"""A store the manager tests share: a real in-memory store whose writes take time and are counted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from simulacra_session import InMemorySessionStore, JsonObject

__all__ = ["SlowStore"]


class SlowStore(InMemorySessionStore):
    """A real in-memory store whose saves take time and are counted, to observe queuing."""

    def __init__(self, delay: float = 0.01) -> None:
        super().__init__()
        self.delay = delay
        self.saves: list[tuple[str, int]] = []
        self.active: dict[str, int] = {}
        self.max_active = 0
        self.fail_with: BaseException | None = None
        self.appended: list[int] = []  # how many messages each append added

    async def save(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await self._write(super().save, id, messages, metadata)

    async def append(
        self, id: str, messages: Sequence[JsonObject], metadata: Mapping[str, Any] | None = None
    ) -> None:
        await self._write(super().append, id, messages, metadata)
        self.appended.append(len(messages))

    @property
    def appends(self) -> int:
        """How many appends succeeded."""
        return len(self.appended)

    async def _write(
        self,
        write: Callable[[str, Sequence[JsonObject], Mapping[str, Any] | None], Awaitable[None]],
        id: str,
        messages: Sequence[JsonObject],
        metadata: Mapping[str, Any] | None,
    ) -> None:
        self.active[id] = self.active.get(id, 0) + 1
        self.max_active = max(self.max_active, self.active[id])
        try:
            await asyncio.sleep(self.delay)
            if self.fail_with is not None:
                raise self.fail_with
            await write(id, messages, metadata)
            stored = await super().load(id)
            assert stored is not None
            self.saves.append((id, len(stored.messages)))
        finally:
            self.active[id] -= 1
