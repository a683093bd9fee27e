"""The exceptions ``simulacra_session.transfer`` exports name it as their module, where a user
imports them from: a traceback or ``repr`` showed the private module they are defined in
(``simulacra_session._transfer_copy.CopyStoreError``)."""

from __future__ import annotations

import traceback
from importlib import import_module

import pytest

from simulacra_session import transfer

EXCEPTIONS = [
    value
    for value in (getattr(transfer, name) for name in transfer.__all__)
    if isinstance(value, type) and issubclass(value, BaseException)
]


def test_the_exceptions_are_the_two_of_imports_and_copies() -> None:
    assert {error.__name__ for error in EXCEPTIONS} == {"CopyStoreError", "SessionExistsError"}


@pytest.mark.parametrize("error", EXCEPTIONS, ids=lambda error: error.__name__)
def test_an_exception_names_the_public_module(error: type[BaseException]) -> None:
    assert error.__module__ == "simulacra_session.transfer"
    assert getattr(import_module(error.__module__), error.__qualname__) is error


def test_a_traceback_names_the_public_module() -> None:
    try:
        raise transfer.SessionExistsError(["a"], "the target")
    except transfer.SessionExistsError as error:
        shown = traceback.format_exception_only(error)[-1]
    assert shown.startswith(
        "simulacra_session.transfer.SessionExistsError: 1 session(s) already in the target: a"
    )
