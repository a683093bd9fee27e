"""``copy_metadata``: what a cache hands out is equal to what it holds and shares nothing mutable with it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from simulacra_session.models import CheckpointState, SessionMetadata, copy_metadata

STAMP = "2025-01-02T03:04:05.678Z"


@pytest.mark.parametrize(
    "given",
    [
        {"label": "plain"},
        {"workspace": {"path": "/home/u", "flags": [True, None]}, "tags": ["a"]},
        {"checkpoint_state": {"message_id": "m", "summary": "s", "notes": {"kept": [1]}}},
    ],
)
def test_a_copy_is_equal_and_independent(given: dict[str, object]) -> None:
    held = SessionMetadata.model_validate(
        {"id": "a", "created_at": STAMP, "updated_at": STAMP, "message_count": 2, **given}
    )
    before = held.model_dump()
    copied = copy_metadata(held)
    assert type(copied) is SessionMetadata
    assert copied == held
    assert (copied.model_dump(), copied.model_fields_set) == (before, held.model_fields_set)
    with pytest.raises(ValidationError, match="frozen"):
        copied.label = "changed"  # type: ignore[misc]
    # whatever a caller mutates in its copy stays out of what the cache holds
    assert copied.model_extra is not None
    copied.model_extra["added"] = 1
    copied.model_fields_set.add("added")
    for value in copied.model_extra.values():
        if isinstance(value, dict):
            value.clear()
        elif isinstance(value, list):
            value.append("more")
    state = copied.checkpoint_state
    if state is not None:
        assert isinstance(state, CheckpointState)
        assert state.model_extra is not None
        state.model_extra["notes"]["kept"].append(2)
    assert held.model_dump() == before
    assert "added" not in held.model_fields_set
