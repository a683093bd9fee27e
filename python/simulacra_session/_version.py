"""The installed distribution's version, written once: ``[workspace.package] version`` in
``Cargo.toml``, which maturin puts in every wheel and sdist (the pure wheel copies their
metadata), and so in the ``METADATA`` of the ``simulacra_session-*.dist-info`` that an
install, editable or not, writes beside the packages.

It is read as ``importlib.metadata.version`` would read it, without importing it (with the
``email`` package it parses ``METADATA`` with, a quarter of the time ``simulacra-session
--version`` took): the first ``sys.path`` directory holding the distribution's metadata, its
``Version`` header. Anything else (a zip or an egg on ``sys.path``, an ``.egg-info``, a
``METADATA`` without that header) is left to ``importlib.metadata`` itself.
"""

from __future__ import annotations

import os
import re
import sys

__all__ = ["__version__"]

_DISTRIBUTION = "simulacra_session"  # normalized as importlib.metadata does (PEP 503, _ for -)
_SEPARATORS = re.compile(r"[-_.]+")


def _found() -> str | None:
    """The version in the first metadata of the distribution found on ``sys.path``; ``None``
    where ``importlib.metadata`` must look itself."""
    for entry in sys.path:
        if not isinstance(entry, str) or entry.lower().endswith(".egg"):
            return None
        try:
            children = os.listdir(entry or ".")
        except NotADirectoryError:  # a zip: importlib.metadata reads in it
            return None
        except OSError:  # missing, unreadable: importlib.metadata passes over it too
            continue
        for child in children:
            low = child.lower()
            if not low.endswith((".dist-info", ".egg-info")):
                continue
            if _SEPARATORS.sub("_", low.rpartition(".")[0].partition("-")[0]) != _DISTRIBUTION:
                continue
            if not low.endswith(".dist-info"):
                return None
            return _header_version(os.path.join(entry, child, "METADATA"))
    return None


def _header_version(path: str) -> str | None:
    """The ``Version`` header of the metadata file ``path`` (headers end at the first blank line)."""
    try:
        with open(path, encoding="utf-8") as metadata:
            for line in metadata:
                if not line.strip():
                    return None
                name, colon, value = line.partition(":")
                if colon and name.lower() == "version":  # not a continuation line: no leading space
                    return value.strip() or None
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _version() -> str:
    found = _found()
    if found is not None:
        return found
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("simulacra-session")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


__version__ = _version()
