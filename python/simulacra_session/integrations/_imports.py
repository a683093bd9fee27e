"""Importing a framework on first use, with an error that says how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``; when it is missing, raise ``ImportError`` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as missing:
        if missing.name is None or module.split(".")[0] != missing.name.split(".")[0]:
            raise  # the framework is there, one of its own imports failed
        raise ImportError(
            f"{module} is not installed: pip install 'simulacra-session[{extra}]'", name=module
        ) from missing
