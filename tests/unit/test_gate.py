"""Janus' own check on publishers (visio.conference.gate): whose tokens go on a room's list,
and how a room's list is brought in line with Janus' (against the fake Janus)."""

from __future__ import annotations

from visio.conference.gate import allowed_tokens, new_key, publish_token
from visio.conference.media import MediaRoom
from visio.conference.participant import Participant
from visio.conference.stage import Stage
from visio.janus.nodes import JanusNode


def test_tokens_are_per_person_target_and_meeting():
    key = new_key()
    token = publish_token(key, "p-0000000a", "camera")
    assert token == publish_token(key, "p-0000000a", "camera")  # a takeover derives the same
    assert token != publish_token(key, "p-0000000a", "screen")
    assert token != publish_token(key, "p-0000000b", "camera")
    assert token != publish_token(new_key(), "p-0000000a", "camera")


def test_only_those_who_may_publish_have_tokens():
    key = new_key()
    host, ann, ben = (
        Participant(name="Host", role="admin"),
        Participant(name="Ann", granted={"speak"}),
        Participant(name="Ben"),
    )
    tokens = allowed_tokens(key, Stage(attendees_publish=False), [host, ann, ben])
    assert tokens == {
        publish_token(key, host.id, "camera"),
        publish_token(key, host.id, "screen"),
        publish_token(key, ann.id, "camera"),
    }
    everyone = allowed_tokens(key, Stage(), [host, ann, ben])
    assert len(everyone) == 6


class AllowedList:
    """What Janus does with `allowed` requests, on one room."""

    def __init__(self, fake_janus, tokens: set[str]) -> None:
        self.tokens = set(tokens)
        self.fake = fake_janus
        fake_janus.responders["message"] = self.answer

    def answer(self, msg):
        body = msg["body"]
        change = set(body.get("allowed", []))
        if body["action"] == "add":
            self.tokens |= change
        elif body["action"] == "remove":
            self.tokens -= change
        data = {"videoroom": "success", "allowed": sorted(self.tokens)}
        return [self.fake.plugin_success(msg, data)]

    def actions(self) -> list[str]:
        return [b["action"] for b in self.fake.bodies() if b["request"] == "allowed"]


async def test_a_room_asks_janus_first_then_sends_only_the_difference(fake_janus):
    node = JanusNode(fake_janus.url, "", "")
    await node.connect()
    assert node.connection is not None
    janus = AllowedList(fake_janus, {"left-behind", "kept"})  # a room taken over
    room = MediaRoom(node, 5, await node.connection.create_session())

    await room.allow_publishers({"kept", "new"})
    assert janus.tokens == {"kept", "new"} == room.publishers_allowed
    assert janus.actions() == ["enable", "remove", "add"]

    await room.allow_publishers({"kept", "new"})
    assert janus.actions() == ["enable", "remove", "add"]  # nothing to change: not asked
    await room.allow_publishers({"new"})
    assert janus.tokens == {"new"} and janus.actions()[-1] == "remove"
    await node.connection.close()
