"""The backend choice: only ``_backend`` reads it, both twins export the same names and raise
the package's exception classes (handed to the extension, which imports no module of the
package), both refuse an argument of the wrong type or range alike, and a source tree
without the extension runs on the pure twin."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import simulacra_session
from simulacra_session import _backend, _pure
from simulacra_session._backend import BACKEND


def test_backend_is_the_requested_one() -> None:
    assert simulacra_session.BACKEND == BACKEND
    forced = os.environ.get("SIMULACRA_SESSION_PURE", "") not in ("", "0")
    if forced:
        assert BACKEND == "pure"
    elif os.environ.get("CI") == "true":
        assert BACKEND == "native", "CI must test the compiled extension"


def test_source_tree_imports_without_the_extension(tmp_path: Path) -> None:
    package = Path(simulacra_session.__file__).parent
    copy = tmp_path / "simulacra_session"
    copy.mkdir()
    for source in package.rglob("*"):
        if source.suffix in {".py", ".pyi", ".typed"}:
            target = copy / source.relative_to(package)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "SIMULACRA_SESSION_PURE"}
    out = subprocess.run(
        [sys.executable, "-c", "import simulacra_session as s; print(s.BACKEND)"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "pure"


def test_both_twins_export_the_same_names(hotpath: ModuleType) -> None:
    names = sorted(name for name in _backend.__all__ if name != "BACKEND")
    assert sorted(name for name in hotpath.__all__ if not name.startswith("_")) == names
    assert all(callable(getattr(hotpath, name)) for name in names)
    assert sorted(_pure.__all__) == names


def test_only_the_backend_module_reads_the_choice() -> None:
    package = Path(simulacra_session.__file__).parent
    readers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"(environ|getenv)\b.*SIMULACRA_SESSION_PURE", path.read_text(encoding="utf-8"))
    )
    assert readers == ["_backend.py"]


def test_the_extension_imports_no_module_of_the_package() -> None:
    """The binding is handed the exception classes it raises (``_bind_errors``, by
    ``_backend``); nothing in the crate imports a Python module."""
    crate = Path(__file__).parent.parent / "rust" / "src"
    importing = re.compile(r"import_exception!|PyModule::import|\bimport\(|\.import\(")
    sources = list(crate.rglob("*.rs"))
    assert len(sources) > 10
    assert [path.name for path in sources if importing.search(path.read_text(encoding="utf-8"))] == []


def test_both_twins_raise_the_packages_classes(hotpath: ModuleType) -> None:
    with pytest.raises(simulacra_session.SerializationError):
        hotpath.dumps({1})
    with pytest.raises(simulacra_session.InvalidSessionIdError):
        hotpath.link_fork(".", 3, "x")


def test_the_extension_takes_exception_classes_once() -> None:
    native = pytest.importorskip("simulacra_session._native")
    with pytest.raises(TypeError, match="int is not an exception class"):
        native._bind_errors(int, ValueError, OSError)
    native._bind_errors(ValueError, ValueError, OSError)  # the first binding holds
    with pytest.raises(simulacra_session.SerializationError):
        native.dumps({1})


#: Calls each backend refuses alike: the compiled one by its argument conversions, the twin
#: by its checks (it once took ``fsync=1``, a ``str`` as a list of names, and bytes as text).
_REFUSED: list[tuple[str, Callable[[Any, Path], object], type[Exception]]] = [
    ("slug of bytes", lambda m, _: m.derive_slug(b"x"), TypeError),
    ("slug of an int", lambda m, _: m.derive_slug(1), TypeError),
    ("slug limit a str", lambda m, _: m.derive_slug("x", "5"), TypeError),
    ("slug limit past 64 bits", lambda m, _: m.derive_slug("x", 2**70), OverflowError),
    ("slug limit below 64 bits", lambda m, _: m.derive_slug("x", -(2**70)), OverflowError),
    ("fsync an int", lambda m, d: m.atomic_write(d / "s.json", b"x", 1), TypeError),
    ("link fsync an int", lambda m, d: m.link_fork(d, "p", "s", 1), TypeError),
    ("stamps of a str", lambda m, d: m.stamps(d, "name"), TypeError),
    ("stamps of an int name", lambda m, d: m.stamps(d, [1]), TypeError),
    ("seed below zero", lambda m, _: m.commit_checksum(b"x", b"y", -1), OverflowError),
    ("offset below zero", lambda m, _: m.verify_records(b"x", -1, 0), OverflowError),
    ("descriptor past an int", lambda m, _: m.sync_files([2**40]), OverflowError),
]


@pytest.mark.parametrize(("call", "error"), [(c, e) for _, c, e in _REFUSED], ids=[n for n, _, _ in _REFUSED])
def test_both_backends_refuse_bad_arguments_alike(
    hotpath: ModuleType, tmp_path: Path, call: Callable[[Any, Path], object], error: type[Exception]
) -> None:
    (tmp_path / "s.json").write_bytes(b"{}")
    with pytest.raises(error):
        call(hotpath, tmp_path)
    assert not (tmp_path / "p-forks").exists()
