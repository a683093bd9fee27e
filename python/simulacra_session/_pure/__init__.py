"""Pure-Python twin of ``simulacra_session._native``: the same functions and classes, bytes, results
and exception types, one module per native job module (``json``, ``fs``, ``sync``, ``slug``).
Messages name the same fault and position where they can: JSON syntax errors and argument
conversions keep each twin's own wording (see ``_native.pyi``).

Used when the compiled extension is unavailable or ``SIMULACRA_SESSION_PURE=1``; the stub
``_native.pyi`` documents the contract, and this package is its executable reference.
"""

from .fs import atomic_write, link_fork, stamps
from .json import commit_checksum, copy_json, dumps, loads, loads_lines, record_checksum, verify_records
from .slug import derive_slug
from .sync import CommitChannel, Committer, sync_files

__all__ = [
    "CommitChannel",
    "Committer",
    "atomic_write",
    "commit_checksum",
    "copy_json",
    "derive_slug",
    "dumps",
    "link_fork",
    "loads",
    "loads_lines",
    "record_checksum",
    "stamps",
    "sync_files",
    "verify_records",
]
