"""New ids: random version-4 UUIDs in their canonical text, valid session ids."""

from __future__ import annotations

import uuid

from simulacra_session.ids import new_session_id, new_uuid4, validate_session_id


def test_new_uuid4_is_a_canonical_random_version_4_uuid() -> None:
    made = [new_uuid4() for _ in range(2000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical: lower-case hex, dashes in place
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    # every variant nibble (8, 9, a, b) and every hex digit elsewhere turns up
    assert {text[19] for text in made} == set("89ab")
    assert set("".join(text.replace("-", "") for text in made)) == set("0123456789abcdef")


def test_new_session_ids_are_valid_ids() -> None:
    session_id = new_session_id()
    assert validate_session_id(session_id) == session_id
    assert uuid.UUID(session_id).version == 4
