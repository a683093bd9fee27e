"""``list``, ``show``, ``tree``, ``rename`` and ``delete``: looking at sessions and tidying them."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .._backend import dumps
from ..conversation import SimpleConversation
from ..errors import SessionNotFoundError
from ..history import inherits, resolve_history
from ..ids import validate_session_id
from ..manager import SessionManager
from ..models import SessionMetadata
from ..protocols import SessionStore
from .output import clean, console, print_json
from .urls import CommandError, on_store

__all__ = ["add_parsers", "all_sessions", "summary"]

_PAGE = 1000
_ABBREVIATED = 240  # characters of a thought, tool call or tool result shown
_ROLE_STYLES = {"user": "bold green", "assistant": "bold blue"}


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
        parent = meta.parent_id or ""
        if parent and meta.detached:
            parent += " (detached)"
        label = clean(meta.label or "")
        table.add_row(meta.id, Text(label), _count(meta), _when(meta.updated), parent)  # text, not markup
    out = console()
    out.print(table if sessions else Text("no sessions"))
    return 0


def _short(value: Any) -> str:
    """A value on one line, cut to ``_ABBREVIATED`` characters."""
    text = value if isinstance(value, str) else dumps(value).decode()
    text = " ".join(clean(text).split())
    return text if len(text) <= _ABBREVIATED else text[: _ABBREVIATED - 1] + "…"


def _block(block: Any) -> Text:
    """One content block, readable: text in full, the rest abbreviated."""
    if not isinstance(block, dict):
        return Text(f"    {_short(block)}")
    kind = block.get("type")
    if kind == "text":
        return Text("    " + clean(str(block.get("text", ""))).replace("\n", "\n    "))
    if kind == "thinking":
        return Text(f"    thinking: {_short(block.get('thought', ''))}", style="dim italic")
    if kind == "tool":
        return Text(f"    → {block.get('tool')}({_short(block.get('params', {}))})", style="cyan")
    if kind == "tool_result":
        return Text(f"    ← {block.get('tool')}: {_short(block.get('result'))}", style="magenta")
    if kind == "raw":
        return Text(f"    [raw {block.get('model_kind')}]", style="dim")
    return Text(f"    [{kind}] {_short(block)}", style="dim")


async def _show(store: SessionStore, args: argparse.Namespace) -> int:
    session_id = validate_session_id(args.id)
    resolved = await resolve_history(store, session_id)
    if resolved is None:
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
    out = console()
    out.print(Text(f"session {meta.id}", style="bold"), Text(clean(meta.label or ""), style="italic"))
    out.print(f"created {_when(meta.created)}, updated {_when(meta.updated)}")
    if meta.parent_id:
        how = f"inherits {resolved.inherited} messages" if inherits(meta) else "detached"
        out.print(f"fork of {meta.parent_id} ({how})")
    out.print(f"{len(resolved.messages)} messages")
    for index, message in enumerate(resolved.messages):
        if index == resolved.inherited and index:
            out.print(Text("── its own messages ──", style="dim"))
        role = message.get("role", "?") if isinstance(message, dict) else "?"
        out.print(Text(f"[{index}] {role}", style=_ROLE_STYLES.get(str(role), "bold")))
        content = message.get("content") if isinstance(message, dict) else message
        for block in content if isinstance(content, list) else [content]:
            out.print(_block(block))
    return 0


def _children(sessions: list[SessionMetadata]) -> tuple[list[str], dict[str, list[SessionMetadata]]]:
    """The roots (no parent, or one not listed) and each session's forks, most recent first."""
    listed = {meta.id for meta in sessions}
    children: dict[str, list[SessionMetadata]] = {}
    roots = []
    for meta in sessions:
        if meta.parent_id in listed and meta.parent_id != meta.id:
            children.setdefault(meta.parent_id or "", []).append(meta)
        else:
            roots.append(meta.id)
    return roots, children


async def _tree(store: SessionStore, args: argparse.Namespace) -> int:
    sessions = await all_sessions(store)
    by_id = {meta.id: meta for meta in sessions}
    roots, children = _children(sessions)
    if args.id is not None:
        if validate_session_id(args.id) not in by_id and await store.load(args.id) is None:
            raise SessionNotFoundError(args.id)
        roots = [args.id] if args.id in by_id else []
    if args.json:
        print_json([_json_tree(root, by_id, children) for root in roots])
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
        node = parent_node.add(label)
        nodes += [(node, fork.id) for fork in reversed(children.get(session_id, []))]
    console().print(top if roots else Text("no sessions"))
    return 0


def _json_tree(
    root: str, by_id: dict[str, SessionMetadata], children: dict[str, list[SessionMetadata]]
) -> dict[str, Any]:
    """``{"id", "label", "children": [...]}`` of ``root``, built without recursion."""
    top: dict[str, Any] = {"id": root, "label": by_id[root].label, "children": []}
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
    async with SessionManager(store, SimpleConversation()) as manager:
        await manager.rename(validate_session_id(args.id), args.label)
    console().print(Text(f"renamed {args.id}: {args.label}"))
    return 0


async def _delete(store: SessionStore, args: argparse.Namespace) -> int:
    session_id = validate_session_id(args.id)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError(f"not deleting {session_id}: confirm with --yes (stdin is not a terminal)")
        answer = console(stderr=True).input(
            f"delete session {session_id}? (its forks keep their history) [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            console(stderr=True).print("not deleted")
            return 1
    async with SessionManager(store, SimpleConversation()) as manager:
        if not await manager.delete(session_id):
            raise SessionNotFoundError(session_id)
    console().print(Text(f"deleted {session_id}"))
    return 0


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``list``, ``show``, ``tree``, ``rename`` and ``delete``."""
    listing = commands.add_parser("list", parents=[common], help="sessions, most recently updated first")
    listing.add_argument("--limit", type=int, help="at most this many")
    listing.add_argument("--offset", type=int, default=0, help="after skipping this many")
    listing.add_argument("--json", action="store_true", help="a JSON array of the sessions' metadata")
    listing.set_defaults(run=on_store(_list, create=False))
    show = commands.add_parser(
        "show", parents=[common], help="a session's history, inherited messages included"
    )
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help='{"id", "metadata", "messages", "inherited"}')
    show.set_defaults(run=on_store(_show, create=False))
    tree = commands.add_parser("tree", parents=[common], help="the fork tree (of one session, with ID)")
    tree.add_argument("id", nargs="?")
    tree.add_argument(
        "--json", action="store_true", help='an array of roots, each {"id", "label", "children"}'
    )
    tree.set_defaults(run=on_store(_tree, create=False))
    rename = commands.add_parser("rename", parents=[common], help="set a session's label")
    rename.add_argument("id")
    rename.add_argument("label")
    rename.set_defaults(run=on_store(_rename, create=False))
    delete = commands.add_parser(
        "delete", parents=[common], help="delete a session (its forks keep their history)"
    )
    delete.add_argument("id")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask")
    delete.set_defaults(run=on_store(_delete, create=False))
