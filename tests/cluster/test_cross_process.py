"""Two people connected to two different server processes are in the same meeting: media,
chat, the lobby, moderation and the capture state all work across them."""

from __future__ import annotations

import pytest

from visio.client import PcmAudioTrack, TestPatternTrack

pytestmark = pytest.mark.integration


async def test_media_and_chat_across_processes(deployment, bots):
    a, b = deployment.servers
    room = deployment.create_room()
    alice = await bots.join(a.base_url, room, "Alice")
    bob = await bots.join(b.base_url, room, "Bob")

    assert [p["name"] for p in bob.joined["participants"]] == ["Alice"]
    await alice.wait_frames(bob.id, "video")
    await bob.wait_frames(alice.id, "video")
    await alice.wait_frames(bob.id, "audio")
    await bob.chat_send("hello across processes")
    await alice.wait_until(lambda: [m["text"] for m in alice.chat] == ["hello across processes"])
    late = await bots.join(b.base_url, room, "Carol", publish=False)
    assert [m["text"] for m in late.joined["chat"]] == ["hello across processes"]


async def test_lobby_moderation_and_capture_across_processes(deployment, people, bots):
    a, b = deployment.servers
    alice = await people.signed_in("alice")
    room = await alice.new_room(access="trusted")
    owner = await bots.join(a.base_url, room, "Alice", cookies=alice.cookies)
    guest = await bots.join(b.base_url, room, "Gus")  # a guest waits, relayed through B
    assert guest.frames[-1]["type"] == "lobby"
    update = await owner.wait_for(lambda f: f["type"] == "lobby_update" and f["waiting"])
    assert [w["name"] for w in update["waiting"]] == ["Gus"]

    await owner.send({"type": "admit", "id": update["waiting"][0]["id"]})
    await guest.admitted()
    await guest.publish([PcmAudioTrack(), TestPatternTrack()])
    await owner.wait_frames(guest.id, "video")

    await owner.send({"type": "moderate", "action": "mute", "id": guest.id})
    told = await guest.wait_for(lambda f: f["type"] == "moderated")
    assert told["action"] == "mute" and told["by"]["id"] == owner.id

    await owner.send({"type": "capture", "kind": "transcription", "on": True})
    room_frame = await guest.wait_for(
        lambda f: f["type"] == "room" and f["room"]["capture"]["transcription"]
    )
    assert room_frame["room"]["capture"] == {"transcription": True, "recording": False}
    status, seen = b.get(f"/api/rooms/{room}")
    assert status == 200 and seen["capture"]["transcription"]
    assert seen["participants"] is None  # a guest would wait: not told who is in (audit L6)
    assert (await alice.api("GET", f"/api/rooms/{room}")).json()["participants"] == 2

    # Live captions run where the room is held; the relayed guest gets them through B.
    await guest.send({"type": "captions", "on": True})
    answer = await guest.wait_for(lambda f: f["type"] == "captions", timeout=60)
    assert answer["on"] is True and answer["history"] == []


async def test_webinar_hands_grants_and_spotlight_across_processes(deployment, people, bots):
    """The room is held by A; an attendee relayed through B is refused, raises a hand, is
    let speak and put in the spotlight, and loses the right again (issue 11 part 4)."""
    a, b = deployment.servers
    alice = await people.signed_in("alice")
    room = await alice.new_room()
    changed = await alice.api("PATCH", f"/api/rooms/{room}", {"attendees_publish": False})
    assert changed.status_code == 200
    owner = await bots.join(a.base_url, room, "Alice", cookies=alice.cookies)
    gus = await bots.join(b.base_url, room, "Gus", publish=False)
    late = await bots.join(b.base_url, room, "Late", publish=False)

    await gus.publish([PcmAudioTrack(), TestPatternTrack()])
    refused = await gus.wait_for(lambda f: f.get("code") == "forbidden")
    assert "raise your hand" in refused["message"]
    await gus.set_state(hand=True)
    await owner.wait_for(lambda f: f["type"] == "hands" and f["queue"] == [gus.id])
    await owner.send({"type": "grant", "id": gus.id, "right": "speak", "on": True})
    await gus.wait_for(lambda f: f["type"] == "granted" and f["on"])
    await gus.publish([PcmAudioTrack(), TestPatternTrack()])
    await owner.wait_frames(gus.id, "video", count=3)
    await late.wait_frames(gus.id, "video", count=3)

    await owner.send({"type": "spotlight", "id": gus.id})
    for viewer in (gus, late):
        shown = await viewer.wait_for(lambda f: f["type"] == "spotlight")
        assert shown["id"] == gus.id
    await owner.send({"type": "grant", "id": gus.id, "right": "speak", "on": False})
    await gus.wait_for(lambda f: f["type"] == "granted" and not f["on"])
    await late.wait_until(lambda: late.participants[gus.id]["granted"] == [])
