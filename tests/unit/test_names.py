"""Audit M6: a display name cannot pass for someone else's."""

from __future__ import annotations

import json

import pytest

from visio.protocol import ProtocolError, parse
from visio.transcripts.capture import Track, speaker_label


def join_name(name: str) -> str:
    frame = json.dumps({"type": "join", "room": "abc-defg-hij", "name": name})
    return parse(frame, 65536).name


@pytest.mark.parametrize(
    "name",
    [
        "nitraM ecilA\u202e",  # right-to-left override: shows as "Alice Martin"
        "Alice\u2066 Martin",  # isolate
        "Ali\u200bce",  # zero-width space
        "Alice\u200d",  # a joiner outside an emoji
        "Alice\nMartin",
        "Alice\x00",
        "\ufeffAlice",
        "Alice\ue000",  # private use
    ],
)
def test_names_with_control_direction_or_invisible_characters_are_refused(name):
    with pytest.raises(ProtocolError) as refused:
        join_name(name)
    assert refused.value.code == "bad_message"
    assert "invisible characters" in refused.value.message


def test_ordinary_names_pass_and_their_spaces_are_tidied():
    assert join_name("  Zoé   Dupont-Lefèvre ") == "Zoé Dupont-Lefèvre"
    assert join_name("李小龍") == "李小龍"
    assert join_name("Family 👨\u200d👩\u200d👧") == "Family 👨\u200d👩\u200d👧"
    assert join_name("🏳\ufe0f\u200d🌈 Pride") == "🏳\ufe0f\u200d🌈 Pride"


def test_a_guest_is_marked_wherever_their_name_is_written_down():
    assert speaker_label("Alice Martin", True, "camera") == "Alice Martin (guest)"
    assert speaker_label("Alice Martin", False, "camera") == "Alice Martin"
    assert speaker_label("Alice Martin", True, "screen") == "Alice Martin (guest) (screen)"


def test_manifests_written_before_the_guest_mark_still_load():
    old = {"participant": "p-1", "name": "A", "target": "camera", "base": "b", "requested_at": 1.0}
    assert Track(**old).guest is False
