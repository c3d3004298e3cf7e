"""Moderation by a room's owner and admins, and nobody else, with real media."""

from __future__ import annotations

import asyncio

import pytest

from visio.client import VisioError

pytestmark = pytest.mark.integration

EVERY_MODERATOR_REQUEST = [
    {"type": "admit", "all": True},
    {"type": "deny", "all": True},
    {"type": "lock", "locked": True},
    {"type": "end"},
    {"type": "moderate", "action": "mute", "all": True},
]


async def meeting_of_three(people, bots, access: str = "public"):
    """Alice owns the room; Bob (signed in) and Gus (a guest) are in it, all publishing."""
    alice, bob = await people.signed_in("alice"), await people.signed_in("bob")
    room = await alice.new_room(access=access)
    owner = await bots.join(room, "Alice", cookies=alice.cookies)
    member = await bots.join(room, "Bob", cookies=bob.cookies)
    guest = await bots.join(room, "Gus", cookies=(await people.guest()).cookies)
    for viewer in (owner, member, guest):
        for other in (owner, member, guest):
            if other is not viewer:
                await viewer.wait_frames(other.id, "video", count=3)
    return alice, room, owner, member, guest


async def audio_flows(receiver, sender, seconds: float = 1.0) -> bool:
    before = receiver.frames_from(sender.id, "audio")
    await asyncio.sleep(seconds)
    return receiver.frames_from(sender.id, "audio") > before + 5


async def test_nobody_but_moderators_may_moderate(people, bots):
    alice, room, owner, member, guest = await meeting_of_three(people, bots)
    late = await bots.join(room, "Late", publish=False)
    requests = [
        *EVERY_MODERATOR_REQUEST,
        *(
            {"type": "moderate", "action": action, "id": owner.id}
            for action in ("mute", "camera_off", "stop_screen", "remove")
        ),
        {"type": "moderate", "action": "remove", "id": member.id},
    ]
    for attacker in (member, guest):
        for request in requests:
            await attacker.send({**request, "ref": "attack"})
        await attacker.wait_until(
            lambda a=attacker: sum(e.get("ref") == "attack" for e in a.errors) == len(requests)
        )
        assert {e["code"] for e in attacker.errors if e.get("ref") == "attack"} == {"forbidden"}

    # Nothing changed: everyone is still there, unmuted, the meeting is neither locked
    # nor ended, and media still flows.
    await asyncio.sleep(0.5)
    assert set(owner.participants) == {member.id, guest.id, late.id}
    assert all(p["audio"] for p in owner.participants.values() if p["id"] != late.id)
    assert not [f for f in owner.frames if f["type"] in ("room", "ended", "moderated")]
    assert await audio_flows(member, owner) and await audio_flows(owner, guest)
    status = (await alice.api("GET", f"/api/rooms/{room}/participants")).json()
    assert status["running"] and not status["locked"] and len(status["participants"]) == 4


async def test_mute_stops_the_microphone_at_the_media_server(people, bots):
    _, _, owner, member, guest = await meeting_of_three(people, bots)
    assert await audio_flows(owner, guest)
    await owner.send({"type": "moderate", "action": "mute", "id": guest.id})
    told = await guest.wait_for(lambda f: f["type"] == "moderated")
    assert told == {"type": "moderated", "action": "mute", "by": {"id": owner.id, "name": "Alice"}}
    await member.wait_until(lambda: member.participants[guest.id]["audio"] is False)
    await asyncio.sleep(0.3)  # packets already on their way
    assert not await audio_flows(member, guest)  # Janus forwards nothing, whatever Gus sends

    await guest.set_state(audio=True)  # Gus turns his microphone back on himself
    await member.wait_until(lambda: member.participants[guest.id]["audio"] is True)
    assert await audio_flows(member, guest)


async def test_mute_all_spares_the_moderators(people, bots):
    _, _, owner, member, guest = await meeting_of_three(people, bots)
    await owner.send({"type": "moderate", "action": "mute", "all": True})
    for muted in (member, guest):
        await muted.wait_for(lambda f: f["type"] == "moderated")
    await owner.wait_until(lambda: not any(p["audio"] for p in owner.participants.values()))
    assert owner.joined["you"]["audio"] and await audio_flows(member, owner)


async def test_camera_off_and_stop_screen(people, bots):
    from visio.client import TestPatternTrack

    _, _, owner, member, guest = await meeting_of_three(people, bots)
    await guest.publish([TestPatternTrack()], target="screen")
    await member.wait_frames(guest.id, "video", target="screen", count=3)
    await owner.send({"type": "moderate", "action": "stop_screen", "id": guest.id})
    await guest.wait_for(lambda f: f.get("action") == "stop_screen")
    await member.wait_until(lambda: member.participants[guest.id]["screen"] is False)

    await owner.send({"type": "moderate", "action": "camera_off", "id": guest.id})
    await guest.wait_for(lambda f: f.get("action") == "camera_off")
    await member.wait_until(lambda: member.participants[guest.id]["video"] is False)
    await asyncio.sleep(0.5)
    before = member.frames_from(guest.id, "video")
    await asyncio.sleep(1.0)
    assert member.frames_from(guest.id, "video") <= before + 1


async def test_a_removed_guest_cannot_come_straight_back(people, bots, server):
    _, room, owner, member, guest = await meeting_of_three(people, bots)
    await owner.send({"type": "moderate", "action": "remove", "id": guest.id})
    removed = await guest.wait_for(lambda f: f.get("code") == "removed")
    assert "Alice" in removed["message"]
    left = await member.wait_for(lambda f: f["type"] == "participant_left")
    assert left == {"type": "participant_left", "id": guest.id, "reason": "removed"}

    again = await bots.join(room, "Gus again", cookies={"visio_guest": guest_key(guest)})
    assert again.frames[-1]["type"] == "lobby" and again.frames[-1]["reason"] == "removed"
    update = await owner.wait_for(lambda f: f["type"] == "lobby_update" and f["waiting"])
    await owner.send({"type": "admit", "id": update["waiting"][0]["id"]})
    await again.admitted()


async def test_a_removed_guest_without_a_cookie_waits_when_back(people, bots, server):
    """Audit M5: a script sends no cookie; its address is what a removal bans, for guests
    only: a signed-in person at the same address still walks in."""
    _, room, owner, _, _ = await meeting_of_three(people, bots)
    script = await bots.join(room, "Script", publish=False)
    assert "visio_guest" not in script.headers.get("Cookie", "")
    await owner.send({"type": "moderate", "action": "remove", "id": script.id})
    await script.wait_for(lambda f: f.get("code") == "removed")
    again = await bots.join(room, "Script again", publish=False)
    assert again.frames[-1]["type"] == "lobby" and again.frames[-1]["reason"] == "removed"
    carol = await people.signed_in("carol")
    colleague = await bots.join(room, "Carol", publish=False, cookies=carol.cookies)
    assert colleague.joined is not None


def guest_key(client) -> str:
    return client.headers["Cookie"].split("visio_guest=")[1].split(";")[0]


async def test_a_locked_meeting_makes_everyone_wait_until_unlocked(people, bots):
    _, room, owner, member, _ = await meeting_of_three(people, bots)
    await owner.send({"type": "lock", "locked": True})
    locked = await member.wait_for(lambda f: f["type"] == "room")
    assert locked["room"]["locked"] is True
    carol = await people.signed_in("carol")
    newcomer = await bots.join(room, "Carol", cookies=carol.cookies)
    assert newcomer.frames[-1]["reason"] == "locked"
    await owner.send({"type": "lock", "locked": False})
    await newcomer.admitted()


async def test_ending_the_meeting_ends_it_for_everyone(people, bots, server):
    alice, room, owner, member, guest = await meeting_of_three(people, bots)
    await owner.send({"type": "lock", "locked": True})
    waiting = await bots.join(room, "Waiting", publish=False)
    await owner.wait_for(lambda f: f["type"] == "lobby_update" and f["waiting"])
    await owner.send({"type": "end"})
    for client in (member, guest, waiting):
        ended = await client.wait_for(lambda f: f["type"] == "ended")
        assert ended["by"] == {"id": owner.id, "name": "Alice"}
    with pytest.raises(VisioError):
        await waiting.admitted(timeout=1)
    status = (await alice.api("GET", f"/api/rooms/{room}/participants")).json()
    assert status == {"running": False, "locked": False, "participants": [], "waiting": []}


async def test_only_the_owner_acts_on_another_moderator(people, bots):
    alice, dave = await people.signed_in("alice"), await people.signed_in("dave")
    erin = await people.signed_in("erin")
    room = await alice.new_room()
    for admin in ("dave", "erin"):
        await alice.api("PUT", f"/api/rooms/{room}/members/{admin}@visio.test", {"role": "admin"})
    owner = await bots.join(room, "Alice", cookies=alice.cookies)
    first = await bots.join(room, "Dave", cookies=dave.cookies)
    second = await bots.join(room, "Erin", cookies=erin.cookies)
    await first.send({"type": "moderate", "action": "remove", "id": second.id, "ref": "r"})
    refused = await first.wait_for(lambda f: f.get("ref") == "r")
    assert refused["code"] == "forbidden"
    await first.send({"type": "moderate", "action": "remove", "id": owner.id, "ref": "r2"})
    assert (await first.wait_for(lambda f: f.get("ref") == "r2"))["code"] == "forbidden"
    await owner.send({"type": "moderate", "action": "remove", "id": second.id})
    await second.wait_for(lambda f: f.get("code") == "removed")


async def test_deleting_a_room_ends_its_meeting(people, bots):
    alice = await people.signed_in("alice")
    room = await alice.new_room()
    owner = await bots.join(room, "Alice", cookies=alice.cookies)
    guest = await bots.join(room, "Gus")
    assert (await alice.api("DELETE", f"/api/rooms/{room}")).status_code == 204
    ended = await guest.wait_for(lambda f: f["type"] == "ended")
    assert ended["by"] is None
    await owner.wait_for(lambda f: f["type"] == "ended")


async def test_moderators_cap_the_number_of_participants(people, bots):
    alice = await people.signed_in("alice")
    room = await alice.new_room()
    owner = await bots.join(room, "Alice", publish=False, cookies=alice.cookies)
    capped = await alice.api("PATCH", f"/api/rooms/{room}", {"max_participants": 2})
    assert capped.status_code == 200 and capped.json()["max_participants"] == 2
    told = await owner.wait_for(lambda f: f["type"] == "room")
    assert told["room"]["max_participants"] == 2
    await bots.join(room, "Bob", publish=False)
    with pytest.raises(VisioError) as full:
        await bots.join(room, "Carol", publish=False)
    assert full.value.code == "room_full" and "2 people" in str(full.value)
    assert (
        await alice.api("PATCH", f"/api/rooms/{room}", {"max_participants": 1})
    ).status_code == 422
    assert (
        await alice.api("PATCH", f"/api/rooms/{room}", {"max_participants": 0})
    ).status_code == 200
    carol = await bots.join(room, "Carol", publish=False)
    assert carol.joined["room"]["max_participants"] is None
    guest = await people.guest()
    refused = await guest.api("PATCH", f"/api/rooms/{room}", {"max_participants": 5})
    assert refused.status_code == 401
