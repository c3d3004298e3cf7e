"""Room state without Janus: Participant, Meeting (people, chat, broadcast) and KeyedLocks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from visio.conference.meeting import Meeting, _candidate_frame
from visio.conference.meetings import KeyedLocks
from visio.conference.participant import Participant, Publication
from visio.janus.client import JanusEvent
from visio.janus.videoroom import RoomOptions, SubscribedStream, SubscriberOffer
from visio.protocol import QualityReport, participant_id_ok


@dataclass
class Outbox:
    frames: list[dict[str, Any]] = field(default_factory=list)
    closed: tuple[int, str] | None = None

    def send(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]


class Room:
    def __init__(self, chat_history_max: int = 1000) -> None:
        self.ended: list[Meeting] = []
        self.meeting = Meeting(
            "abc-defg-hij",
            "Weekly",
            chat_history_max=chat_history_max,
            room_options=RoomOptions(),
            on_empty=self._on_empty,
        )

    async def _on_empty(self, meeting: Meeting) -> None:
        self.ended.append(meeting)

    def person(self, name: str, connected: bool = True) -> tuple[Participant, Outbox]:
        outbox = Outbox()
        participant = Participant(name=name, outbox=outbox if connected else None)
        self.meeting.participants[participant.id] = participant
        return participant, outbox


@pytest.fixture
async def room():
    made = Room(chat_history_max=3)
    yield made
    await made.meeting.close()


class FakePublisherHandle:
    def __init__(self, feed_id: int) -> None:
        self.feed_id = feed_id
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def fake_publication(target: str, feed_id: int) -> Publication:
    return Publication(target, FakePublisherHandle(feed_id))  # type: ignore[arg-type]


# -- Participant --------------------------------------------------------------------


def test_public_view_of_a_connected_participant():
    participant = Participant(name="Alice", audio=False, outbox=Outbox())
    assert participant.public() == {
        "id": participant.id,
        "name": "Alice",
        "audio": False,
        "video": True,
        "screen": False,
        "hand": False,
        "connection": "connected",
        "guest": True,
        "role": "participant",
        "granted": [],
    }


def test_public_view_shows_reconnecting_without_a_connection():
    participant = Participant(name="Bob", hand=True)
    view = participant.public()
    assert view["connection"] == "reconnecting"
    assert view["hand"] is True


def test_public_view_shows_screen_sharing():
    participant = Participant(name="Carol", outbox=Outbox())
    participant.publications["camera"] = fake_publication("camera", 1)
    assert participant.public()["screen"] is False
    participant.publications["screen"] = fake_publication("screen", 2)
    assert participant.public()["screen"] is True


def test_public_view_has_no_secrets():
    participant = Participant(name="Dan", outbox=Outbox())
    assert participant.resume_token not in str(participant.public())


def test_participant_ids_and_resume_tokens_are_fresh():
    people = [Participant(name=str(n)) for n in range(50)]
    assert all(participant_id_ok(p.id) for p in people)
    assert len({p.id for p in people}) == 50
    assert len({p.resume_token for p in people}) == 50
    assert all(len(p.resume_token) >= 32 for p in people)


def test_sending_to_a_reconnecting_participant_is_a_no_op():
    Participant(name="Eve").send({"type": "pong"})


# -- broadcast and people -----------------------------------------------------------


async def test_broadcast_reaches_everyone_connected(room):
    _, alice = room.person("Alice")
    _, bob = room.person("Bob")
    _, carol = room.person("Carol", connected=False)
    room.meeting.broadcast({"type": "reaction", "emoji": "👍"})
    assert alice.frames == bob.frames == [{"type": "reaction", "emoji": "👍"}]
    assert carol.frames == []


async def test_broadcast_can_leave_one_out(room):
    alice_participant, alice = room.person("Alice")
    _, bob = room.person("Bob")
    room.meeting.broadcast({"type": "x"}, exclude=alice_participant)
    assert alice.frames == []
    assert bob.frames == [{"type": "x"}]


async def test_others_lists_everyone_but_me(room):
    alice, _ = room.person("Alice")
    bob, _ = room.person("Bob")
    assert room.meeting.others(alice) == [bob.public()]


async def test_add_announces_the_newcomer_to_the_others_only(room):
    _, alice = room.person("Alice")
    bob = Participant(name="Bob", outbox=Outbox())
    room.meeting.add(bob)
    await room.meeting._settle()
    assert alice.of_type("participant_joined") == [
        {"type": "participant_joined", "participant": bob.public()}
    ]
    assert bob.outbox.frames == []  # nobody publishes yet: no offer either
    assert room.meeting.participants[bob.id] is bob


async def test_remove_tells_the_others_and_ends_an_empty_meeting(room):
    alice, alice_box = room.person("Alice")
    bob, bob_box = room.person("Bob")
    await room.meeting.remove(bob, "timeout")
    assert alice_box.of_type("participant_left") == [
        {"type": "participant_left", "id": bob.id, "reason": "timeout"}
    ]
    assert bob_box.of_type("participant_left") == []
    assert room.ended == []
    await room.meeting.remove(alice, "left")
    assert room.ended == [room.meeting]


async def test_removing_someone_twice_is_harmless(room):
    alice, _ = room.person("Alice")
    bob, _ = room.person("Bob")
    await room.meeting.remove(bob, "left")
    await room.meeting.remove(bob, "left")
    assert list(room.meeting.participants) == [alice.id]


async def test_remove_closes_the_publications_and_forgets_the_feeds(room):
    alice, _ = room.person("Alice")
    room.person("Bob")
    camera = fake_publication("camera", 11)
    alice.publications["camera"] = camera
    room.meeting._feeds[11] = (alice, camera)
    await room.meeting.remove(alice, "left")
    await room.meeting._settle()
    assert camera.handle.closed
    assert room.meeting._feeds == {}
    assert alice.publications == {}


async def test_updated_tells_the_others(room):
    alice, alice_box = room.person("Alice")
    _, bob_box = room.person("Bob")
    alice.hand = True
    room.meeting.updated(alice)
    assert alice_box.frames == []
    assert bob_box.frames == [{"type": "participant_updated", "participant": alice.public()}]


# -- chat -----------------------------------------------------------------------------


async def test_chat_goes_to_everyone_including_the_sender(room):
    alice, alice_box = room.person("Alice")
    _, bob_box = room.person("Bob")
    before = int(time.time() * 1000)
    room.meeting.post_chat(alice, "Hello")
    message = alice_box.frames[0]["message"]
    assert alice_box.frames == bob_box.frames == [{"type": "chat", "message": message}]
    assert {k: message[k] for k in ("id", "from", "name", "text")} == {
        "id": "m-1",
        "from": alice.id,
        "name": "Alice",
        "text": "Hello",
    }
    assert before <= message["ts"] <= int(time.time() * 1000)


async def test_chat_ids_increase(room):
    alice, box = room.person("Alice")
    for text in ("a", "b", "c"):
        room.meeting.post_chat(alice, text)
    assert [f["message"]["id"] for f in box.frames] == ["m-1", "m-2", "m-3"]


async def test_chat_history_keeps_only_the_last_messages(room):
    alice, _ = room.person("Alice")
    for n in range(5):
        room.meeting.post_chat(alice, f"message {n}")
    assert [m["text"] for m in room.meeting.chat] == ["message 2", "message 3", "message 4"]
    assert [m["id"] for m in room.meeting.chat] == ["m-3", "m-4", "m-5"]


async def test_chat_history_keeps_the_name_at_the_time(room):
    alice, _ = room.person("Alice")
    room.meeting.post_chat(alice, "hi")
    room.meeting.participants.clear()
    assert room.meeting.chat[0]["name"] == "Alice"


# -- resume tokens ----------------------------------------------------------------------


async def test_find_by_token_finds_the_participant(room):
    alice, _ = room.person("Alice")
    bob, _ = room.person("Bob")
    assert room.meeting.find_by_token(bob.resume_token) is bob
    assert room.meeting.find_by_token(alice.resume_token) is alice


@pytest.mark.parametrize("token", ["", "nope", "x" * 128])
async def test_find_by_token_unknown_is_none(room, token):
    room.person("Alice")
    assert room.meeting.find_by_token(token) is None


async def test_find_by_token_with_a_non_ascii_token_is_none(room):
    room.person("Alice")
    assert room.meeting.find_by_token("jeton-é") is None


# -- what clients are told about media ----------------------------------------------------


async def test_subscriber_offer_maps_active_mids_to_their_owner(room):
    alice, _ = room.person("Alice")
    bob, bob_box = room.person("Bob")
    room.meeting._feeds[11] = (alice, fake_publication("camera", 11))
    room.meeting._feeds[12] = (alice, fake_publication("screen", 12))
    offer = SubscriberOffer(
        "v=0 offer",
        [
            SubscribedStream("0", "audio", 11, True),
            SubscribedStream("1", "video", 12, True),
            SubscribedStream("2", "video", 13, True),  # a feed that just went away
            SubscribedStream("3", "video", 11, False),
        ],
    )
    room.meeting._offer(bob, offer)
    assert bob_box.frames == [
        {
            "type": "offer",
            "sdp": "v=0 offer",
            "streams": [
                {"mid": "0", "participant": alice.id, "target": "camera", "media": "audio"},
                {"mid": "1", "participant": alice.id, "target": "screen", "media": "video"},
            ],
        }
    ]
    assert bob.subscription.pending_offer is offer
    assert bob.subscription.feeds == {11, 12, 13}


async def test_talking_on_the_camera_is_broadcast(room):
    alice, alice_box = room.person("Alice")
    _, bob_box = room.person("Bob")
    room.meeting.rooms["ws://node"] = SimpleNamespace(up=True, url="ws://node")
    camera = fake_publication("camera", 11)
    camera.node = "ws://node"
    alice.publications["camera"] = camera
    for kind in ("talking", "stopped-talking"):
        event = JanusEvent("event", {"videoroom": kind, "id": 11})
        room.meeting._on_publisher_event(alice, camera, event)
    expected = [
        {"type": "speaking", "id": alice.id, "speaking": True},
        {"type": "speaking", "id": alice.id, "speaking": False},
    ]
    assert alice_box.frames == bob_box.frames == expected
    del room.meeting.rooms["ws://node"]  # no Janus room to close


@pytest.mark.parametrize(
    ("janus_message", "candidate"),
    [
        ({"candidate": {"candidate": "c", "sdpMid": "0"}}, {"candidate": "c", "sdpMid": "0"}),
        ({"candidate": {"completed": True}}, None),
        ({}, None),
    ],
)
def test_candidate_frames_for_the_client(janus_message, candidate):
    assert _candidate_frame("camera", janus_message) == {
        "type": "candidate",
        "target": "camera",
        "candidate": candidate,
    }


# -- KeyedLocks ---------------------------------------------------------------------------


async def test_keyed_locks_serialise_one_key_and_are_forgotten_after():
    locks = KeyedLocks()
    order: list[str] = []

    async def hold(key: str, name: str) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    await asyncio.gather(hold("room", "a"), hold("room", "b"), hold("other", "c"))
    assert order.index("a out") < order.index("b in")
    assert order.index("c in") < order.index("a out")  # another key does not wait
    assert len(locks) == 0


async def test_chat_history_of_zero_keeps_nothing():
    made = Room(chat_history_max=0)
    alice, alice_box = made.person("Alice")
    try:
        made.meeting.post_chat(alice, "not kept")
        assert len(alice_box.frames) == 1  # still delivered live
        assert list(made.meeting.chat) == []
    finally:
        await made.meeting.close()


async def test_an_offer_janus_makes_by_itself_is_relayed(room):
    """Janus renegotiates a subscription when a mirrored feed is removed: its offer goes
    to the client like the server's own, and replaces one still waiting for an answer."""
    alice, _ = room.person("Alice")
    bob, bob_box = room.person("Bob")
    room.meeting.rooms["ws://node"] = SimpleNamespace(up=True, url="ws://node")
    bob.node = "ws://node"
    room.meeting._feeds[11] = (alice, fake_publication("camera", 11))
    handle = SimpleNamespace()
    bob.subscription.handle = handle
    bob.subscription.pending_offer = SubscriberOffer("v=0 old", [])
    data = {"videoroom": "updated", "streams": [{"mid": "0", "type": "audio", "feed_id": 11}]}
    event = JanusEvent("event", data, {"type": "offer", "sdp": "v=0 janus"})

    room.meeting._on_subscriber_event(bob, handle, event)
    await room.meeting._settle()

    (frame,) = bob_box.of_type("offer")
    assert frame["sdp"] == "v=0 janus"
    assert frame["streams"] == [
        {"mid": "0", "participant": alice.id, "target": "camera", "media": "audio"}
    ]
    assert bob.subscription.pending_offer.sdp == "v=0 janus"
    bob.subscription.handle = None
    del room.meeting.rooms["ws://node"]


async def test_a_meeting_ended_for_all_logs_each_reporters_quality_line(room, caplog):
    alice, _ = room.person("Alice")
    room.person("Bob")
    report = QualityReport(type="quality", seconds=10, level="fair", rtt_ms=120)
    alice.quality.add(report, now=alice.quality.started + 10)
    with caplog.at_level("INFO", logger="visio.conference.meeting"):
        await room.meeting.close()
    lines = [r for r in caplog.records if r.getMessage() == "call quality"]
    assert [(r.participant, r.reason) for r in lines] == [(alice.id, "ended")]  # Bob sent none
    assert lines[0].fair_pct == 100 and lines[0].rtt_ms == 120
