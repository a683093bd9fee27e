"""A mutant of the residue contract (``simulacra_session.testing.store_residue``), opened in
its writer's process as ``"residue_mutants:<name>"``: kept out of the test modules so that
the writer imports the store and nothing more."""

from __future__ import annotations

import time
from pathlib import Path

from residue_stores import LeakyStore

#: How old a file of an unfinished save must be before ``AgeSweepStore`` removes it.
SWEEP_AGE = 3600.0


class AgeSweepStore(LeakyStore):
    """``LeakyStore`` with a sweep on open that spares the files of saves that may be under way
    in another process: only those older than an hour go, so what a writer killed a moment
    ago left stays (until an hour later, when nobody opens the store again)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        cutoff = time.time() - SWEEP_AGE
        for leak in Path(root).glob(".*.leak"):
            if leak.stat().st_mtime < cutoff:
                leak.unlink(missing_ok=True)
