"""An openai-agents agent whose conversation survives restarts, kept in a simulacra-session store.

Run it: ``python examples/openai_agents_example.py`` (needs ``pip install
'simulacra-session[openai-agents]'``; no network: the model is ``RecallModel`` below, a
local ``Model``, and tracing is off). Each turn opens the store afresh, as a new process
would, and runs the agent with the session: openai-agents reads the history from it and
appends what the run added. The sessions stay in ``./openai-agents-sessions``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from agents import Agent, Model, ModelResponse, Runner, TResponseInputItem, Usage, set_tracing_disabled
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

from simulacra_session import FileSessionStore
from simulacra_session.integrations.openai_agents import OpenAIAgentsSession


class RecallModel(Model):
    """A local model that answers with what it was given: the first prompt and how many
    items the history holds. It does not stream (``Runner.run_streamed`` needs one that does)."""

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        *args: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else input
        first = items[0].get("content")
        text = f"Items so far: {len(items)}, the first: {first!r}."
        reply = ResponseOutputText(text=text, type="output_text", annotations=[])
        message = ResponseOutputMessage(
            id=f"msg-{len(items)}", type="message", role="assistant", status="completed", content=[reply]
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("RecallModel answers whole responses only")


agent = Agent(name="assistant", instructions="Answer briefly.", model=RecallModel())


async def turn(prompt: str) -> str:
    """One turn, as a process that starts, answers and exits would run it."""
    store = FileSessionStore("openai-agents-sessions")
    session = OpenAIAgentsSession("user-42/chat", store)  # any string names the conversation
    result = await Runner.run(agent, prompt, session=session)  # one durable append per turn
    return str(result.final_output)


async def main() -> None:
    set_tracing_disabled(True)  # no trace export: nothing leaves this machine
    for prompt in ["Plan a day in Lisbon.", "Add a tram ride.", "Thanks!"]:
        print(f"> {prompt}\n{await turn(prompt)}")
    session = OpenAIAgentsSession("user-42/chat", FileSessionStore("openai-agents-sessions"))
    last_two = await session.get_items(limit=2)  # reads only those two
    print("last two:", [item.get("role") for item in last_two])
    undone = await session.pop_item()  # removes the last answer, durably
    print("undone:", undone and undone.get("role"), "- items left:", len(await session.get_items()))


if __name__ == "__main__":
    asyncio.run(main())
