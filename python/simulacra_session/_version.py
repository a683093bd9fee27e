"""The installed distribution's version, written once: ``[workspace.package] version`` in
``Cargo.toml``, which maturin puts in every wheel and sdist (the pure wheel copies their
metadata).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("simulacra-session")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
