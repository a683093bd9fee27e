"""The PEP 517 build backend: maturin when Rust can build the extension, else one short message.

Building the compiled extension needs a Rust toolchain of at least ``rust-version`` in
``Cargo.toml``. With one, every hook is maturin's. Without one, maturin would download a
toolchain of its own (hundreds of megabytes) or fail with a long traceback; instead the build
stops at once and says what to install, or what to take instead: the pure-Python wheel, which
``SIMULACRA_SESSION_BUILD=pure`` also builds from the sdist (its ``PKG-INFO`` is the wheel's
metadata, so both wheels describe the same release).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
]

MATURIN = "maturin>=1.9.4,<2"  # 1.9.4: PEP 639 license expression and files, in sdists too
PURE = os.environ.get("SIMULACRA_SESSION_BUILD", "") == "pure"
Settings = dict[str, Any] | None


def get_requires_for_build_wheel(config_settings: Settings = None) -> list[str]:
    if PURE:
        return ['tomli>=1.1; python_version < "3.11"']
    _require_rust()
    return [MATURIN]


def get_requires_for_build_editable(config_settings: Settings = None) -> list[str]:
    _require_rust()
    return [MATURIN]


def get_requires_for_build_sdist(config_settings: Settings = None) -> list[str]:
    return [MATURIN]  # maturin lists the crate's files with cargo


def build_wheel(
    wheel_directory: str, config_settings: Settings = None, metadata_directory: str | None = None
) -> str:
    if PURE:
        return _build_pure_wheel(Path(wheel_directory))
    _require_rust()
    name: str = _maturin().build_wheel(wheel_directory, config_settings, metadata_directory)
    return name


def build_editable(
    wheel_directory: str, config_settings: Settings = None, metadata_directory: str | None = None
) -> str:
    _require_rust()
    name: str = _maturin().build_editable(wheel_directory, config_settings, metadata_directory)
    return name


def build_sdist(sdist_directory: str, config_settings: Settings = None) -> str:
    name: str = _maturin().build_sdist(sdist_directory, config_settings)
    return name


def _maturin() -> Any:
    """maturin's own backend, told that this module hands it the build on purpose."""
    os.environ["MATURIN_NO_MISSING_BUILD_BACKEND_WARNING"] = "1"
    import maturin  # type: ignore[import-untyped]

    return maturin


def _require_rust() -> None:
    """Stop the build, in one message, unless cargo and a rustc of ``rust-version`` are there."""
    needed = re.search(r'(?m)^rust-version\s*=\s*"([\d.]+)"', Path("Cargo.toml").read_text("utf-8"))
    assert needed is not None, "Cargo.toml states rust-version"
    cargo = shutil.which("cargo")
    found = _rustc_version() if cargo else None
    if found is not None and _numbers(found) >= _numbers(needed[1]):
        return
    what = f"rustc {found}" if found else "a cargo but no working rustc" if cargo else "no cargo"
    sys.exit(
        f"simulacra-session: building its compiled extension needs Rust {needed[1]} or later (found"
        f" {what}). Install Rust from https://rustup.rs, or take the pure-Python wheel instead:"
        " pip install --only-binary simulacra-session simulacra-session (or build it from this"
        " sdist with SIMULACRA_SESSION_BUILD=pure)."
    )


def _rustc_version() -> str | None:
    """The version of the rustc cargo would run (``$RUSTC``, else ``rustc``), if it runs."""
    try:
        out = subprocess.run(
            [os.environ.get("RUSTC", "rustc"), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.match(r"rustc (\d+\.\d+\.\d+)", out)
    return match[1] if match else None


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _build_pure_wheel(wheel_directory: Path) -> str:
    """The ``py3-none-any`` wheel of the Python package, with the sdist's metadata and license."""
    try:
        metadata = Path("PKG-INFO").read_text("utf-8")
    except FileNotFoundError:
        sys.exit("simulacra-session: SIMULACRA_SESSION_BUILD=pure builds from the sdist (it needs PKG-INFO)")
    headers = HeaderParser().parsestr(metadata)
    dist_info = f"{headers['Name'].replace('-', '_')}-{headers['Version']}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted(Path("python").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".so", ".pyd"}:
            files[path.relative_to("python").as_posix()] = path.read_bytes()
    files[f"{dist_info}/METADATA"] = metadata.encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: simulacra_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{dist_info}/entry_points.txt"] = _entry_points().encode()
    for license_file in headers.get_all("License-File") or []:
        files[f"{dist_info}/licenses/{license_file}"] = Path(license_file).read_bytes()
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in files.items()]
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,", ""]).encode()
    wheel_name = f"{dist_info.removesuffix('.dist-info')}-py3-none-any.whl"
    with zipfile.ZipFile(wheel_directory / wheel_name, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # the same bytes every build
            entry.external_attr = 0o644 << 16
            wheel.writestr(entry, data, zipfile.ZIP_DEFLATED)
    return wheel_name


def _entry_points() -> str:
    """``entry_points.txt`` of ``[project.scripts]`` in pyproject.toml."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib  # type: ignore[import-not-found]
    with open("pyproject.toml", "rb") as file:
        scripts = tomllib.load(file)["project"].get("scripts", {})
    return "[console_scripts]\n" + "".join(f"{name} = {target}\n" for name, target in scripts.items())


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
