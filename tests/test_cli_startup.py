"""The command starts light: ``--version``, ``--help``, ``COMMAND --help`` and a usage error
(exit 2) import the parser alone, never a command's handler nor what it needs (rich, the
transfer code, SQLAlchemy, statistics). What ``import simulacra_session`` imports itself is
the floor: each check is of the modules the command line adds to it, so pydantic, asyncio and
logging are checked too once the package's ``__init__`` no longer imports them.

And the version ``--version`` prints is read without ``importlib.metadata``, as it would read
it: editable install, wheel-like metadata first on ``sys.path``, and what it leaves to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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

#: Run in a fresh interpreter: the modules the command line adds to the package's own.
_STARTED = """
import json, sys
import simulacra_session
package = set(sys.modules)
from simulacra_session.cli import main
try:
    status = main(sys.argv[2:])
except SystemExit as exit:
    status = exit.code
with open(sys.argv[1], "w") as out:
    json.dump({"status": status, "added": sorted(set(sys.modules) - package)}, out)
"""


def _heavy(modules: list[str]) -> list[str]:
    return [name for name in modules if any(name == h or name.startswith(h + ".") for h in _HEAVY)]


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (["--version"], 0),
        (["--help"], 0),
        (["list", "--help"], 0),
        (["bench", "--help"], 0),
        (["copy", "--help"], 0),
        (["list", "--limit", "x"], 2),
        (["nonesuch"], 2),
        (["show"], 2),
    ],
    ids=["version", "help", "list-help", "bench-help", "copy-help", "bad-int", "bad-command", "no-id"],
)
def test_parsing_imports_no_handler_nor_what_it_needs(tmp_path: Path, argv: list[str], status: int) -> None:
    result = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, "-c", _STARTED, str(result), *argv], capture_output=True, timeout=120, check=False
    )
    assert result.exists(), done.stderr.decode()
    found = json.loads(result.read_text())
    assert found["status"] == status
    assert _heavy(found["added"]) == []
    if argv == ["--version"]:
        assert done.stdout.decode() == f"simulacra-session {simulacra_session.__version__}\n"


def test_a_command_imports_its_handler_when_it_runs(tmp_path: Path) -> None:
    """The other side: ``list`` runs its handler, which the parser named but did not import."""
    result = tmp_path / "result.json"
    store = tmp_path / "store"
    store.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _STARTED, str(result), "--store", str(store), "list"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    found = json.loads(result.read_text())
    assert (found["status"], done.stdout.decode()) == (0, "no sessions\n")
    assert "simulacra_session.cli.browse" in found["added"]


#: Loads ``_version.py`` alone (not the package, whose models import importlib.metadata).
_VERSION = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("version_alone", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
read_alone = "importlib.metadata" in sys.modules
from importlib.metadata import version
print(json.dumps([module.__version__, version("simulacra-session"), read_alone]))
"""


def _versions(path_first: Path | None = None) -> tuple[str, str, bool]:
    """``_version.__version__``, ``importlib.metadata``'s version, and whether reading the first
    imported ``importlib.metadata``; ``path_first`` first on ``sys.path``."""
    env = dict(os.environ)
    if path_first is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path_first), env.get("PYTHONPATH")]))
    source = Path(simulacra_session.__file__).with_name("_version.py")
    done = subprocess.run(
        [sys.executable, "-c", _VERSION, str(source)], capture_output=True, env=env, timeout=120, check=True
    )
    ours, theirs, alone = json.loads(done.stdout)
    return ours, theirs, alone


def test_the_version_is_the_installed_metadata_read_without_importlib_metadata() -> None:
    ours, theirs, alone = _versions()
    assert ours == theirs != "0+unknown"
    assert not alone


def _dist_info(where: Path, name: str, version: str) -> None:
    info = where / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.4\nName: simulacra-session\nSummary: a\n  version: folded\n"
        f"Version: {version}\n\nVersion: the body\n",
        encoding="utf-8",
    )


@pytest.mark.parametrize("name", ["simulacra_session", "Simulacra.Session", "SIMULACRA__session"])
def test_the_first_distribution_on_sys_path_gives_the_version_as_importlib_metadata_says(
    tmp_path: Path, name: str
) -> None:
    """A wheel's metadata, spelled as any installer may, first on ``sys.path``: read alone."""
    _dist_info(tmp_path, name, "9.8.7")
    assert _versions(tmp_path) == ("9.8.7", "9.8.7", False)


def test_metadata_it_does_not_read_is_left_to_importlib_metadata(tmp_path: Path) -> None:
    """A zip first on ``sys.path`` (importlib.metadata reads in it), or an ``.egg-info``."""
    archive = tmp_path / "wheels.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(
            "simulacra_session-7.0.0.dist-info/METADATA", "Name: simulacra-session\nVersion: 7.0.0\n"
        )
    assert _versions(archive) == ("7.0.0", "7.0.0", True)
    eggs = tmp_path / "eggs"
    (eggs / "simulacra_session-6.0.0.egg-info").mkdir(parents=True)
    (eggs / "simulacra_session-6.0.0.egg-info" / "PKG-INFO").write_text(
        "Name: simulacra-session\nVersion: 6.0.0\n"
    )
    assert _versions(eggs) == ("6.0.0", "6.0.0", True)
