"""A ``SessionManager`` forking on the store: attached and detached forks (deep chains,
cycles), ``delete`` keeping the forks' history, ``rename``, and child conversations. Each
failure names the manager's contract."""

from __future__ import annotations

from ..conversation import SimpleConversation
from ..errors import CorruptSessionError, SessionNotFoundError
from ..manager import SessionManager
from ..models import CheckpointState
from ..protocols import SessionStore
from .helpers import StoreFixture, assistant, msg, raises, run, texts

__all__ = ["ManagerForkConformance"]

ATTACHED = "SessionManager.fork (attached) stores only the fork's own messages and inherits the rest"
DETACHED = "SessionManager.fork(detached=True) keeps the conversation's messages and inherits none"
RESOLVE = "SessionManager.load resolves a fork to its parent's history at the fork, then its own"
DELETE = "SessionManager.delete removes the session and keeps its forks' history"
RENAME = "SessionManager.rename sets the label of any stored session, keeping its messages"
CHILDREN = "SessionManager saves each child conversation as a detached fork of the parent session"


class ManagerForkConformance(StoreFixture):
    """Forks, ``delete``, ``rename`` and child conversations."""

    # -- forks ----------------------------------------------------------------------------

    def test_attached_fork_stores_only_its_own_messages(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            parent = manager.start_new()
            conversation.extend([msg("p1"), assistant("p2")])
            await manager.flush()
            fork = await manager.fork(parent)
            assert manager.current_session_id == fork, f"{ATTACHED}: the fork becomes current"
            assert texts(conversation.messages) == ["p1", "p2"], f"{ATTACHED}: the conversation keeps them"
            conversation.append(msg("f1"))
            await manager.flush()
            stored = await store.load(fork)
            assert stored is not None, f"{ATTACHED}: the fork is missing"
            assert texts(stored.messages) == ["f1"], f"{ATTACHED}: its stored messages"
            meta = stored.metadata
            assert meta.parent_id == parent, f"{ATTACHED}: parent_id"
            assert meta.fork_message_count == 2, f"{ATTACHED}: fork_message_count"
            assert meta.fork_message_id == conversation.messages[1]["id"], f"{ATTACHED}: fork_message_id"
            assert not meta.detached, f"{ATTACHED}: not detached"
            assert [m.id for m in await manager.forks(parent)] == [fork], f"{ATTACHED}: listed by forks()"

        run(scenario())

    def test_fork_resolves_to_parent_history_at_fork_time_without_ids(self, store: SessionStore) -> None:
        # messages without ids: the original library would inherit whatever the parent grows to
        async def scenario() -> None:
            await store.save("parent", [msg("p1"), msg("p2")])
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation, auto_save=False)
            fork = await manager.fork("parent")
            await store.save("parent", [msg("p1"), msg("p2"), msg("p3 later")])
            other = SimpleConversation()
            await SessionManager(store, other).load(fork)
            assert texts(other.messages) == ["p1", "p2"], f"{RESOLVE}: parent messages without ids"

        run(scenario())

    def test_fork_of_missing_parent(self, store: SessionStore) -> None:
        async def scenario() -> None:
            manager = SessionManager(store, SimpleConversation())
            missing = "SessionManager.fork of a missing session raises SessionNotFoundError"
            with raises(SessionNotFoundError, missing, match="ghost"):
                await manager.fork("ghost")

        run(scenario())

    def test_deep_fork_chain_resolves_without_recursion(self, store: SessionStore) -> None:
        # deeper than a resolver taking a few frames per fork could climb; saved as the
        # manager saves forks (parent_id, fork_message_count, fork_message_id), at one store
        # call a level
        async def scenario() -> None:
            depth = 300
            await store.save("level-0", [msg("level 0", id="m0")])
            for level in range(1, depth):
                fork = {"parent_id": f"level-{level - 1}", "fork_message_count": level}
                fork["fork_message_id"] = f"m{level - 1}"
                await store.save(f"level-{level}", [msg(f"level {level}", id=f"m{level}")], fork)
            other = SimpleConversation()
            await SessionManager(store, other).load(f"level-{depth - 1}")
            assert texts(other.messages) == [f"level {level}" for level in range(depth)], (
                f"{RESOLVE}: a chain of {depth} forks"
            )

        run(scenario())

    def test_fork_cycle_is_corrupt(self, store: SessionStore) -> None:
        async def scenario() -> None:
            await store.save("a", [msg("a")], {"parent_id": "b"})
            await store.save("b", [msg("b")], {"parent_id": "a"})
            cycle = "SessionManager.load raises CorruptSessionError on a cycle of forks"
            with raises(CorruptSessionError, cycle, match="cycle"):
                await SessionManager(store, SimpleConversation()).load("a")

        run(scenario())

    def test_detached_fork(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            parent = manager.start_new()
            conversation.checkpoint_state = CheckpointState(message_id="x", summary="sum")
            conversation.append(msg("parent msg"))
            await manager.flush()
            side = SimpleConversation([msg("own start")])
            side_manager = SessionManager(store, side)
            fork = await side_manager.fork(parent, detached=True)
            assert texts(side.messages) == ["own start"], f"{DETACHED}: the conversation's messages"
            assert side.checkpoint_state == CheckpointState(message_id="x", summary="sum"), (
                f"{DETACHED}: the parent's checkpoint state is copied"
            )
            stored = await store.load(fork)
            assert stored is not None, f"{DETACHED}: the fork is missing"
            assert stored.metadata.detached is True, f"{DETACHED}: detached"
            assert stored.metadata.parent_id == parent, f"{DETACHED}: parent_id"
            assert texts(stored.messages) == ["own start"], f"{DETACHED}: its stored messages"
            other = SimpleConversation()
            await SessionManager(store, other).load(fork)
            assert texts(other.messages) == ["own start"], f"{DETACHED}: loaded, it inherits nothing"

        run(scenario())

    def test_attached_fork_copies_checkpoint_state(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            parent = manager.start_new()
            conversation.checkpoint_state = CheckpointState(message_id="c", summary="s")
            conversation.append(msg("x"))
            await manager.flush()
            fresh = SimpleConversation()
            fork = await SessionManager(store, fresh).fork(parent)
            stored = await store.load(fork)
            state = CheckpointState(message_id="c", summary="s")
            assert stored is not None, f"{ATTACHED}: the fork is missing"
            assert stored.metadata.checkpoint_state == state, f"{ATTACHED}: the parent's checkpoint is stored"
            assert fresh.checkpoint_state == state, f"{ATTACHED}: the conversation gets it"

        run(scenario())

    # -- delete and rename ----------------------------------------------------------------

    def test_delete_keeps_fork_history(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            root = manager.start_new()
            conversation.extend([msg("r1"), assistant("r2")])
            await manager.flush()
            child = await manager.fork(root)
            conversation.append(msg("c1"))
            await manager.flush()
            grandchild = await manager.fork(child)
            conversation.append(msg("g1"))
            await manager.flush()
            before = {}
            for session_id in (child, grandchild):
                probe = SimpleConversation()
                await SessionManager(store, probe).load(session_id)
                before[session_id] = texts(probe.messages)

            deleter = SessionManager(store, SimpleConversation())
            assert await deleter.delete(root) is True, f"{DELETE}: True when it existed"
            assert await store.load(root) is None, f"{DELETE}: the session is still stored"
            for session_id, expected in before.items():
                probe = SimpleConversation()
                await SessionManager(store, probe).load(session_id)
                assert texts(probe.messages) == expected, f"{DELETE}: a fork's history changed"
            assert await deleter.delete(root) is False, f"{DELETE}: False when it did not exist"

        run(scenario())

    def test_delete_current_session(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            session_id = manager.start_new()
            conversation.append(msg("bye"))
            current = f"{DELETE}; deleting the current session unloads and clears the conversation"
            assert await manager.delete(session_id) is True, f"{current}: delete returned False"
            assert manager.current_session_id is None, f"{current}: it is still current"
            assert not manager.is_loaded, f"{current}: the manager is still loaded"
            assert conversation.messages == (), f"{current}: the conversation is not cleared"
            assert await store.load(session_id) is None, f"{current}: the session is still stored"

        run(scenario())

    def test_rename_other_session_and_missing(self, store: SessionStore) -> None:
        async def scenario() -> None:
            await store.save("other", [msg("keep me")], {"label": "old"})
            manager = SessionManager(store, SimpleConversation())
            await manager.rename("other", "new")
            stored = await store.load("other")
            assert stored is not None, f"{RENAME}: the session is missing"
            assert stored.metadata.label == "new", f"{RENAME}: the label"
            assert texts(stored.messages) == ["keep me"], f"{RENAME}: the messages"
            with raises(SessionNotFoundError, f"{RENAME}; a missing session raises SessionNotFoundError"):
                await manager.rename("missing", "x")
            with raises(ValueError, f"{RENAME}; an empty label raises ValueError", match="label"):
                await manager.rename("other", "")

        run(scenario())

    # -- children -------------------------------------------------------------------------

    def test_child_conversations_get_detached_fork_sessions(self, store: SessionStore) -> None:
        async def scenario() -> None:
            conversation = SimpleConversation()
            manager = SessionManager(store, conversation)
            parent = manager.start_new()
            conversation.append(msg("parent talk"))
            child = conversation.spawn_child()
            child.append(msg("child task: look things up"))
            checkpoint = conversation.spawn_child(is_checkpoint=True)
            checkpoint.append(msg("summarize everything"))
            await manager.flush()
            forks = await manager.forks(parent)
            assert len(forks) == 2, f"{CHILDREN}: two children, two forks"
            by_checkpoint = {bool(meta.is_checkpoint): meta for meta in forks}
            assert set(by_checkpoint) == {False, True}, f"{CHILDREN}: one child, one checkpoint child"
            child_meta, checkpoint_meta = by_checkpoint[False], by_checkpoint[True]
            assert child_meta.detached is True, f"{CHILDREN}: detached"
            assert child_meta.label == "child task: look things up", f"{CHILDREN}: labelled from its text"
            assert checkpoint_meta.label is None, f"{CHILDREN}: a checkpoint child gets no label"
            stored = await store.load(child_meta.id)
            assert stored is not None, f"{CHILDREN}: the child's session is missing"
            assert texts(stored.messages) == ["child task: look things up"], f"{CHILDREN}: its messages"
            assert len(manager.children) == 2, f"{CHILDREN}: the manager holds both"
            child.dispose()
            assert len(manager.children) == 1, f"{CHILDREN}: a disposed child is released"
            child.append(msg("after dispose"))  # no longer saved
            await manager.flush()
            stored = await store.load(child_meta.id)
            assert stored is not None, f"{CHILDREN}: the child's session is missing"
            assert len(stored.messages) == 1, f"{CHILDREN}: a disposed child is no longer saved"

        run(scenario())
