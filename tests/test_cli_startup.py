"""The command starts light: ``--version``, ``--help``, ``COMMAND --help`` and a usage error
(exit 2) import the parser alone, never a command's handler nor what it needs (rich, the
transfer code, SQLAlchemy, statistics). What ``import simulacra_session`` imports itself is
the floor: each check is of the modules the command line adds to it, so pydantic, asyncio and
logging are checked too once the package's ``__init__`` no longer imports them. One
interpreter runs every case, the modules a case added removed before the next."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import simulacra_session

#: Never imported to parse the command line (a module and its submodules).
_HEAVY = (
    "asyncio",
    "dataclasses",
    "email",
    "hashlib",
    "importlib.metadata",
    "logging",
    "pydantic",
    "rich",
    "sqlalchemy",
    "statistics",
    "simulacra_session.cli.bench",
    "simulacra_session.cli.browse",
    "simulacra_session.cli.care",
    "simulacra_session.cli.export_output",
    "simulacra_session.cli.logged",
    "simulacra_session.cli.moves",
    "simulacra_session.cli.printing",
    "simulacra_session.doctor",
    "simulacra_session.manager",
    "simulacra_session.models",
    "simulacra_session.stores",
    "simulacra_session.transfer",
)

#: Run in a fresh interpreter: for each command line (JSON argv list), its exit status, what it
#: printed and the modules it added to the package's own (removed again before the next).
_STARTED = """
import contextlib, io, json, sys
import simulacra_session
from simulacra_session.cli import main
results = []
for argv in json.loads(sys.argv[2]):
    before = set(sys.modules)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        try:
            status = main(argv)
        except SystemExit as exit:
            status = exit.code
    added = sorted(set(sys.modules) - before)
    for name in added:
        del sys.modules[name]
    results.append({"status": status, "printed": printed.getvalue(), "added": added})
with open(sys.argv[1], "w") as out:
    json.dump(results, out)
"""


def _started(tmp_path: Path, *argvs: list[str]) -> list[dict[str, Any]]:
    """What each command line gave (``_STARTED``), in one new interpreter."""
    result = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, "-c", _STARTED, str(result), json.dumps(argvs)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.exists(), done.stderr.decode()
    found: list[dict[str, Any]] = json.loads(result.read_text())
    return found


def _heavy(modules: list[str]) -> list[str]:
    return [name for name in modules if any(name == h or name.startswith(h + ".") for h in _HEAVY)]


_PARSED_ONLY = {  # each command line, and its exit status
    "--version": 0,
    "--help": 0,
    "list --help": 0,
    "bench --help": 0,
    "copy --help": 0,
    "list --limit x": 2,
    "nonesuch": 2,
    "show": 2,
}


def test_parsing_imports_no_handler_nor_what_it_needs(tmp_path: Path) -> None:
    argvs = [line.split() for line in _PARSED_ONLY]
    for line, found in zip(_PARSED_ONLY, _started(tmp_path, *argvs), strict=True):
        assert found["status"] == _PARSED_ONLY[line], line
        assert _heavy(found["added"]) == [], line
        if line == "--version":
            assert found["printed"] == f"simulacra-session {simulacra_session.__version__}\n"


def test_a_command_imports_its_handler_when_it_runs(tmp_path: Path) -> None:
    """The other side: ``list`` runs its handler, which the parser named but did not import."""
    store = tmp_path / "store"
    store.mkdir()
    (found,) = _started(tmp_path, ["--store", str(store), "list"])
    assert (found["status"], found["printed"]) == (0, "no sessions\n")
    assert "simulacra_session.cli.browse" in found["added"]
