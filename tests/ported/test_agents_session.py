"""openai-agents' own tests of ``SQLiteSession``, run against ``OpenAIAgentsSession``.

Ported from https://github.com/openai/openai-agents-python ``tests/memory/test_session.py``
at commit 7f7a44f8dc0650296bd5ab6c745c9bcbaa6ac3b7, MIT licence, Copyright (c) 2025 OpenAI
(the licence: ``LICENSE-openai-agents-python`` in this folder).

Changed: the fixture. Where a test built ``SQLiteSession(session_id, db_path, ...)`` it calls
``make_session(session_id, ...)`` (``conftest.py``), an ``OpenAIAgentsSession`` over each
bundled store in turn; the temporary directories and ``session.close()`` calls went with
``SQLiteSession`` (the store is the fixture's to close). ``ScriptedModel``,
``get_text_message`` and ``run_agent_async`` are openai-agents' own (``upstream_helpers.py``).
Type annotations added; the test bodies are otherwise as they were, but where noted.

Not ported, as they test what only ``SQLiteSession`` has:

- ``test_await_mutation_cancellation_hides_later_failure_without_loop_error``: tests the
  framework's private ``_await_mutation`` helper, no session.
- ``test_session_memory_disabled_parametrized``, ``test_session_settings_resolve``: no
  session either (``session=None``; ``SessionSettings.resolve``).
- ``test_sqlite_session_close_closes_worker_thread_connections``,
  ``test_sqlite_session_closed_rejects_empty_add_items``: ``SQLiteSession.close`` and its
  connections; an ``OpenAIAgentsSession`` holds no connection (its store does, closed by
  whoever opened it).
- ``test_sqlite_session_pop_item_skips_corrupt_most_recent``,
  ``..._pop_item_returns_none_after_dropping_only_corrupt_rows``,
  ``..._get_items_limit_skips_corrupt_newest_rows``,
  ``..._get_items_session_settings_limit_skips_corrupt_rows``: they write rows of invalid
  JSON into SQLiteSession's table. Our stores refuse what is not JSON (SerializationError,
  nothing written: ``test_sqlite_session_failed_add_items_releases_write_lock`` below) and
  report damaged bytes instead of skipping them (tests/test_journal_checksums.py).
- ``test_sqlite_session_failed_clear_session_rolls_back``,
  ``..._failed_pop_item_releases_write_lock``, ``..._rollback_failure_evicts_connection``,
  ``..._close_retries_quarantined_connection``,
  ``..._post_commit_cancellation_propagates_after_known_outcome``: SQLiteSession's sqlite3
  connections (dropped tables, connection factories failing to roll back or pausing in
  commit). Our stores' writes are all or nothing and a cancelled write never lands after
  the caller heard ``CancelledError``: the conformance kit checks it of every store
  (``simulacra_session.testing``, ``store_cancellation``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, SessionSettings, TResponseInputItem
from agents.testing import ScriptedModel
from swap import MakeSession
from upstream_helpers import get_text_message, run_agent_async

from simulacra_session import SerializationError
from simulacra_session.integrations.openai_agents import OpenAIAgentsSession


# Parametrized tests for different runner methods
@pytest.mark.parametrize("runner_method", ["run", "run_sync", "run_streamed"])
@pytest.mark.asyncio
async def test_session_memory_basic_functionality_parametrized(
    runner_method: str, make_session: MakeSession
) -> None:
    """Test basic session memory functionality with SQLite backend across all runner methods."""
    session_id = "test_session_123"
    session = make_session(session_id)

    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    # First turn
    model.enqueue([get_text_message("San Francisco")])
    result1 = await run_agent_async(
        runner_method,
        agent,
        "What city is the Golden Gate Bridge in?",
        session=session,
    )
    assert result1.final_output == "San Francisco"

    # Second turn - should have conversation history
    model.enqueue([get_text_message("California")])
    result2 = await run_agent_async(
        runner_method,
        agent,
        "What state is it in?",
        session=session,
    )
    assert result2.final_output == "California"

    # Verify that the input to the second turn includes the previous conversation
    # The model should have received the full conversation history
    last_input = model.calls[-1].input
    assert len(last_input) > 1  # Should have more than just the current message


@pytest.mark.parametrize("runner_method", ["run", "run_sync", "run_streamed"])
@pytest.mark.asyncio
async def test_session_memory_with_explicit_instance_parametrized(
    runner_method: str, make_session: MakeSession
) -> None:
    """Test session memory with an explicit SQLiteSession instance across all runner methods."""
    session_id = "test_session_456"
    session = make_session(session_id)

    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    # First turn
    model.enqueue([get_text_message("Hello")])
    result1 = await run_agent_async(runner_method, agent, "Hi there", session=session)
    assert result1.final_output == "Hello"

    # Second turn
    model.enqueue([get_text_message("I remember you said hi")])
    result2 = await run_agent_async(
        runner_method,
        agent,
        "Do you remember what I said?",
        session=session,
    )
    assert result2.final_output == "I remember you said hi"


@pytest.mark.parametrize("runner_method", ["run", "run_sync", "run_streamed"])
@pytest.mark.asyncio
async def test_session_memory_different_sessions_parametrized(
    runner_method: str, make_session: MakeSession
) -> None:
    """Test that different session IDs maintain separate conversation histories across all runner
    methods."""
    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    # Session 1
    session_id_1 = "session_1"
    session_1 = make_session(session_id_1)

    model.enqueue([get_text_message("I like cats")])
    result1 = await run_agent_async(runner_method, agent, "I like cats", session=session_1)
    assert result1.final_output == "I like cats"

    # Session 2 - different session
    session_id_2 = "session_2"
    session_2 = make_session(session_id_2)

    model.enqueue([get_text_message("I like dogs")])
    result2 = await run_agent_async(runner_method, agent, "I like dogs", session=session_2)
    assert result2.final_output == "I like dogs"

    # Back to Session 1 - should remember cats, not dogs
    model.enqueue([get_text_message("Yes, you mentioned cats")])
    result3 = await run_agent_async(
        runner_method,
        agent,
        "What did I say I like?",
        session=session_1,
    )
    assert result3.final_output == "Yes, you mentioned cats"


@pytest.mark.asyncio
async def test_sqlite_session_memory_direct(make_session: MakeSession) -> None:
    """Test SQLiteSession class directly."""
    session_id = "direct_test"
    session = make_session(session_id)

    # Test adding and retrieving items
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there!"},
    ]

    await session.add_items(items)
    retrieved = await session.get_items()

    assert len(retrieved) == 2
    assert retrieved[0].get("role") == "user"
    assert retrieved[0].get("content") == "Hello"
    assert retrieved[1].get("role") == "assistant"
    assert retrieved[1].get("content") == "Hi there!"

    # Test clearing session
    await session.clear_session()
    retrieved_after_clear = await session.get_items()
    assert len(retrieved_after_clear) == 0


@pytest.mark.asyncio
async def test_sqlite_session_memory_pop_item(make_session: MakeSession) -> None:
    """Test SQLiteSession pop_item functionality."""
    session_id = "pop_test"
    session = make_session(session_id)

    # Test popping from empty session
    popped = await session.pop_item()
    assert popped is None

    # Add items
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there!"},
        {"role": "user", "content": "How are you?"},
    ]

    await session.add_items(items)

    # Verify all items are there
    retrieved = await session.get_items()
    assert len(retrieved) == 3

    # Pop the most recent item
    popped = await session.pop_item()
    assert popped is not None
    assert popped.get("role") == "user"
    assert popped.get("content") == "How are you?"

    # Verify item was removed
    retrieved_after_pop = await session.get_items()
    assert len(retrieved_after_pop) == 2
    assert retrieved_after_pop[-1].get("content") == "Hi there!"

    # Pop another item
    popped2 = await session.pop_item()
    assert popped2 is not None
    assert popped2.get("role") == "assistant"
    assert popped2.get("content") == "Hi there!"

    # Pop the last item
    popped3 = await session.pop_item()
    assert popped3 is not None
    assert popped3.get("role") == "user"
    assert popped3.get("content") == "Hello"

    # Try to pop from empty session again
    popped4 = await session.pop_item()
    assert popped4 is None

    # Verify session is empty
    final_items = await session.get_items()
    assert len(final_items) == 0


@pytest.mark.asyncio
async def test_session_memory_pop_different_sessions(make_session: MakeSession) -> None:
    """Test that pop_item only affects the specified session."""
    session_1_id = "session_1"
    session_2_id = "session_2"
    session_1 = make_session(session_1_id)
    session_2 = make_session(session_2_id)

    # Add items to both sessions
    items_1: list[TResponseInputItem] = [
        {"role": "user", "content": "Session 1 message"},
    ]
    items_2: list[TResponseInputItem] = [
        {"role": "user", "content": "Session 2 message 1"},
        {"role": "user", "content": "Session 2 message 2"},
    ]

    await session_1.add_items(items_1)
    await session_2.add_items(items_2)

    # Pop from session 2
    popped = await session_2.pop_item()
    assert popped is not None
    assert popped.get("content") == "Session 2 message 2"

    # Verify session 1 is unaffected
    session_1_items = await session_1.get_items()
    assert len(session_1_items) == 1
    assert session_1_items[0].get("content") == "Session 1 message"

    # Verify session 2 has one item left
    session_2_items = await session_2.get_items()
    assert len(session_2_items) == 1
    assert session_2_items[0].get("content") == "Session 2 message 1"


@pytest.mark.asyncio
async def test_sqlite_session_get_items_with_limit(make_session: MakeSession) -> None:
    """Test SQLiteSession get_items with limit parameter."""
    session_id = "count_test"
    session = make_session(session_id)

    # Add multiple items
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "Message 1"},
        {"role": "assistant", "content": "Response 1"},
        {"role": "user", "content": "Message 2"},
        {"role": "assistant", "content": "Response 2"},
        {"role": "user", "content": "Message 3"},
        {"role": "assistant", "content": "Response 3"},
    ]

    await session.add_items(items)

    # Test getting all items (default behavior)
    all_items = await session.get_items()
    assert len(all_items) == 6
    assert all_items[0].get("content") == "Message 1"
    assert all_items[-1].get("content") == "Response 3"

    # Test getting latest 2 items
    latest_2 = await session.get_items(limit=2)
    assert len(latest_2) == 2
    assert latest_2[0].get("content") == "Message 3"
    assert latest_2[1].get("content") == "Response 3"

    # Test getting latest 4 items
    latest_4 = await session.get_items(limit=4)
    assert len(latest_4) == 4
    assert latest_4[0].get("content") == "Message 2"
    assert latest_4[1].get("content") == "Response 2"
    assert latest_4[2].get("content") == "Message 3"
    assert latest_4[3].get("content") == "Response 3"

    # Test getting more items than available
    latest_10 = await session.get_items(limit=10)
    assert len(latest_10) == 6  # Should return all available items
    assert latest_10[0].get("content") == "Message 1"
    assert latest_10[-1].get("content") == "Response 3"

    # Test getting 0 items
    latest_0 = await session.get_items(limit=0)
    assert len(latest_0) == 0


@pytest.mark.parametrize("runner_method", ["run", "run_sync", "run_streamed"])
@pytest.mark.asyncio
async def test_session_memory_appends_list_input_by_default(
    runner_method: str, make_session: MakeSession
) -> None:
    """Test that list inputs are appended to session history when no callback is provided."""
    session_id = "test_validation_parametrized"
    session = make_session(session_id)

    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    initial_history: list[TResponseInputItem] = [
        {"role": "user", "content": "Earlier message"},
        {"role": "assistant", "content": "Saved reply"},
    ]
    await session.add_items(initial_history)

    list_input: list[TResponseInputItem] = [{"role": "user", "content": "Test message"}]

    model.enqueue([get_text_message("This should run")])
    await run_agent_async(runner_method, agent, list_input, session=session)

    assert model.calls[-1].input == initial_history + list_input


@pytest.mark.parametrize("runner_method", ["run", "run_sync", "run_streamed"])
@pytest.mark.asyncio
async def test_session_callback_prepared_input(runner_method: str, make_session: MakeSession) -> None:
    """Test if the user passes a list of items and want to append them."""
    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    # Session
    session_id = "session_1"
    session = make_session(session_id)

    # Add first messages manually
    initial_history: list[TResponseInputItem] = [
        {"role": "user", "content": "Hello there."},
        {"role": "assistant", "content": "Hi, I'm here to assist you."},
    ]
    await session.add_items(initial_history)

    def filter_assistant_messages(history: list[Any], new_input: list[Any]) -> list[Any]:
        # Only include user messages from history
        return [item for item in history if item["role"] == "user"] + new_input

    new_turn_input: list[TResponseInputItem] = [{"role": "user", "content": "What your name?"}]
    model.enqueue([get_text_message("I'm gpt-4o")])

    # Run the agent with the callable
    await run_agent_async(
        runner_method,
        agent,
        new_turn_input,
        session=session,
        run_config=RunConfig(session_input_callback=filter_assistant_messages),
    )

    expected_model_input = [
        initial_history[0],  # From history
        new_turn_input[0],  # New input
    ]

    assert len(model.calls[-1].input) == 2
    assert model.calls[-1].input == expected_model_input


@pytest.mark.parametrize("runner_method", ["run", "run_sync", "run_streamed"])
@pytest.mark.asyncio
async def test_session_callback_repeating_history_does_not_grow_session(
    runner_method: str, make_session: MakeSession
) -> None:
    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    session = make_session("session_repeat")

    def repeat_first(history: list[Any], new_input: list[Any]) -> list[Any]:
        if not history:
            return new_input
        return [*history, history[0], *new_input]

    for turn in range(3):
        model.enqueue([get_text_message(f"assistant {turn}")])
        await run_agent_async(
            runner_method,
            agent,
            f"user {turn}",
            session=session,
            run_config=RunConfig(session_input_callback=repeat_first),
        )

    stored = await session.get_items()
    user_messages = [item for item in stored if item.get("role") == "user"]
    assert [item.get("content") for item in user_messages] == [
        "user 0",
        "user 1",
        "user 2",
    ]
    assert len(stored) == 6


@pytest.mark.asyncio
async def test_sqlite_session_unicode_content(make_session: MakeSession) -> None:
    """Test that session correctly stores and retrieves unicode/non-ASCII content."""
    session_id = "unicode_test"
    session = make_session(session_id)

    # Add unicode content to the session
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "こんにちは"},
        {"role": "assistant", "content": "😊👍"},
        {"role": "user", "content": "Привет"},
    ]
    await session.add_items(items)

    # Retrieve items and verify unicode content
    retrieved = await session.get_items()
    assert retrieved[0].get("content") == "こんにちは"
    assert retrieved[1].get("content") == "😊👍"
    assert retrieved[2].get("content") == "Привет"


@pytest.mark.asyncio
async def test_sqlite_session_special_characters_and_sql_injection(make_session: MakeSession) -> None:
    """
    Test that session safely stores and retrieves items with special characters and SQL keywords.
    """
    session_id = "special_chars_test"
    session = make_session(session_id)

    # Add items with special characters and SQL keywords
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "O'Reilly"},
        {"role": "assistant", "content": "DROP TABLE sessions;"},
        {"role": "user", "content": ('"SELECT * FROM users WHERE name = "admin";"')},
        {"role": "assistant", "content": "Robert'); DROP TABLE students;--"},
        {"role": "user", "content": "Normal message"},
    ]
    await session.add_items(items)

    # Retrieve all items and verify they are stored correctly
    retrieved = await session.get_items()
    assert len(retrieved) == len(items)
    assert retrieved[0].get("content") == "O'Reilly"
    assert retrieved[1].get("content") == "DROP TABLE sessions;"
    assert retrieved[2].get("content") == '"SELECT * FROM users WHERE name = "admin";"'
    assert retrieved[3].get("content") == "Robert'); DROP TABLE students;--"
    assert retrieved[4].get("content") == "Normal message"


@pytest.mark.asyncio
async def test_sqlite_session_concurrent_access(make_session: MakeSession) -> None:
    """
    Test concurrent access to the same session to verify data integrity.
    """
    session_id = "concurrent_test"
    session = make_session(session_id)

    # Add initial item
    items: list[TResponseInputItem] = [{"role": "user", "content": f"Message {i}"} for i in range(10)]

    # Use ThreadPoolExecutor to simulate concurrent writes
    def add_item(item: TResponseInputItem) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(session.add_items([item]))
        loop.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as executor:
        # changed: list() waits for the writes' outcomes, so a failed write fails the test
        list(executor.map(add_item, items))

    # Retrieve all items and verify all are present
    retrieved = await session.get_items()
    contents = {
        content for item in retrieved for content in [item.get("content")] if isinstance(content, str)
    }
    expected = {f"Message {i}" for i in range(10)}
    assert contents == expected


@pytest.mark.asyncio
async def test_sqlite_session_file_lock_is_shared_across_instances(make_session: MakeSession) -> None:
    """File-backed sessions pointing at the same DB path should reuse one process-local lock."""
    # changed: the assertions on SQLiteSession's process-local lock registry are gone (no
    # such lock here); what it protects is kept: two sessions on one store, written at once
    session_1 = make_session("session_1")
    session_2 = make_session("session_2")

    await asyncio.gather(
        session_1.add_items([{"role": "user", "content": "session_1"}]),
        session_2.add_items([{"role": "user", "content": "session_2"}]),
    )

    assert [item.get("content") for item in await session_1.get_items()] == ["session_1"]
    assert [item.get("content") for item in await session_2.get_items()] == ["session_2"]


@pytest.mark.asyncio
async def test_sqlite_session_failed_add_items_releases_write_lock(make_session: MakeSession) -> None:
    """A failed add_items must not leave an open write transaction on the cached connection."""
    session = make_session("rollback_test")

    # changed: our stores refuse a value that is not JSON with SerializationError (naming
    # where it is), where json.dumps raises TypeError; the SQLite write-lock probe is gone
    unserializable: Any = {"role": "user", "content": object()}
    with pytest.raises(SerializationError):
        await session.add_items([unserializable])

    assert await session.get_items() == []

    # The session must remain usable after the failure.
    await session.add_items([{"role": "user", "content": "after failure"}])
    assert [item.get("content") for item in await session.get_items()] == ["after failure"]


@pytest.mark.asyncio
async def test_session_add_items_exception_propagates_in_streamed(make_session: MakeSession) -> None:
    """Test that exceptions from session.add_items are properly propagated
    in run_streamed instead of causing the stream to hang forever.
    Regression test for https://github.com/openai/openai-agents-python/issues/2130
    """
    session = make_session("test_exception_session")

    async def _failing_add_items(_items: list[TResponseInputItem]) -> None:
        raise RuntimeError("Simulated session.add_items failure")

    session.add_items = _failing_add_items  # type: ignore[method-assign,assignment]

    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    model.enqueue([get_text_message("This should not be reached")])

    result = Runner.run_streamed(agent, "Hello", session=session)

    async def consume_stream() -> None:
        async for _event in result.stream_events():
            pass

    with pytest.raises(RuntimeError, match=r"Simulated session\.add_items failure"):
        # Timeout ensures test fails fast instead of hanging forever if bug regresses
        await asyncio.wait_for(consume_stream(), timeout=5.0)


# ============================================================================
# SessionSettings Tests
# ============================================================================


@pytest.mark.asyncio
async def test_session_settings_default(make_session: MakeSession) -> None:
    """Test that session_settings defaults to empty SessionSettings."""
    from agents.memory import SessionSettings

    session = make_session("default_settings_test")

    # Should have default SessionSettings
    assert isinstance(session.session_settings, SessionSettings)
    assert session.session_settings.limit is None


@pytest.mark.asyncio
async def test_session_settings_constructor(make_session: MakeSession) -> None:
    """Test passing session_settings via constructor."""
    from agents.memory import SessionSettings

    session = make_session("constructor_settings_test", session_settings=SessionSettings(limit=5))

    assert session.session_settings is not None
    assert session.session_settings.limit == 5


@pytest.mark.asyncio
async def test_session_settings_constructor_normalizes_dictionary(make_session: MakeSession) -> None:
    session = make_session("dictionary_settings_test", session_settings={"limit": 0})

    assert isinstance(session.session_settings, SessionSettings)
    assert session.session_settings.limit == 0
    assert session.session_settings.resolve({"limit": 4}).limit == 4


def test_session_settings_rejects_unknown_dictionary_fields(make_session: MakeSession) -> None:
    with pytest.raises(TypeError, match="Unknown session settings: limitt"):
        make_session("invalid_settings_test", session_settings={"limitt": 1})


@pytest.mark.asyncio
async def test_get_items_uses_session_settings_limit(make_session: MakeSession) -> None:
    """Test that get_items uses session_settings.limit as default."""
    from agents.memory import SessionSettings

    session = make_session("uses_settings_limit_test", session_settings=SessionSettings(limit=3))

    # Add 5 items
    items: list[TResponseInputItem] = [{"role": "user", "content": f"Message {i}"} for i in range(5)]
    await session.add_items(items)

    # get_items() with no limit should use session_settings.limit=3
    retrieved = await session.get_items()
    assert len(retrieved) == 3
    # Should get the last 3 items
    assert retrieved[0].get("content") == "Message 2"
    assert retrieved[1].get("content") == "Message 3"
    assert retrieved[2].get("content") == "Message 4"


@pytest.mark.asyncio
async def test_get_items_explicit_limit_overrides_session_settings(make_session: MakeSession) -> None:
    """Test that explicit limit parameter overrides session_settings."""
    from agents.memory import SessionSettings

    session = make_session("explicit_override_test", session_settings=SessionSettings(limit=5))

    # Add 10 items
    items: list[TResponseInputItem] = [{"role": "user", "content": f"Message {i}"} for i in range(10)]
    await session.add_items(items)

    # Explicit limit=2 should override session_settings.limit=5
    retrieved = await session.get_items(limit=2)
    assert len(retrieved) == 2
    assert retrieved[0].get("content") == "Message 8"
    assert retrieved[1].get("content") == "Message 9"


@pytest.mark.asyncio
async def test_runner_with_session_settings_override(make_session: MakeSession) -> None:
    """Test that RunConfig can override session's default settings."""
    from agents.memory import SessionSettings

    # Session with default limit=100
    session = make_session("runner_override_test", session_settings=SessionSettings(limit=100))

    # Add some history
    items: list[TResponseInputItem] = [{"role": "user", "content": f"Turn {i}"} for i in range(10)]
    await session.add_items(items)

    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    model.enqueue([get_text_message("Got it")])

    await Runner.run(
        agent,
        "New question",
        session=session,
        run_config=RunConfig(
            session_settings=SessionSettings(limit=2)  # Override to 2
        ),
    )

    # Verify the agent received only the last 2 history items + new question
    last_input = model.calls[-1].input
    # Filter out the new "New question" input
    history_items = [item for item in last_input if item.get("content") != "New question"]
    # Should have 2 history items (last two from the 10 we added)
    assert len(history_items) == 2


def test_the_session_is_the_adapter(make_session: MakeSession) -> None:
    """Added: the fixture hands out the adapter, not openai-agents' own sessions."""
    assert type(make_session("s")) is OpenAIAgentsSession
