"""Values as error messages name them, whatever they hold."""

from __future__ import annotations

__all__ = ["shown"]


def shown(value: object) -> str:
    """``repr(value)``, or what it is where Python refuses to write it out: an int of more
    than 4300 digits (or a list or dict holding one) raises a bare ``ValueError`` when
    formatted, which would replace the error naming the file or session at fault."""
    try:
        return repr(value)
    except ValueError:
        if type(value) is int:
            return f"<an int of {value.bit_length()} bits>"
        return f"<a {type(value).__name__} holding an int too long to write out>"
