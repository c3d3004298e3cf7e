"""protocol.parse: every client frame of docs/PROTOCOL.md, and every way to get one wrong."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visio import protocol as p

MAX = 65536
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def parse(frame: Any, max_bytes: int = MAX) -> p.Message:
    raw = frame if isinstance(frame, str | bytes) else json.dumps(frame)
    return p.parse(raw, max_bytes)


def error(frame: Any, max_bytes: int = MAX) -> p.ProtocolError:
    with pytest.raises(p.ProtocolError) as caught:
        parse(frame, max_bytes)
    return caught.value


# -- valid frames -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "cls", "fields"),
    [
        (
            {
                "type": "join",
                "room": "abc-defg-hij",
                "name": "Alice",
                "audio": False,
                "resume": "t",
            },
            p.Join,
            {"room": "abc-defg-hij", "name": "Alice", "audio": False, "video": True, "resume": "t"},
        ),
        (
            {"type": "publish", "target": "screen", "sdp": SDP, "video": False},
            p.Publish,
            {"target": "screen", "sdp": SDP, "audio": True, "video": False},
        ),
        ({"type": "unpublish", "target": "camera"}, p.Unpublish, {"target": "camera"}),
        ({"type": "answer", "sdp": SDP}, p.Answer, {"sdp": SDP}),
        (
            {"type": "candidate", "target": "subscriber", "candidate": None},
            p.Candidate,
            {"target": "subscriber", "candidate": None},
        ),
        ({"type": "resubscribe"}, p.Resubscribe, {}),
        (
            {"type": "restart_ice", "target": "camera", "sdp": SDP},
            p.RestartIce,
            {"target": "camera", "sdp": SDP},
        ),
        ({"type": "layer", "mid": "1", "quality": "medium"}, p.Layer, {"mid": "1"}),
        ({"type": "state", "hand": True}, p.State, {"audio": None, "video": None, "hand": True}),
        ({"type": "chat", "text": "Hello"}, p.Chat, {"text": "Hello"}),
        ({"type": "reaction", "emoji": "🎉"}, p.Reaction, {"emoji": "🎉"}),
        ({"type": "ping"}, p.Ping, {}),
        ({"type": "leave"}, p.Leave, {}),
    ],
)
def test_every_message_type_parses_to_its_class(frame, cls, fields):
    message = parse(frame)
    assert type(message) is cls
    for name, value in fields.items():
        assert getattr(message, name) == value


def test_message_types_list_matches_the_parsers():
    members = typing.get_args(typing.get_args(p.ClientMessage)[0])
    parsed = {typing.get_args(m.model_fields["type"].annotation)[0] for m in members}
    assert frozenset(p.MESSAGE_TYPES) == parsed
    assert {"join", "leave", "admit", "deny", "moderate", "lock", "end"} <= parsed


def test_join_defaults_to_audio_and_video_on_without_resume():
    message = parse({"type": "join", "room": "abc-defg-hij", "name": "Bob"})
    assert (message.audio, message.video, message.resume) == (True, True, None)


def test_join_name_is_trimmed():
    assert parse({"type": "join", "room": "abc", "name": "  Alice \t"}).name == "Alice"


def test_name_of_64_characters_after_trimming_is_accepted():
    assert parse({"type": "join", "room": "abc", "name": " " + "n" * 64 + " "}).name == "n" * 64


def test_frame_may_be_bytes():
    assert isinstance(parse(b'{"type": "ping"}'), p.Ping)


def test_unknown_fields_are_ignored():
    assert isinstance(parse({"type": "ping", "extra": {"nested": [1, 2]}}), p.Ping)


def test_ref_is_kept_on_valid_messages():
    assert parse({"type": "ping", "ref": "r1"}).ref == "r1"


@pytest.mark.parametrize("quality", ["low", "medium", "high"])
def test_every_layer_quality_is_accepted(quality):
    assert parse({"type": "layer", "mid": "3", "quality": quality}).quality == quality


@pytest.mark.parametrize("emoji", p.REACTIONS)
def test_every_listed_reaction_is_accepted(emoji):
    assert parse({"type": "reaction", "emoji": emoji}).emoji == emoji


def test_reaction_list_is_the_documented_one():
    assert p.REACTIONS == ("👍", "👏", "😂", "❤️", "🎉", "😮")


@pytest.mark.parametrize(
    "candidate",
    [
        {"candidate": "candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host"},
        {"candidate": "candidate:1 1 udp 1 10.0.0.1 5000 typ host", "sdpMid": "0"},
        {"candidate": "c", "sdpMid": None, "sdpMLineIndex": 255},
        {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "ab"},
    ],
)
def test_candidate_shapes_accepted(candidate):
    message = parse({"type": "candidate", "target": "camera", "candidate": candidate})
    assert message.candidate.candidate == candidate["candidate"]
    assert message.candidate.sdpMid == candidate.get("sdpMid")


def test_candidate_drops_unknown_keys_when_dumped():
    frame = {"candidate": "c", "sdpMid": "0", "sdpMLineIndex": 1, "usernameFragment": "x"}
    message = parse({"type": "candidate", "target": "screen", "candidate": frame})
    assert message.candidate.model_dump(exclude_none=True) == {
        "candidate": "c",
        "sdpMid": "0",
        "sdpMLineIndex": 1,
    }


@pytest.mark.parametrize("room", ["abc", "abc-defg-hij", "team-weekly", "a" * 64, "0-9"])
def test_room_ids_matching_the_pattern_are_accepted(room):
    assert parse({"type": "join", "room": room, "name": "A"}).room == room


def test_chat_of_2000_characters_is_accepted():
    assert len(parse({"type": "chat", "text": "x" * 2000}).text) == 2000


def test_frame_of_exactly_the_limit_is_accepted():
    raw = '{"type": "ping", "pad": "' + "x" * 100 + '"}'
    assert isinstance(p.parse(raw, len(raw)), p.Ping)


# -- bad_json / too_large / unknown_type ----------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["not json", "{", "", "[1, 2]", '"ping"', "null", "42", b'{"type": "ping"\xff}', b"\xff\xfe"],
)
def test_frames_that_are_not_a_json_object_are_bad_json(raw):
    assert error(raw).code == "bad_json"


def test_frame_over_the_limit_is_too_large_before_any_parsing():
    raw = "x" * 1025  # not even JSON: the size is checked first
    err = error(raw, max_bytes=1024)
    assert err.code == "too_large"
    assert "1024" in err.message


def test_text_frame_over_the_limit_in_utf8_bytes_is_too_large():
    sdp = "v=0 " + "€" * 25_000  # 25 004 characters, 75 004 bytes
    raw = json.dumps({"type": "publish", "target": "camera", "sdp": sdp}, ensure_ascii=False)
    assert len(raw) < MAX < len(raw.encode())
    assert error(raw).code == "too_large"


def test_deeply_nested_json_is_refused_with_a_protocol_error():
    raw = '{"type": "ping", "x": ' + "[" * 30_000 + "]" * 30_000 + "}"
    assert len(raw) < MAX
    assert error(raw).code in ("bad_json", "bad_message")


@pytest.mark.parametrize(
    "frame",
    [{}, {"room": "abc"}, {"type": None}, {"type": 5}, {"type": ["join"]}, {"type": "JOIN"}],
)
def test_missing_or_non_string_or_unknown_type_is_unknown_type(frame):
    assert error(frame).code == "unknown_type"


def test_unknown_type_names_the_type():
    assert "'dance'" in error({"type": "dance"}).message


def test_unknown_type_does_not_echo_a_long_type_name():
    err = error({"type": "x" * 500})
    assert err.code == "unknown_type"
    assert "x" * 33 not in err.message


# -- bad_message ----------------------------------------------------------------------

BAD = [
    # (frame, field named in the message)
    ({"type": "join", "room": "abc-defg-hij"}, "name"),
    ({"type": "join", "name": "Alice"}, "room"),
    ({"type": "join", "room": "abc", "name": 5}, "name"),
    ({"type": "join", "room": "abc", "name": "n" * 65}, "name"),
    ({"type": "join", "room": "abc", "name": "   "}, "name"),
    ({"type": "join", "room": "abc", "name": ""}, "name"),
    ({"type": "join", "room": "abc", "name": "A", "audio": "maybe"}, "audio"),
    ({"type": "join", "room": "abc", "name": "A", "video": [True]}, "video"),
    ({"type": "join", "room": "abc", "name": "A", "resume": "t" * 129}, "resume"),
    ({"type": "join", "room": "ABC-defg-hij", "name": "A"}, "room"),
    ({"type": "join", "room": "-abc", "name": "A"}, "room"),
    ({"type": "join", "room": "abc-", "name": "A"}, "room"),
    ({"type": "join", "room": "ab", "name": "A"}, "room"),
    ({"type": "join", "room": "a" * 65, "name": "A"}, "room"),
    ({"type": "join", "room": "abc_def", "name": "A"}, "room"),
    ({"type": "join", "room": "abc/../x", "name": "A"}, "room"),
    ({"type": "join", "room": 123, "name": "A"}, "room"),
    ({"type": "publish", "sdp": SDP}, "target"),
    ({"type": "publish", "target": "microphone", "sdp": SDP}, "target"),
    ({"type": "publish", "target": "camera"}, "sdp"),
    ({"type": "publish", "target": "camera", "sdp": "v=0"}, "sdp"),
    ({"type": "publish", "target": "camera", "sdp": "v" * (p.MAX_SDP + 1)}, "sdp"),
    ({"type": "unpublish"}, "target"),
    ({"type": "unpublish", "target": "subscriber"}, "target"),
    ({"type": "answer"}, "sdp"),
    ({"type": "answer", "sdp": 5}, "sdp"),
    ({"type": "candidate", "target": "camera"}, "candidate"),
    ({"type": "candidate", "target": "nowhere", "candidate": None}, "target"),
    ({"type": "candidate", "target": "camera", "candidate": "candidate:1"}, "candidate"),
    ({"type": "candidate", "target": "camera", "candidate": {}}, "candidate.candidate"),
    (
        {"type": "candidate", "target": "camera", "candidate": {"candidate": 5}},
        "candidate.candidate",
    ),
    (
        {"type": "candidate", "target": "camera", "candidate": {"candidate": "c" * 1025}},
        "candidate.candidate",
    ),
    (
        {"type": "candidate", "target": "camera", "candidate": {"candidate": "c", "sdpMid": 0}},
        "candidate.sdpMid",
    ),
    (
        {
            "type": "candidate",
            "target": "camera",
            "candidate": {"candidate": "c", "sdpMid": "m" * 33},
        },
        "candidate.sdpMid",
    ),
    (
        {
            "type": "candidate",
            "target": "camera",
            "candidate": {"candidate": "c", "sdpMLineIndex": -1},
        },
        "candidate.sdpMLineIndex",
    ),
    (
        {
            "type": "candidate",
            "target": "camera",
            "candidate": {"candidate": "c", "sdpMLineIndex": 256},
        },
        "candidate.sdpMLineIndex",
    ),
    ({"type": "layer", "mid": "1"}, "quality"),
    ({"type": "layer", "mid": "1", "quality": "ultra"}, "quality"),
    ({"type": "layer", "mid": "1", "quality": 2}, "quality"),
    ({"type": "layer", "mid": "", "quality": "low"}, "mid"),
    ({"type": "layer", "quality": "low"}, "mid"),
    ({"type": "state", "audio": "maybe"}, "audio"),
    ({"type": "state", "hand": {}}, "hand"),
    ({"type": "chat"}, "text"),
    ({"type": "chat", "text": ""}, "text"),
    ({"type": "chat", "text": " \n "}, "text"),
    ({"type": "chat", "text": "x" * 2001}, "text"),
    ({"type": "chat", "text": ["hi"]}, "text"),
    ({"type": "reaction", "emoji": "💩"}, "emoji"),
    ({"type": "reaction", "emoji": "❤"}, "emoji"),  # without the variation selector
    ({"type": "reaction"}, "emoji"),
]


@pytest.mark.parametrize(("frame", "field"), BAD)
def test_missing_or_ill_typed_or_out_of_range_fields_are_bad_message(frame, field):
    err = error(frame)
    assert err.code == "bad_message"
    assert err.message.startswith(f"{field}:") or f"; {field}:" in err.message


@pytest.mark.parametrize("value", ["no", 0])
def test_non_boolean_audio_is_bad_message(value):
    assert error({"type": "state", "audio": value}).code == "bad_message"


def test_bad_message_names_at_most_three_problems():
    err = error({"type": "join", "room": 1, "name": 2, "audio": "x", "video": "y", "resume": 3})
    assert err.code == "bad_message"
    assert err.message.count(":") == 3


# -- ref ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "nope", "ref": "r-7"},
        {"type": "chat", "text": "", "ref": "r-7"},
        {"type": 3, "ref": "r-7"},
    ],
)
def test_error_echoes_the_ref_of_the_frame(frame):
    err = error(frame)
    assert err.ref == "r-7"
    assert err.frame()["ref"] == "r-7"


@pytest.mark.parametrize("ref", ["r" * 65, 7, None, ["r1"], {"id": "r1"}])
def test_ref_that_is_too_long_or_not_a_string_is_not_echoed(ref):
    err = error({"type": "nope", "ref": ref})
    assert err.ref is None
    assert "ref" not in err.frame()


def test_ref_of_64_characters_is_echoed():
    assert error({"type": "nope", "ref": "r" * 64}).ref == "r" * 64


def test_error_frame_has_type_code_and_message():
    assert error({"type": "chat"}).frame() == {
        "type": "error",
        "code": "bad_message",
        "message": "text: Field required",
    }


def test_bad_json_has_no_ref():
    assert "ref" not in error('{"ref": "r1", ').frame()


@pytest.mark.parametrize(
    ("value", "ok"),
    [("p-3f9c2a1b", True), ("p-3F9C2A1B", False), ("p-3f9c2a1", False), ("x-3f9c2a1b", False)],
)
def test_participant_id_shape(value, ok):
    assert p.participant_id_ok(value) is ok


# -- generated input ---------------------------------------------------------------------


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.binary(), JSON.map(json.dumps)))
def test_any_frame_parses_or_gives_a_protocol_error(raw):
    try:
        message = p.parse(raw, MAX)
    except p.ProtocolError as error:
        assert error.code in {"bad_json", "too_large", "unknown_type", "bad_message"}
    else:
        assert message.type in p.MESSAGE_TYPES


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from(sorted(p.MESSAGE_TYPES))},
        optional={k: JSON for k in ("id", "all", "action", "locked", "room", "name", "sdp")},
    )
)
def test_every_message_type_with_random_fields(frame):
    test_any_frame_parses_or_gives_a_protocol_error.hypothesis.inner_test(json.dumps(frame))


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "restart_ice", "target": "camera"},  # a publisher's restart is its offer
        {"type": "restart_ice", "target": "subscriber", "sdp": SDP},  # resubscribe instead
        {"type": "restart_ice", "target": "everything", "sdp": SDP},
    ],
)
def test_an_ice_restart_is_a_publishers_offer(frame):
    assert error(frame).code == "bad_message"
