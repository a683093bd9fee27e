"""The helpers openai-agents' session tests share, ported with them (see ``conftest.py``).

From https://github.com/openai/openai-agents-python at commit
7f7a44f8dc0650296bd5ab6c745c9bcbaa6ac3b7 (MIT licence, Copyright (c) 2025 OpenAI:
``LICENSE-openai-agents-python`` here): ``get_text_message`` of ``tests/test_responses.py``
and ``run_agent_async`` of ``tests/memory/test_session.py``. Changed: type annotations.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents import Agent, Runner
from agents.items import TResponseOutputItem
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

__all__ = ["get_text_message", "run_agent_async"]


def get_text_message(content: str) -> TResponseOutputItem:
    return ResponseOutputMessage(
        id="1",
        type="message",
        role="assistant",
        content=[ResponseOutputText(text=content, type="output_text", annotations=[], logprobs=[])],
        status="completed",
    )


# Helper functions for parametrized testing of different Runner methods
def _run_sync_wrapper(agent: Agent[Any], input_data: Any, **kwargs: Any) -> Any:
    """Wrapper for run_sync that properly sets up an event loop."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return Runner.run_sync(agent, input_data, **kwargs)
    finally:
        loop.close()


async def run_agent_async(runner_method: str, agent: Agent[Any], input_data: Any, **kwargs: Any) -> Any:
    """Helper function to run agent with different methods."""
    if runner_method == "run":
        return await Runner.run(agent, input_data, **kwargs)
    elif runner_method == "run_sync":
        # For run_sync, we need to run it in a thread with its own event loop
        return await asyncio.to_thread(_run_sync_wrapper, agent, input_data, **kwargs)
    elif runner_method == "run_streamed":
        result = Runner.run_streamed(agent, input_data, **kwargs)
        # For streaming, we first try to get at least one event to trigger any early exceptions
        # If there's an exception in setup (like memory validation), it will be raised here
        try:
            first_event = None
            async for event in result.stream_events():
                if first_event is None:
                    first_event = event
                # Continue consuming all events
                pass
        except Exception:
            # If an exception occurs during streaming, we let it propagate up
            raise
        return result
    else:
        raise ValueError(f"Unknown runner method: {runner_method}")
