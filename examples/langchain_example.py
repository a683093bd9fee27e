"""A LangChain chat whose history outlives the process: SimulacraChatMessageHistory on a file store.

Runs without network, on LangChain's fake chat model. Each turn opens the store afresh, as a
restarted process would, reads the history, asks the model and appends the exchange (one
durable append). The model's tool call and the tool's answer are stored as they are.

    python examples/langchain_example.py [DIRECTORY]   (default: a temporary directory)
"""

from __future__ import annotations

import asyncio
import sys
import tempfile

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from simulacra_session import FileSessionStore
from simulacra_session.integrations.langchain import SimulacraChatMessageHistory

KEY = "user-42/weather chat"  # any string: stored under a valid session id, the key in metadata

MODEL = GenericFakeChatModel(
    messages=iter(
        [
            AIMessage(
                content="", tool_calls=[{"name": "weather", "args": {"city": "Paris"}, "id": "call-1"}]
            ),
            AIMessage(content="Sunny in Paris, 24 °C."),
            AIMessage(content="Pack sunglasses."),
        ]
    )
)


def turn(root: str, new: list[BaseMessage]) -> BaseMessage:
    """One turn in a plain function (the sync API needs no event loop)."""
    history = SimulacraChatMessageHistory(KEY, FileSessionStore(root))
    answer = MODEL.invoke([*history.messages, *new])
    history.add_messages([*new, answer])
    return answer


async def show(root: str) -> None:
    """Async code awaits the a* methods (the sync API refuses to block a running loop)."""
    history = SimulacraChatMessageHistory(KEY, FileSessionStore(root))
    for message in await history.aget_messages():
        calls = message.tool_calls if isinstance(message, AIMessage) else []
        print(f"{message.type:>5}:", message.content or [f"calls {call['name']}" for call in calls])


def main(root: str) -> None:
    asked = turn(root, [HumanMessage(content="Weather in Paris?")])
    calls = asked.tool_calls if isinstance(asked, AIMessage) else []  # it calls the weather tool
    turn(root, [ToolMessage(content="sunny, 24 °C", tool_call_id=call["id"] or "") for call in calls])
    turn(root, [HumanMessage(content="What should I pack?")])
    asyncio.run(show(root))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as directory:
            main(directory)
