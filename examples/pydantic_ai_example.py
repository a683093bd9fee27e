"""A pydantic-ai agent whose history survives restarts, kept in a simulacra-session store.

Run it: ``python examples/pydantic_ai_example.py`` (needs ``pip install
'simulacra-session[pydantic-ai]'``; no network: the model is a local ``FunctionModel``).
Each turn opens the store afresh, as a new process would, loads the history, runs the
agent with it and appends what the run added; the sessions stay in ``./pydantic-ai-sessions``.
"""

from __future__ import annotations

import asyncio

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from simulacra_session import FileSessionStore
from simulacra_session.integrations.pydantic_ai import PydanticAIHistory


def local_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Asks for the weather once, then answers from the tool's return and the history's length."""
    returns = [part for m in messages for part in m.parts if isinstance(part, ToolReturnPart)]
    if not returns:
        return ModelResponse(parts=[ToolCallPart("weather", {"city": "Paris"})])
    return ModelResponse(parts=[TextPart(f"{returns[-1].content} ({len(messages)} messages so far)")])


agent = Agent(FunctionModel(local_model), instructions="Answer briefly.")


@agent.tool_plain
def weather(city: str) -> str:
    """Today's weather in ``city``."""
    return f"Sunny in {city}"


async def turn(prompt: str) -> str:
    """One turn, as a process that starts, answers and exits would run it."""
    store = FileSessionStore("pydantic-ai-sessions")
    history = PydanticAIHistory("user-42/weather chat", store)  # any string names the chat
    result = await agent.run(prompt, message_history=await history.load())
    await history.extend(result.new_messages())  # one durable append
    assert await history.load() == result.all_messages()
    return result.output


async def main() -> None:
    for prompt in ["Weather in Paris?", "And tomorrow?", "Thanks!"]:
        print(f"> {prompt}\n{await turn(prompt)}")


if __name__ == "__main__":
    asyncio.run(main())
