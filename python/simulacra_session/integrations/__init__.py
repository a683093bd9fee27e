"""Framework adapters: agents written for a framework persist through any simulacra-session store.

One module per framework, each importing its framework only when used; a missing framework
raises ``ImportError`` naming the extra that installs it:

- ``openai_agents.OpenAIAgentsSession``: an ``agents.memory.Session`` (``[openai-agents]``);
- ``claude_agent_sdk.ClaudeAgentSessionStore``: the Claude Agent SDK's ``SessionStore``
  (``[claude-agent-sdk]``);
- ``langchain.SimulacraChatMessageHistory``: a LangChain ``BaseChatMessageHistory``
  (``[langchain]``);
- ``pydantic_ai.PydanticAIHistory``: pydantic-ai message history (``[pydantic-ai]``).

Items and entries are stored verbatim as JSON objects and come back equal (pydantic-ai's
messages as its own JSON round trip gives them). Each adapter keeps to its own sessions:
one of another integration, given the same key, raises ``ForeignSessionError``.
"""

from __future__ import annotations

from ._owner import ForeignSessionError

__all__ = ["ForeignSessionError"]
