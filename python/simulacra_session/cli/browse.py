"""``list``, ``show``, ``tree``, ``rename`` and ``delete``: looking at sessions and tidying them.

The parser (``commands``) names these handlers and imports this module when one of them runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .._backend import dumps
from ..conversation import SimpleConversation
from ..errors import ConflictError, SessionNotFoundError
from ..history import inherits, resolve_history
from ..ids import validate_session_id
from ..manager import SessionManager
from ..models import SessionMetadata
from ..protocols import SessionStore
from .output import clean, named
from .prefixes import by_prefix, full_id
from .printing import console, print_json
from .urls import CommandError

__all__ = ["all_sessions", "summary"]

_PAGE = 1000
T = TypeVar("T")
_TRIES = 20  # reads of a session written meanwhile before a rename or delete gives up
_ABBREVIATED = 240  # characters of a thought, tool call or tool result shown
_ROLE_STYLES = {"user": "bold green", "assistant": "bold blue"}
#: Blocks shown as text in full: this library's, openai-agents', pydantic-ai's prompts and answers.
_TEXT_KINDS = frozenset({None, "text", "input_text", "output_text", "user-prompt", "system-prompt"})
#: Where a tool call keeps its arguments: LangChain and pydantic-ai, openai-agents, Claude.
_CALL_ARGUMENTS = ("args", "arguments", "input")


def summary(meta: SessionMetadata) -> dict[str, Any]:
    """A session in ``list --json``: ``id``, ``label``, ``created_at``, ``updated_at``,
    ``message_count``, ``parent_id`` (``null`` when unset), then every other metadata key."""
    return {"id": meta.id, "label": None, "parent_id": None, **meta.to_json_dict()}


async def all_sessions(store: SessionStore) -> list[SessionMetadata]:
    """Every session's metadata, most recent first, read a page at a time."""
    found: list[SessionMetadata] = []
    while True:
        page = await store.list(limit=_PAGE, offset=len(found))
        found += page
        if len(page) < _PAGE:
            return found


def _when(instant: datetime) -> str:
    """An instant to the second, in UTC."""
    return instant.strftime("%Y-%m-%d %H:%M:%SZ")


def _count(meta: SessionMetadata) -> str:
    """Messages stored, and those an attached fork inherits."""
    inherited = meta.fork_message_count if inherits(meta) else None
    return f"{meta.message_count} (+{inherited})" if inherited else str(meta.message_count)


async def _list(store: SessionStore, args: argparse.Namespace) -> int:
    sessions = await store.list(limit=args.limit, offset=args.offset)
    if args.json:
        print_json([summary(meta) for meta in sessions])
        return 0
    longest = max((len(meta.id) for meta in sessions), default=2)
    table = Table(box=None, header_style="bold")
    table.add_column("id", no_wrap=True, min_width=min(longest, 36))
    table.add_column("label")
    table.add_column("messages", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    table.add_column("parent", no_wrap=True, overflow="fold")
    for meta in sessions:
        parent = clean(meta.parent_id or "")  # as read: a hand-made .json document may hold anything
        if parent and meta.detached:
            parent += " (detached)"
        cells = (meta.id, clean(meta.label or ""), _count(meta), _when(meta.updated), parent)
        table.add_row(*(Text(cell) for cell in cells))  # text, not markup
    out = console()
    out.print(table if sessions else Text("no sessions"))
    return 0


def _short(value: Any) -> str:
    """A value on one line, cut to ``_ABBREVIATED`` characters."""
    text = value if isinstance(value, str) else dumps(value).decode()
    text = " ".join(clean(text).split())
    return text if len(text) <= _ABBREVIATED else text[: _ABBREVIATED - 1] + "…"


def _full(text: str) -> Text:
    """Text in full, indented."""
    return Text("    " + clean(text).replace("\n", "\n    "))


def _block(block: Any) -> Text:
    """One content block (or pydantic-ai part), readable: text in full, the rest abbreviated."""
    if isinstance(block, str):
        return _full(block)
    if not isinstance(block, dict):
        return Text(f"    {_short(block)}")
    kind = block.get("type", block.get("part_kind"))
    text = next((block[key] for key in ("text", "content") if isinstance(block.get(key), str)), None)
    if text is not None and kind in _TEXT_KINDS:
        return _full(text)
    if kind == "thinking":
        thought = next((block[key] for key in ("thought", "thinking", "content") if key in block), "")
        return Text(f"    thinking: {_short(thought)}", style="dim italic")
    if kind == "tool":
        return Text(f"    → {_short(block.get('tool'))}({_short(block.get('params', {}))})", style="cyan")
    if kind == "tool_result":
        return Text(f"    ← {_short(block.get('tool'))}: {_short(block.get('result'))}", style="magenta")
    if kind == "raw":
        return Text(f"    [raw {_short(block.get('model_kind'))}]", style="dim")
    name = block.get("name", block.get("tool_name"))
    arguments = next((block[key] for key in _CALL_ARGUMENTS if key in block), None)
    if isinstance(name, str) and arguments is not None:  # a tool call, whoever wrote it
        return Text(f"    → {_short(name)}({_short(arguments)})", style="cyan")
    if kind is None:
        return Text(f"    {_short(block)}", style="dim")
    rest = {key: value for key, value in block.items() if key not in ("type", "part_kind")}
    return Text(f"    [{_short(kind)}] {_short(rest)}", style="dim")


def _parts(message: Any) -> tuple[str, list[Any]]:
    """A message's heading (its role, type or kind) and its blocks, for the shapes stores and
    integrations keep: ``role`` and ``content`` (this library's, openai-agents' messages),
    ``{"type", "data": {"content", "tool_calls"}}`` (LangChain), ``{"type", "message":
    {"content"}}`` (Claude Agent SDK), ``{"kind", "parts"}`` (pydantic-ai); anything else (an
    openai-agents function call, say) is one block, itself."""
    if not isinstance(message, dict):
        return "?", [message]
    heading = next(
        (message[key] for key in ("role", "type", "kind") if isinstance(message.get(key), str)), "?"
    )
    for holder in (message, message.get("data"), message.get("message")):
        if isinstance(holder, dict) and "content" in holder:
            content, calls = holder["content"], holder.get("tool_calls")
            blocks = content if isinstance(content, list) else [content]
            return heading, blocks + (calls if isinstance(calls, list) else [])
    if isinstance(message.get("parts"), list):
        return heading, message["parts"]
    return heading, [message]


async def _show(store: SessionStore, args: argparse.Namespace) -> int:
    session_id = validate_session_id(args.id)
    resolved = await resolve_history(store, session_id)
    if resolved is None:  # no session has it as its id: a prefix of one
        session_id = await by_prefix(store, session_id)
        resolved = await resolve_history(store, session_id)
    if resolved is None:  # deleted meanwhile
        raise SessionNotFoundError(session_id)
    meta = resolved.stored.metadata
    if args.json:
        print_json(
            {
                "id": meta.id,
                "metadata": meta.to_json_dict(),
                "messages": resolved.messages,
                "inherited": resolved.inherited,
            }
        )
        return 0
    out = console()  # every value as text, not markup: stored values may hold [brackets]
    out.print(Text(f"session {meta.id}", style="bold"), Text(clean(meta.label or ""), style="italic"))
    out.print(Text(f"created {_when(meta.created)}, updated {_when(meta.updated)}"))
    if meta.parent_id:
        how = f"inherits {resolved.inherited} messages" if inherits(meta) else "detached"
        out.print(Text(f"fork of {clean(meta.parent_id)} ({how})"))
    out.print(Text(f"{len(resolved.messages)} messages"))
    for index, message in enumerate(resolved.messages):
        if index == resolved.inherited and index:
            out.print(Text("── its own messages ──", style="dim"))
        role, blocks = _parts(message)
        out.print(Text(f"[{index}] {clean(role)}", style=_ROLE_STYLES.get(role, "bold")))
        for block in blocks:
            out.print(_block(block))
    return 0


def _children(
    sessions: list[SessionMetadata],
) -> tuple[list[str], dict[str, list[SessionMetadata]], set[str]]:
    """The roots, each session's forks (most recent first), and the roots in a fork cycle.

    A root has no parent, or one not listed. A fork cycle (its parents lead back to it: the
    store is damaged) has no root, so one of its sessions is made one, for every session
    listed to be in the tree."""
    listed = {meta.id: meta.parent_id for meta in sessions}
    children: dict[str, list[SessionMetadata]] = {}
    roots = []
    for meta in sessions:
        if meta.parent_id in listed and meta.parent_id != meta.id:
            children.setdefault(meta.parent_id or "", []).append(meta)
        else:
            roots.append(meta.id)
    reached = _reached(roots, children, set())
    cycles = set()
    for meta in sessions:
        if meta.id not in reached:  # in a cycle, or under one: go up to a session in the cycle
            current, path = meta.id, set()
            while current not in path:
                path.add(current)
                current = listed[current] or ""
            cycles.add(current)
            roots.append(current)
            reached = _reached([current], children, reached)
    return roots, children, cycles


def _reached(starts: list[str], children: dict[str, list[SessionMetadata]], reached: set[str]) -> set[str]:
    """``reached`` and every session ``starts`` and their forks lead to."""
    pending = list(starts)
    reached.update(starts)
    while pending:
        for fork in children.get(pending.pop(), []):
            if fork.id not in reached:
                reached.add(fork.id)
                pending.append(fork.id)
    return reached


async def _tree(store: SessionStore, args: argparse.Namespace) -> int:
    sessions = await all_sessions(store)
    by_id = {meta.id: meta for meta in sessions}
    roots, children, cycles = _children(sessions)
    if args.id is not None:
        session_id = validate_session_id(args.id)
        if session_id not in by_id and await store.load(session_id) is None:
            session_id = await by_prefix(store, session_id, by_id)  # among the sessions listed
        roots = [session_id] if session_id in by_id else []
    if args.json:
        print_json([_json_tree(root, by_id, children, root in cycles) for root in roots])
        return 0
    top = Tree(Text("sessions", style="bold"), guide_style="dim")
    nodes = [(top, root) for root in reversed(roots)]
    seen: set[str] = set()
    while nodes:
        parent_node, session_id = nodes.pop()
        if session_id in seen:
            continue
        seen.add(session_id)
        meta = by_id[session_id]
        label = Text(meta.id, style="bold")
        label.append(f"  {clean(meta.label or '')}")
        label.append(f"  {_count(meta)} messages, {_when(meta.updated)}", style="dim")
        if meta.parent_id and meta.detached:
            label.append("  detached", style="yellow")
        if session_id in cycles and parent_node is top:
            label.append(
                f"  fork cycle: its parent {clean(meta.parent_id or '')} leads back to it", style="red"
            )
        node = parent_node.add(label)
        nodes += [(node, fork.id) for fork in reversed(children.get(session_id, []))]
    console().print(top if roots else Text("no sessions"))
    return 0


def _json_tree(
    root: str, by_id: dict[str, SessionMetadata], children: dict[str, list[SessionMetadata]], cycle: bool
) -> dict[str, Any]:
    """``{"id", "label", "children": [...]}`` of ``root`` (``"cycle": true`` too when it is in a
    fork cycle), built without recursion."""
    top: dict[str, Any] = {"id": root, "label": by_id[root].label, "children": []}
    if cycle:
        top["cycle"] = True
    pending = [(top, root)]
    seen = {root}
    while pending:
        node, session_id = pending.pop()
        for fork in children.get(session_id, []):
            if fork.id not in seen:
                seen.add(fork.id)
                child: dict[str, Any] = {"id": fork.id, "label": fork.label, "children": []}
                node["children"].append(child)
                pending.append((child, fork.id))
    return top


async def _rename(store: SessionStore, args: argparse.Namespace) -> int:
    """Set the label. A session an agent writes meanwhile is read again and the label set on
    what it holds then (the store refuses a save from a stale read: ``ConflictError``), up to
    ``_TRIES`` times. An id no session has is taken for a prefix of one, once the rename found
    no such session (it costs nothing more when one has it)."""
    session_id = validate_session_id(args.id)

    async def rename(session_id: str) -> None:
        await _read_again_on_conflict(store, lambda manager: manager.rename(session_id, args.label))

    try:
        await rename(session_id)
    except SessionNotFoundError as error:
        if error.session_id != session_id:
            raise
        session_id = await by_prefix(store, session_id)
        await rename(session_id)
    console().print(Text(f"renamed {session_id}: {clean(args.label)}"))
    return 0


async def _delete(store: SessionStore, args: argparse.Namespace) -> int:
    """Delete the session, once confirmed: the id (a prefix's, see ``prefixes``) is found first,
    for the question to name the session it deletes."""
    session_id = await full_id(store, args.id)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError(f"not deleting {session_id}: confirm with --yes (stdin is not a terminal)")
        answer = _answer(Text(f"delete session {session_id}? (its forks keep their history) [y/N] "))
        if answer.strip().lower() not in ("y", "yes"):
            console(stderr=True).print(Text("not deleted"))
            return 1
    # a fork written meanwhile (what it inherits is written into it before the parent goes)
    if not await _read_again_on_conflict(store, lambda manager: manager.delete(session_id)):
        raise SessionNotFoundError(session_id)
    console().print(Text(f"deleted {session_id}"))
    return 0


def _answer(question: Text) -> str:
    """The line typed on the terminal after ``question``: none (Ctrl-D) is no answer, a read
    that fails (the terminal hung up) names stdin, never taken for the store's."""
    try:
        return console(stderr=True).input(question)
    except EOFError:
        console(stderr=True).print()  # the next line starts on its own, as after Enter
        return ""
    except OSError as error:
        raise named(error, "stdin") from error


async def _read_again_on_conflict(store: SessionStore, work: Callable[[SessionManager], Awaitable[T]]) -> T:
    """``work`` through a manager of its own, run again (reading afresh) when another writer's
    save comes between its read and its write (``ConflictError``), up to ``_TRIES`` times."""
    for tries_left in range(_TRIES - 1, -1, -1):
        try:
            async with SessionManager(store, SimpleConversation()) as manager:
                return await work(manager)
        except ConflictError:
            if not tries_left:
                raise
    raise AssertionError("unreachable: the last try returns or raises")
