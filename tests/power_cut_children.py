"""The child processes of tests/test_store_power_loss.py: each writes sessions on the
power-cut file system and prints what was acknowledged ("ack ID TEXTS"), what is being written
("saving ID TEXTS"), deleted ("deleting ID") and what was deleted ("gone ID"), one line each,
flushed after the write it reports. Each takes the store's root as its first argument.
"""

from __future__ import annotations

import textwrap

__all__ = ["DELETE_CHILD", "EXPORT_CHILD", "MANAGER_CHILD", "ROOT_CHILD", "SQLITE_CHILD", "STORE_CHILD"]

#: The manager's path: three conversations at once (the group commit), each auto-saving every
#: message. Every fifth message one of them may fork (attached) and go on in the fork, and
#: may then delete the parent (which first writes what the fork inherited into the fork).
MANAGER_CHILD = textwrap.dedent(
    """
    import asyncio, json, random, sys
    from simulacra_session import FileSessionStore, SessionManager, SimpleConversation

    def ack(event):
        texts = [message["content"][0]["text"] for message in event.messages]
        print("ack", json.dumps([event.id, texts]), flush=True)

    async def converse(store, name, seed):
        rng = random.Random(seed)
        with SimpleConversation() as conversation:
            async with SessionManager(store, conversation) as session:
                session.on("save", ack)
                session.start_new(name)
                for i in range(10**6):
                    role = "user" if i % 2 == 0 else "assistant"
                    text = f"{name} {i} " + "x" * rng.randrange(300)
                    conversation.append({"role": role, "content": [{"type": "text", "text": text}]})
                    await session.flush()
                    if i % 5 == 4 and rng.random() < 0.5:
                        parent = session.current_session_id
                        await session.fork(parent)
                        if rng.random() < 0.4:
                            print("deleting", json.dumps(parent), flush=True)
                            await session.delete(parent)
                            print("gone", json.dumps(parent), flush=True)

    async def main(root, file_format, seed):
        store = FileSessionStore(root, format=file_format)
        await asyncio.gather(*(converse(store, f"c{n}", seed * 3 + n) for n in range(3)))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)

#: The store's own operations, one after another: whole saves (the atomic rewrite), appends
#: (label changes with them), truncations, compactions, conversions between the formats and
#: deletions, on ids in both cases (the first with capitals probes the root). With "both",
#: each step takes the store of either format, whose saves convert a session too.
STORE_CHILD = textwrap.dedent(
    """
    import asyncio, json, random, sys
    from simulacra_session import FileSessionStore
    from simulacra_session.stores.file.restore import compact

    def message(text):
        return {"role": "user", "content": [{"type": "text", "text": text}]}

    async def main(root, file_format, seed):
        formats = ["jsonl", "json"] if file_format == "both" else [file_format]
        stores = [FileSessionStore(root, format=name) for name in formats]
        rng = random.Random(seed)
        sessions = {}
        for step in range(10**6):
            store = rng.choice(stores)
            sid = rng.choice(["s0", "s1", "s2", "S3", "Four", "five"])
            texts = sessions.get(sid)
            roll = rng.random()
            if texts is not None and roll < 0.12:
                print("deleting", json.dumps(sid), flush=True)
                await store.delete(sid)
                del sessions[sid]
                print("gone", json.dumps(sid), flush=True)
                continue
            if texts is None or roll < 0.35:
                texts = [f"{sid} {step} {n} " + "y" * rng.randrange(500) for n in range(rng.randrange(1, 8))]
                write = store.save(sid, [message(text) for text in texts], {"label": f"step {step}"})
            elif roll < 0.45 and len(texts) > 1:
                cut = rng.randrange(1, len(texts))  # the last ``cut`` messages go
                texts = texts[:-cut]
                write = store.truncate(sid, cut)
            elif roll < 0.55:
                write = compact(store, sid)
            elif roll < 0.65:
                write = store.convert(sid, rng.choice(["jsonl", "json"]))
            else:
                new = [f"{sid} {step} +{n}" for n in range(rng.randrange(1, 3))]
                write = store.append(sid, [message(text) for text in new], {"label": f"step {step}"})
                texts = texts + new
            print("saving", json.dumps([sid, texts]), flush=True)
            await write
            sessions[sid] = texts
            print("ack", json.dumps([sid, texts]), flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


#: Deletes: a fork's (its file and its link in the parent's fork index both go, durably);
#: then two deletes run again after a first one was cut short past its unlinks, before its
#: syncs (the names gone, not durably): the second must make that durable too.
DELETE_CHILD = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from simulacra_session import FileSessionStore

    async def delete(store, session_id):
        print("deleting", json.dumps(session_id), flush=True)
        await store.delete(session_id)
        print("gone", json.dumps(session_id), flush=True)

    async def main(root, file_format):
        store = FileSessionStore(root, format=file_format)
        message = {"role": "user", "content": [{"type": "text", "text": "p"}]}
        await store.save("parent", [message], {})
        print("ack", json.dumps(["parent", ["p"]]), flush=True)
        for fork in ("fork", "again"):
            await store.save(fork, [], {"parent_id": "parent"})
        await store.save("solo", [message], {})
        await delete(store, "fork")
        os.unlink(os.path.join(root, "parent-forks", "again." + file_format))
        os.unlink(os.path.join(root, "solo." + file_format))
        await delete(store, "again")
        await delete(store, "solo")
        time.sleep(600)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


#: A root another process has just made (its entry in its parent not yet synced): the
#: store's first save there makes it durable too.
ROOT_CHILD = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from simulacra_session import FileSessionStore

    async def main(root):
        os.mkdir(os.path.join(root, "made"))
        store = FileSessionStore(os.path.join(root, "made"))
        await store.save("s", [{"role": "user", "content": [{"type": "text", "text": "p"}]}])
        print("ack", json.dumps(["s", ["p"]]), flush=True)
        time.sleep(600)

    asyncio.run(main(sys.argv[1]))
    """
)


#: ``export -o FILE`` where FILE's directory takes no new file (no temp file beside it: here
#: its making is refused, as in a directory the user may not write): written in place, it must
#: be synced before the command succeeds. FILE was there, durably, before.
EXPORT_CHILD = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from simulacra_session import FileSessionStore
    from simulacra_session.cli import main

    real_open = os.open

    def no_temp_file(path, *args, **kwargs):  # the export's temp file beside it, refused
        if os.path.basename(path).startswith(".backup."):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    root = sys.argv[1]
    backup = os.path.join(root, "exports", "backup")
    os.mkdir(os.path.dirname(backup))
    with open(backup, "wb") as file:
        file.write(b"yesterday's backup")
        os.fsync(file.fileno())
    for directory in (os.path.dirname(backup), root):
        fd = os.open(directory, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    message = {"role": "user", "content": [{"type": "text", "text": "p"}]}
    asyncio.run(FileSessionStore(root).save("s", [message]))
    print("ack", json.dumps(["s", ["p"]]), flush=True)
    os.open = no_temp_file
    assert main(["--store", root, "export", "-o", backup]) == 0
    print("exported", flush=True)
    time.sleep(600)
    """
)


#: The manager's auto-saves into SQLite (``SqlSessionStore``), three conversations at once, on
#: a connection whose ``synchronous`` starts as ``OFF``: as on a build of SQLite whose default
#: does not sync every commit; the store must set its own.
SQLITE_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    import sqlalchemy as sa
    from simulacra_session import SessionManager, SimpleConversation
    from simulacra_session.stores.sql import SqlSessionStore

    def ack(event):
        texts = [message["content"][0]["text"] for message in event.messages]
        print("ack", json.dumps([event.id, texts]), flush=True)

    def weak_default(connection, record):
        connection.execute("PRAGMA synchronous=OFF")

    async def converse(store, name):
        with SimpleConversation() as conversation:
            async with SessionManager(store, conversation) as session:
                session.on("save", ack)
                session.start_new(name)
                for i in range(10**6):
                    text = {"type": "text", "text": f"{name} {i} " + "x" * (i * 37 % 300)}
                    conversation.append({"role": "user", "content": [text]})
                    await session.flush()

    async def main(root):
        store = SqlSessionStore(f"sqlite:///{root}/sessions.db")
        sa.event.listen(store.engine, "connect", weak_default, insert=True)
        await asyncio.gather(*(converse(store, f"c{n}") for n in range(3)))

    asyncio.run(main(sys.argv[1]))
    """
)
