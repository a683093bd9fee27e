"""pydantic-ai message history kept in any simulacra-session store.

pydantic-ai hands a run its history as ``message_history`` and gives back what the run added
(``result.new_messages()``); ``PydanticAIHistory`` keeps that history in a store, one stored
message per ``ModelMessage``: the JSON object ``ModelMessagesTypeAdapter`` dumps for it, so
``load()`` gives back messages equal to the ones extended (timestamps, tool calls and
returns, usage, binary content included)::

    history = PydanticAIHistory("user-42/chat", store)
    result = await agent.run(prompt, message_history=await history.load())
    await history.extend(result.new_messages())

Importing this module without pydantic-ai raises ``ImportError`` naming the extra that
installs it: ``pip install 'simulacra-session[pydantic-ai]'``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from ..errors import CorruptSessionError
from ..history import read_tail, resolve_history, save_from, truncate
from ..ids import session_id_for_key
from ..protocols import AppendableSessionStore, SessionStore
from ._imports import require

require("pydantic_ai", "pydantic-ai")  # before the imports below: a missing framework names its extra

from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter  # noqa: E402

__all__ = ["INTEGRATION", "PydanticAIHistory"]

#: The ``integration`` metadata key of the sessions this module writes.
INTEGRATION = "pydantic-ai"


class PydanticAIHistory:
    """The message history of one pydantic-ai conversation, in ``store``.

    ``session_id`` is any string (a user's name, ``project/chat``): it is stored under
    ``session_id_for_key(session_id)`` (``id``), with the string itself in the session's
    metadata as ``key`` beside ``integration``. Each ``extend`` is one durable append;
    ``load`` reads the history back, what a fork made with a ``SessionManager`` inherits
    included. Holds no state of its own: a new object over the same store, in another
    process, continues the same history.
    """

    def __init__(self, session_id: str, store: SessionStore) -> None:
        self.key = session_id
        self.id = session_id_for_key(session_id)
        self.store = store

    async def load(self, limit: int | None = None) -> list[ModelMessage]:
        """The history, oldest first, as pydantic-ai's ``message_history`` takes it (``[]``
        for a session not written yet).

        ``limit``: only the last ``limit`` messages, read without the ones before where the
        store reads tails (``history.read_tail``). Like slicing the list, a tail may start
        with a response or with the return of a tool call it left out: models want a
        history that starts with a request and pairs each tool call with its return. A
        stored message that is not a ``ModelMessage`` raises ``CorruptSessionError`` naming
        the session and its position in what was read.
        """
        if limit is None:
            resolved = await resolve_history(self.store, self.id)
            messages = None if resolved is None else resolved.messages
        else:
            tail = await read_tail(self.store, self.id, limit)
            messages = None if tail is None else tail.messages
        if messages is None:
            return []
        try:
            return ModelMessagesTypeAdapter.validate_python(messages)
        except ValidationError as invalid:
            where = invalid.errors()[0]["loc"][:1]
            raise CorruptSessionError(
                f"session {self.id} (key {self.key!r}): message {where[0] if where else '?'} of the "
                f"{len(messages)} read is not a pydantic-ai ModelMessage: {invalid}"
            ) from invalid

    async def clear(self) -> None:
        """Remove every message; the session stays, empty, with its metadata. Forks made of
        it keep the history they inherit (``history.truncate``). A concurrent writer's change
        since the read raises ``ConflictError`` with nothing removed."""
        resolved = await resolve_history(self.store, self.id)
        if resolved is not None and resolved.messages:
            await truncate(self.store, self.id, len(resolved.messages), expected=resolved.stored.revision)

    async def extend(self, messages: Sequence[ModelMessage]) -> None:
        """Add ``messages`` (a run's ``new_messages()``) after the stored history, durably.

        One ``append`` on a store that has it (all or nothing, whatever the history's
        length); on another store, a load and a save of the session from the revision it
        read, so a concurrent writer's change raises ``ConflictError`` with nothing written.
        """
        if not messages:
            return
        dumped = ModelMessagesTypeAdapter.dump_python(list(messages), mode="json")
        metadata = {"integration": INTEGRATION, "key": self.key}
        if isinstance(self.store, AppendableSessionStore):
            await self.store.append(self.id, dumped, metadata)
            return
        stored = await self.store.load(self.id)
        if stored is None:
            await self.store.save(self.id, dumped, metadata)
        else:
            await save_from(self.store, stored, metadata, [*stored.messages, *dumped])
