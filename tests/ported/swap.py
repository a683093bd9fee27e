"""What the ported tests call instead of building a SQLiteSession or a SQLAlchemySession."""

from __future__ import annotations

from typing import Any, Protocol

from agents.memory import SessionSettings

from simulacra_session.integrations.openai_agents import OpenAIAgentsSession

__all__ = ["MakeSession"]


class MakeSession(Protocol):
    """The ``make_session`` fixture: an ``OpenAIAgentsSession`` over the test's store."""

    def __call__(
        self, session_id: str, *, session_settings: SessionSettings | dict[str, Any] | None = None
    ) -> OpenAIAgentsSession: ...
