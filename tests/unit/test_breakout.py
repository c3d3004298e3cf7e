"""Breakout frames are checked before anything runs; rooms survive a takeover's record."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from visio import protocol as p
from visio.conference.breakout import Breakouts, _shuffled


def parse(frame: dict) -> p.Message:
    return p.parse(json.dumps(frame), 65536)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "breakout_open", "count": 0},
        {"type": "breakout_open", "count": 51},
        {"type": "breakout_open", "count": 2, "names": ["only one"]},
        {"type": "breakout_open", "count": 2, "assignments": {"p-0123abcd": 3}},
        {"type": "breakout_open", "count": 2, "assignments": {"nobody": 1}},
        {"type": "breakout_open", "count": 2, "assign": "everyone"},
        {"type": "breakout_open", "count": 2, "duration_s": 5},
        {"type": "breakout_move"},
        {"type": "breakout_move", "room": 0},
        {"type": "breakout_broadcast", "text": "   "},
        {"type": "breakout_close", "after_s": -1},
    ],
)
def test_bad_breakout_frames_are_refused(frame):
    with pytest.raises(p.ProtocolError) as refused:
        parse(frame)
    assert refused.value.code == "bad_message"


def test_good_breakout_frames():
    opened = parse({"type": "breakout_open", "count": 2, "assign": "random", "names": ["A", "B"]})
    assert isinstance(opened, p.BreakoutOpen) and opened.names == ["A", "B"]
    back = parse({"type": "breakout_move", "room": None})
    assert isinstance(back, p.BreakoutMove) and back.room is None and back.id is None


def test_random_spreads_everyone_but_moderators_evenly():
    people = {f"p-{n:08x}": SimpleNamespace(moderator=n == 0) for n in range(11)}
    where = _shuffled(people, 3)
    assert "p-00000000" not in where
    assert sorted(list(where.values()).count(room) for room in (1, 2, 3)) == [3, 3, 4]


async def test_the_record_brings_rooms_back():
    meeting = SimpleNamespace(participants={}, closed=False)
    first = Breakouts(meeting)
    first.opening, first.names, first.where = 2, ["A", "B"], {"p-00000001": 2}
    assert first.place("p-00000001") == "2.2" and first.place("p-00000002") is None
    assert not first.together("p-00000001", "p-00000002")
    again = Breakouts(meeting)
    again.restore(first.record())
    assert again.state() == first.state() and again.place("p-00000001") == "2.2"
    assert Breakouts(meeting).record() is None  # never opened
    first.names, first.where = [], {}  # closed: the count of openings is kept
    again.restore(first.record())
    assert not again.open and again.opening == 2
