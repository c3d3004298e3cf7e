"""What in visio.db is not about the database; the Store's tests are in tests/persistence."""

from __future__ import annotations

import re

from visio import db

RANDOM_ID = re.compile(r"^[a-z]{3}-[a-z]{4}-[a-z]{3}$")


def test_random_room_ids_look_like_meeting_codes():
    ids = {db.random_room_id() for _ in range(200)}
    assert all(RANDOM_ID.match(room_id) for room_id in ids)
    assert len(ids) == 200


def test_normalise_email():
    assert db.normalise_email("  Ann@Example.ORG ") == "ann@example.org"
