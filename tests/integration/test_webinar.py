"""Large meetings and webinars with real media: attendees with no right to publish, raised
hands a moderator answers, muting rules, the spotlight and moderators named in the meeting.

Every rule is checked on the server's answers (error frames included) and, where media
is concerned, on Janus itself: who it has joined in its rooms, and which packets flow.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.janus_api import (
    join_as_publisher,
    publish_tokens,
    room_of_publisher,
    videoroom,
)
from visio.client import PcmAudioTrack, TestPatternTrack
from visio.janus.client import JanusError

pytestmark = pytest.mark.integration

EVERY_MODERATOR_REQUEST = [
    {"type": "admit", "all": True},
    {"type": "deny", "all": True},
    {"type": "lock", "locked": True},
    {"type": "end"},
    {"type": "capture", "kind": "recording", "on": True},
    {"type": "moderate", "action": "mute", "all": True},
    {"type": "lower_hand", "all": True},
    {"type": "spotlight", "id": None},
]


def requests_against(victim_id: str) -> list[dict]:
    """Every moderator request aimed at one person."""
    return [
        *EVERY_MODERATOR_REQUEST,
        *(
            {"type": "moderate", "action": action, "id": victim_id}
            for action in ("mute", "camera_off", "stop_screen", "remove")
        ),
        {"type": "grant", "id": victim_id, "right": "speak", "on": False},
        {"type": "lower_hand", "id": victim_id},
        {"type": "spotlight", "id": victim_id},
        {"type": "promote", "id": victim_id},
        {"type": "demote", "id": victim_id},
    ]


async def janus_displays(server) -> set[str]:
    """Whom the server's Janus has joined as publishers, in any of its rooms (the server
    joins each publication under its participant's id)."""
    found: set[str] = set()
    async with videoroom(server) as handle:
        listing = await handle.request({"request": "list", "admin_key": server.admin_key})
        for room in listing["list"]:
            data = await handle.request({"request": "listparticipants", "room": room["room"]})
            found |= {str(p.get("display")) for p in data.get("participants", [])}
    return found


async def webinar(people, bots, **settings):
    """Alice owns a room whose attendees may not publish; she is in it, publishing."""
    alice = await people.signed_in("alice")
    room = await alice.new_room()
    changed = await alice.api(
        "PATCH", f"/api/rooms/{room}", {"attendees_publish": False, **settings}
    )
    assert changed.status_code == 200 and changed.json()["attendees_publish"] is False
    owner = await bots.join(room, "Alice", cookies=alice.cookies)
    return alice, room, owner


async def refused(client, frame: dict, ref: str) -> dict:
    await client.send({**frame, "ref": ref})
    return await client.wait_for(lambda f: f.get("ref") == ref)


async def flows(receiver, sender, media: str = "video", seconds: float = 1.0) -> bool:
    before = receiver.frames_from(sender.id, media)
    await asyncio.sleep(seconds)
    return receiver.frames_from(sender.id, media) > before + 3


async def test_an_attendee_cannot_publish_nor_moderate(people, bots, server):
    _, room, owner = await webinar(people, bots)
    bot = await bots.join(room, "Bot", publish=False)  # a script ignoring the UI
    assert bot.joined["room"]["stage"]["attendees_publish"] is False
    assert (bot.joined["you"]["audio"], bot.joined["you"]["video"]) == (False, False)

    # It sends its offer anyway, for the camera and for the screen: refused, both.
    await bot.publish([PcmAudioTrack(), TestPatternTrack()])
    camera = await bot.wait_for(lambda f: f.get("code") == "forbidden")
    assert "raise your hand" in camera["message"] and "camera" in camera["message"]
    await bot.publish([TestPatternTrack()], target="screen")
    await bot.wait_until(lambda: sum(e["code"] == "forbidden" for e in bot.errors) == 2)
    assert "present" in bot.errors[-1]["message"]
    assert not [f for f in bot.frames if f["type"] == "answer"]
    # Janus has only Alice's publication: the bot never joined it as a publisher.
    displays = await janus_displays(server)
    assert owner.id in displays and bot.id not in displays

    # Claiming a live microphone changes nothing either.
    await bot.set_state(audio=True, video=True)
    await bot.send({"type": "ping"})
    await bot.wait_for(lambda f: f["type"] == "pong")
    assert owner.participants[bot.id]["audio"] is False

    # And no moderator request goes through, old or new.
    requests = requests_against(owner.id)
    for request in requests:
        await bot.send({**request, "ref": "attack"})
    await bot.wait_until(lambda: sum(e.get("ref") == "attack" for e in bot.errors) == len(requests))
    assert {e["code"] for e in bot.errors if e.get("ref") == "attack"} == {"forbidden"}
    await asyncio.sleep(0.3)
    assert not [f for f in owner.frames if f["type"] in ("room", "ended", "moderated", "spotlight")]
    assert owner.joined["you"]["role"] == "owner" and bot.id in owner.participants


async def test_raise_hand_allow_speak_then_revoke(people, bots, server):
    _, room, owner = await webinar(people, bots)
    ann = await bots.join(room, "Ann", publish=False)
    ben = await bots.join(room, "Ben", publish=False)
    await ann.set_state(hand=True)
    await owner.wait_for(lambda f: f["type"] == "hands" and f["queue"] == [ann.id])
    await ben.set_state(hand=True)
    queue = await owner.wait_for(lambda f: f["type"] == "hands" and len(f["queue"]) == 2)
    assert queue["queue"] == [ann.id, ben.id]  # in the order hands went up

    await owner.send({"type": "grant", "id": ann.id, "right": "speak", "on": True})
    granted = await ann.wait_for(lambda f: f["type"] == "granted")
    assert granted == {
        "type": "granted",
        "right": "speak",
        "on": True,
        "by": {"id": owner.id, "name": "Alice"},
    }
    await owner.wait_for(lambda f: f["type"] == "hands" and f["queue"] == [ben.id])
    await owner.wait_until(lambda: owner.participants[ann.id]["granted"] == ["speak"])

    # Ann speaks (camera and microphone), but may not present.
    await ann.publish([PcmAudioTrack(), TestPatternTrack()])
    await ann.wait_for(lambda f: f["type"] == "answer")
    await owner.wait_frames(ann.id, "video", count=3)
    await ben.wait_frames(ann.id, "audio", count=3)
    await ann.publish([TestPatternTrack()], target="screen")
    refusal = await ann.wait_for(lambda f: f.get("code") == "forbidden")
    assert "present" in refusal["message"]

    # Taking the right back stops her publication at Janus.
    await owner.send({"type": "grant", "id": ann.id, "right": "speak", "on": False})
    revoked = await ann.wait_for(lambda f: f["type"] == "granted" and not f["on"])
    assert revoked["right"] == "speak"
    await owner.wait_until(lambda: owner.participants[ann.id]["granted"] == [])
    await asyncio.sleep(0.5)
    assert not await flows(owner, ann)
    assert ann.id not in await janus_displays(server)

    # Lower all hands; the requests that make no sense are refused with a reason.
    await owner.send({"type": "lower_hand", "all": True})
    lowered = await ben.wait_for(lambda f: f["type"] == "hand_lowered")
    assert lowered["by"]["id"] == owner.id
    await owner.wait_for(lambda f: f["type"] == "hands" and f["queue"] == [])
    assert owner.participants[ben.id]["hand"] is False
    gone = await refused(
        owner, {"type": "grant", "id": "p-00000000", "right": "speak", "on": True}, "1"
    )
    assert gone["code"] == "not_found"
    moot = await refused(
        owner, {"type": "grant", "id": owner.id, "right": "speak", "on": True}, "2"
    )
    assert moot["code"] == "bad_message" and "moderates" in moot["message"]
    bad = await refused(owner, {"type": "grant", "id": ann.id, "right": "dance", "on": True}, "3")
    assert bad["code"] == "bad_message"


async def test_janus_itself_refuses_a_publisher_the_server_did_not_let_in(people, bots, server):
    """Defence in depth: Janus lets a publisher join a meeting's room only with a token the
    server put on the room's list, for someone who may publish now."""
    _, room, owner = await webinar(people, bots)
    ann = await bots.join(room, "Ann", publish=False)
    janus_room = await room_of_publisher(server, owner.id)
    alices = await publish_tokens(server, janus_room)
    assert len(alices) == 2  # her camera and her screen; Ann may publish neither

    # Straight to Janus, past the server: no token, or a made-up one, is refused...
    for token in (None, "camera-" + "0" * 32):
        with pytest.raises(JanusError) as refusal:
            await join_as_publisher(server, janus_room, token)
        assert refusal.value.code == 433, refusal.value
    # ...and a token on the list is let in: the list is what Janus decides by.
    await join_as_publisher(server, janus_room, min(alices))

    # Once Ann may speak, her camera's token is on the list; taken back, it is gone.
    await owner.send({"type": "grant", "id": ann.id, "right": "speak", "on": True})
    await ann.wait_for(lambda f: f["type"] == "granted" and f["on"])
    await ann.publish([PcmAudioTrack(), TestPatternTrack()])
    await ann.wait_for(lambda f: f["type"] == "answer")
    with_ann = await publish_tokens(server, janus_room)
    assert len(with_ann - alices) == 1 and with_ann > alices
    await owner.send({"type": "grant", "id": ann.id, "right": "speak", "on": False})
    await ann.wait_for(lambda f: f["type"] == "granted" and not f["on"])
    for _ in range(50):
        if await publish_tokens(server, janus_room) == alices:
            break
        await asyncio.sleep(0.1)
    assert await publish_tokens(server, janus_room) == alices


async def test_a_room_turned_webinar_stops_attendees_publishing(people, bots, server):
    alice = await people.signed_in("alice")
    room = await alice.new_room()
    owner = await bots.join(room, "Alice", cookies=alice.cookies)
    gus = await bots.join(room, "Gus")
    await owner.wait_frames(gus.id, "video", count=3)
    changed = await alice.api("PATCH", f"/api/rooms/{room}", {"attendees_publish": False})
    assert changed.status_code == 200
    told = await gus.wait_for(lambda f: f["type"] == "room")
    assert told["room"]["stage"]["attendees_publish"] is False
    await owner.wait_until(lambda: owner.participants[gus.id]["audio"] is False)
    await asyncio.sleep(0.5)
    assert not await flows(owner, gus)
    assert gus.id not in await janus_displays(server) and owner.id in await janus_displays(server)
    assert await flows(gus, owner)  # moderators still speak


async def test_newcomers_enter_muted_in_a_big_meeting(people, bots):
    alice = await people.signed_in("alice")
    room = await alice.new_room()
    bad = await alice.api("PATCH", f"/api/rooms/{room}", {"mute_on_entry_above": -1})
    assert bad.status_code == 422
    assert (await alice.api("PATCH", f"/api/rooms/{room}", {"mute_on_entry_above": 2})).json()[
        "mute_on_entry_above"
    ] == 2
    first = await bots.join(room, "One", publish=False)
    second = await bots.join(room, "Two", publish=False)
    third = await bots.join(room, "Three", publish=False)
    owner = await bots.join(room, "Alice", publish=False, cookies=alice.cookies)
    assert [c.joined["you"]["audio"] for c in (first, second, third)] == [True, True, False]
    assert third.joined["room"]["stage"]["mute_on_entry_above"] == 2
    assert owner.joined["you"]["audio"] is True  # moderators enter as they asked
    await third.set_state(audio=True)  # one unmutes oneself
    await first.wait_until(lambda: first.participants[third.id]["audio"] is True)


async def test_everyone_can_mute_is_a_room_policy(people, bots):
    alice = await people.signed_in("alice")
    room = await alice.new_room()
    owner = await bots.join(room, "Alice", cookies=alice.cookies)
    gus = await bots.join(room, "Gus")
    hal = await bots.join(room, "Hal")
    await gus.wait_frames(hal.id, "audio", count=3)
    no = await refused(gus, {"type": "moderate", "action": "mute", "id": hal.id}, "no")
    assert no["code"] == "forbidden"

    changed = await alice.api("PATCH", f"/api/rooms/{room}", {"everyone_can_mute": True})
    assert changed.json()["everyone_can_mute"] is True
    await gus.wait_for(lambda f: f["type"] == "room" and f["room"]["stage"]["everyone_can_mute"])
    await gus.send({"type": "moderate", "action": "mute", "id": hal.id})
    told = await hal.wait_for(lambda f: f["type"] == "moderated")
    assert told["by"] == {"id": gus.id, "name": "Gus"}
    await owner.wait_until(lambda: owner.participants[hal.id]["audio"] is False)
    await asyncio.sleep(0.3)
    assert not await flows(owner, hal, "audio")  # Janus forwards nothing
    # Muting, one person at a time: nothing else.
    for request, code in (
        ({"type": "moderate", "action": "mute", "all": True}, "forbidden"),
        ({"type": "moderate", "action": "camera_off", "id": hal.id}, "forbidden"),
        ({"type": "moderate", "action": "mute", "id": owner.id}, "forbidden"),
    ):
        assert (await refused(gus, request, request["action"]))["code"] == code


async def test_spotlight_and_a_moderator_named_in_the_meeting(people, bots, server):
    _, room, owner = await webinar(people, bots)
    gus = await bots.join(room, "Gus", publish=False)
    await owner.send({"type": "spotlight", "id": owner.id})
    shown = await gus.wait_for(lambda f: f["type"] == "spotlight")
    assert shown == {"type": "spotlight", "id": owner.id, "by": {"id": owner.id, "name": "Alice"}}
    late = await bots.join(room, "Late", publish=False)
    assert late.joined["room"]["stage"]["spotlight"] == owner.id

    await owner.send({"type": "promote", "id": gus.id})
    me = await gus.wait_for(lambda f: f["type"] == "participant_updated")
    assert me["participant"]["id"] == gus.id and me["participant"]["role"] == "admin"
    await late.wait_until(lambda: late.participants[gus.id]["role"] == "admin")
    # Gus now moderates: he publishes without asking, and puts Late in the spotlight.
    await gus.publish([PcmAudioTrack(), TestPatternTrack()])
    await late.wait_frames(gus.id, "video", count=3)
    await gus.send({"type": "spotlight", "id": late.id})
    await owner.wait_for(lambda f: f["type"] == "spotlight" and f["id"] == late.id)
    owner_is = await refused(gus, {"type": "demote", "id": owner.id}, "d")
    assert owner_is["code"] == "bad_message" and "owns the room" in owner_is["message"]
    twice = await refused(owner, {"type": "promote", "id": gus.id}, "p")
    assert twice["code"] == "bad_message"

    # Demoted, he is an attendee again: his publication stops, his requests are refused.
    await owner.send({"type": "demote", "id": gus.id})
    await gus.wait_for(
        lambda f: f["type"] == "participant_updated" and f["participant"]["role"] == "participant"
    )
    await asyncio.sleep(0.5)
    assert not await flows(late, gus)
    assert gus.id not in await janus_displays(server)
    assert (await refused(gus, {"type": "spotlight", "id": None}, "s"))["code"] == "forbidden"
    await owner.send({"type": "spotlight", "id": None})
    await late.wait_for(lambda f: f["type"] == "spotlight" and f["id"] is None)
