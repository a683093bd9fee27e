"""pydantic-ai message history kept in any simulacra-session store.

pydantic-ai hands a run its history as ``message_history`` and gives back what the run added
(``result.new_messages()``); ``PydanticAIHistory`` keeps that history in a store, one stored
message per ``ModelMessage``: the JSON object ``ModelMessagesTypeAdapter`` dumps for it, so
``load()`` gives back what pydantic-ai's own adapter reads from that JSON: messages equal to
the ones extended (timestamps with their time zone, tool calls and returns, usage)::

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
from ..history import read_tail, resolve_history
from ..ids import session_id_for_key
from ..protocols import SessionStore
from . import _writes
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
            first = invalid.errors()[0]
            where, inside = (first["loc"][0], first["loc"][1:]) if first["loc"] else ("?", ())
            raise CorruptSessionError(
                f"session {self.id} (key {self.key!r}): message {where} of the {len(messages)} read "
                f"is not a pydantic-ai ModelMessage: {first['msg']} (at {list(inside)})"
            ) from invalid

    async def clear(self) -> None:
        """Remove every message; the session stays, empty, with its metadata. Forks made of
        it keep the history they inherit (``history.truncate``)."""
        await _writes.clear(self.store, self.id)

    async def extend(self, messages: Sequence[ModelMessage]) -> None:
        """Add ``messages`` (a run's ``new_messages()``) after the stored history, durably:
        one ``append`` on a store that has it (all or nothing, whatever the history's
        length); on another store, a save from the revision it read, which never drops
        another writer's messages within the process, but on an ``AdapterSessionStore`` may
        across processes (its revision check is not atomic there)."""
        if messages:
            dumped = ModelMessagesTypeAdapter.dump_python(list(messages), mode="json")
            await _writes.append(self.store, self.id, dumped, {"integration": INTEGRATION, "key": self.key})
