"""Moving sessions between stores with everything they hold: export, import and copy.

Ids, ``created_at``, ``updated_at``, labels, every metadata key, fork links and checkpoint
state are kept (written with ``RestorableSessionStore.restore``), so the target lists the
sessions in the source's "most recent first" order. Sessions stream one at a time: memory
holds one session and the ids of all of them, whatever their number.

The export is JSON Lines, UTF-8, one JSON value a line::

    {"format": "simulacra-session-export", "version": 1, "sessions": N, "exported_at": "..."}
    {"id": "...", "metadata": {...}, "messages": [...]}      one line per session

``metadata`` is the session's metadata as stores keep it (without ``id``); ``messages`` its
own messages (an attached fork's inherited ones stay with its parent). Parents come before
their forks. A fork whose parent is gone but whose store kept a copy of what it inherits
(``StoredSession.parent_copy``) is written with that copy, detached, so no history is lost.

``on_conflict`` says what happens to a session the target holds already: ``"error"`` (the
default) writes nothing at all and raises ``SessionExistsError``; ``"skip"`` keeps the
target's, which also finishes what an interrupted run left; ``"replace"`` overwrites it.
Where the target refuses an id because another differing only in case holds its name (a
file store on a case-insensitive file system: ``CaseClashError``), ``"skip"`` passes over
it, and its attached forks (they would lose what they inherit), each with a warning; the
others raise there, overwriting nothing of the other id's, after the sessions before it.

Sessions are listed a page at a time: moving a store in use, a session saved meanwhile can
be missed (run again with ``"skip"`` to pick it up) or move in its newer state, and one deleted
meanwhile is left out (the forks it leaves move with the history its delete wrote into them).

A copy's store failure is a ``CopyStoreError`` saying which store failed: the source or the
target. Output is written whole: a pipe whose reader left mid-write raises
``BrokenPipeError``, never cuts an export short unseen (``write_all``).
"""

from __future__ import annotations

from ._export_file import EXPORT_FORMAT, EXPORT_VERSION
from ._transfer_copy import CopyStoreError, copy_sessions
from ._transfer_export import Writable, export_records, export_sessions, write_all
from ._transfer_import import import_sessions
from ._transfer_plan import Progress, Unreadable
from ._transfer_target import OnConflict, SessionExistsError, TransferResult

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "CopyStoreError",
    "OnConflict",
    "Progress",
    "SessionExistsError",
    "TransferResult",
    "Unreadable",
    "Writable",
    "copy_sessions",
    "export_records",
    "export_sessions",
    "import_sessions",
    "write_all",
]
