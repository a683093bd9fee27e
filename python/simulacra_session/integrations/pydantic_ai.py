"""pydantic-ai message history kept in any simulacra-session store.

pydantic-ai hands a run its history as ``message_history`` and gives back what the run added
(``result.new_messages()``); ``PydanticAIHistory`` keeps that history in a store, one stored
message per ``ModelMessage``: the JSON object ``ModelMessagesTypeAdapter`` dumps for it, so
``load()`` gives back what pydantic-ai's own adapter reads from that JSON, exactly what its
JSON round trip gives (``validate_json(dump_json(messages))``). That is the messages extended
for requests, responses, text, tool calls, timestamps with their time zone and usage, but
not always: a ``BinaryContent`` comes back as the subclass read for its media type
(``BinaryImage`` for an image), a tool's return of a type JSON lacks as its JSON form
(``bytes`` as base64 text, a ``datetime`` as ISO 8601 text)::

    history = PydanticAIHistory("user-42/chat", store)
    result = await agent.run(prompt, message_history=await history.load())
    await history.extend(result.new_messages())

Importing this module without pydantic-ai raises ``ImportError`` naming the extra that
installs it: ``pip install 'simulacra-session[pydantic-ai]'``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from ..errors import CorruptSessionError
from ..history import read_tail, resolve_history
from ..ids import session_id_for_key
from ..protocols import SessionStore
from . import _writes
from ._imports import require
from ._owner import Owner

require("pydantic_ai", "pydantic-ai")  # before the imports below: a missing framework names its extra

from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter  # noqa: E402

__all__ = ["INTEGRATION", "PydanticAIHistory"]

#: The ``integration`` metadata key of the sessions this module writes.
INTEGRATION = "pydantic-ai"


class PydanticAIHistory:
    """The message history of one pydantic-ai conversation, in ``store``.

    ``session_id`` is any string (a user's name, ``project/chat``): it is stored under
    ``session_id_for_key(session_id)`` (``id``), with the string itself in the session's
    metadata as ``key`` beside ``integration``; a session another integration wrote under that
    id is refused (``ForeignSessionError``). Each ``extend`` is one durable append;
    ``load`` reads the history back, what a fork made with a ``SessionManager`` inherits
    included. Holds no state of its own: a new object over the same store, in another
    process, continues the same history.
    """

    def __init__(self, session_id: str, store: SessionStore) -> None:
        self.key = session_id
        self.id = session_id_for_key(session_id)
        self.store = store
        self._owner = Owner(store, INTEGRATION, session_id)

    async def load(self, limit: int | None = None) -> list[ModelMessage]:
        """The history, oldest first, as pydantic-ai's ``message_history`` takes it (``[]``
        for a session not written yet).

        ``limit``: only the last ``limit`` messages, read without the ones before where the
        store reads tails (``history.read_tail``). Like slicing the list, a tail may start
        with a response or with the return of a tool call it left out: models want a
        history that starts with a request and pairs each tool call with its return. A
        stored message that is not a ``ModelMessage`` raises ``CorruptSessionError`` naming
        the session and its position in what was read. A negative ``limit`` raises
        ``ValueError`` naming it and the session, nothing read (pydantic-ai's own
        ``ConversationStore.load`` refuses one too).
        """
        if limit is not None and limit < 0:
            raise ValueError(
                f"limit must not be negative, got limit={limit} (session {self.id}, key {self.key!r})"
            )
        if limit is None:
            resolved = await resolve_history(self.store, self.id)
            if resolved is None:
                return []
            stored, messages = resolved.stored, resolved.messages
        else:
            tail = await read_tail(self.store, self.id, limit)
            if tail is None:
                return []
            stored, messages = tail, tail.messages
        self._owner.check(stored)
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
        await _writes.clear(self.store, self.id, self._owner.metadata)

    async def extend(self, messages: Sequence[ModelMessage]) -> None:
        """Add ``messages`` (a run's ``new_messages()``) after the stored history, durably:
        one ``append`` on a store that has it (all or nothing, whatever the history's
        length); on another store, a save from the revision it read, which never drops
        another writer's messages within the process, but on an ``AdapterSessionStore`` may
        across processes (its revision check is not atomic there). A part holding a value
        pydantic cannot dump as JSON (a tool's return of a type it does not know) raises
        ``SerializationError`` naming the key and the session, nothing written."""
        if messages:
            owner = self._owner
            try:
                dumped = ModelMessagesTypeAdapter.dump_python(list(messages), mode="json")
            except PydanticSerializationError as error:
                raise _writes.not_json(self.id, owner.metadata, error) from error
            owner.saw(await _writes.append(self.store, self.id, dumped, owner.metadata, owner.seen))
