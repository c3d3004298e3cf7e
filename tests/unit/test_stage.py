"""The state of large meetings (visio.conference.stage): rules, queue, records."""

from __future__ import annotations

from visio.conference.participant import Participant
from visio.conference.records import ParticipantRecord
from visio.conference.stage import Stage, hand_queue, may_publish, note_hand
from visio.db import RoomPolicy


def test_only_moderators_and_those_let_in_publish_in_a_webinar():
    stage = Stage(attendees_publish=False)
    host, ann = Participant(name="Host", role="admin"), Participant(name="Ann")
    assert may_publish(stage, host, "camera") and may_publish(stage, host, "screen")
    assert not may_publish(stage, ann, "camera") and not may_publish(stage, ann, "screen")
    ann.granted.add("speak")
    assert may_publish(stage, ann, "camera") and not may_publish(stage, ann, "screen")
    assert may_publish(Stage(), Participant(name="Gus"), "screen")  # not a webinar


def test_hands_queue_in_the_order_they_went_up():
    people = {p.id: p for p in (Participant(name=n) for n in ("A", "B", "C"))}
    a, b, c = people.values()
    for person in (c, b, a):  # within the same millisecond, as often on one server
        person.hand = True
        note_hand(person, people)
    assert hand_queue(people) == [c.id, b.id, a.id]
    c.hand = False
    note_hand(c, people)
    assert hand_queue(people) == [b.id, a.id]
    assert c.hand_at == 0
    c.hand = True  # raised again: last
    note_hand(c, people)
    assert hand_queue(people) == [b.id, a.id, c.id]


def test_the_stage_survives_a_takeover_through_its_records():
    stage = Stage(attendees_publish=False, mute_on_entry_above=3, spotlight="p-0000000a")
    assert Stage.restore(stage.record()) == stage
    gus = Participant(name="Gus", hand=True, hand_at=42, granted={"present"}, promoted=True)
    record = ParticipantRecord.model_validate(gus.record().model_dump())
    assert (record.hand_at, record.granted, record.promoted) == (42, ["present"], True)


def test_the_stage_follows_the_room_settings():
    stage = Stage()
    policy = RoomPolicy("r-oom", "Room", "public", None, {}, attendees_publish=False)
    assert stage.follow(policy) and not stage.attendees_publish
    assert not stage.follow(policy)  # nothing changed the second time
