"""Meetings end to end: real server, real Janus, aiortc bots in a network namespace."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.integration.janus_api import janus_rooms
from visio.client import PcmAudioTrack, TestPatternTrack

pytestmark = pytest.mark.integration


async def test_two_bots_receive_each_others_audio_and_video(bots, room):
    alice = await bots.join(room, "Alice")
    bob = await bots.join(room, "Bob")

    for me, other in ((alice, bob), (bob, alice)):
        await me.wait_frames(other.id, "video", count=10)
        await me.wait_frames(other.id, "audio", count=25)
    frame = alice.received[(bob.id, "camera", "video")].last_frame
    assert (frame.width, frame.height) == (320, 240)


async def test_participants_see_each_other_join_with_names(bots, room):
    alice = await bots.join(room, "Alice", publish=False)
    bob = await bots.join(room, "Bob", publish=False)

    joined = await alice.wait_for(lambda f: f["type"] == "participant_joined")
    assert joined["participant"]["id"] == bob.id
    assert joined["participant"]["name"] == "Bob"
    assert [p["id"] for p in bob.joined["participants"]] == [alice.id]


async def test_late_joiner_gets_chat_history_and_media(bots, room):
    alice = await bots.join(room, "Alice")
    bob = await bots.join(room, "Bob")
    await alice.chat_send("first")
    await bob.chat_send("second")
    await alice.wait_until(lambda: len(alice.chat) == 2)

    carol = await bots.join(room, "Carol", publish=False)

    assert [(m["name"], m["text"]) for m in carol.joined["chat"]] == [
        ("Alice", "first"),
        ("Bob", "second"),
    ]
    await carol.wait_frames(alice.id, "video", count=5)
    await carol.wait_frames(bob.id, "video", count=5)
    await carol.chat_send("third")
    message = await alice.wait_for(
        lambda f: f["type"] == "chat" and f["message"]["text"] == "third"
    )
    assert message["message"]["from"] == carol.id


async def test_leaving_is_announced_and_media_stops_being_offered(bots, room):
    alice = await bots.join(room, "Alice")
    bob = await bots.join(room, "Bob")
    await alice.wait_frames(bob.id, "video")

    mark = len(alice.frames)
    await bob.leave()

    left = await alice.wait_for(lambda f: f["type"] == "participant_left", since=mark)
    assert left == {"type": "participant_left", "id": bob.id, "reason": "left"}
    # Janus may drop Bob's streams without a renegotiation (nothing left to negotiate);
    # the next offer Alice gets, at the latest when Carol arrives, has none of them.
    carol = await bots.join(room, "Carol")
    offer = await alice.wait_for(
        lambda f: f["type"] == "offer" and any(s["participant"] == carol.id for s in f["streams"]),
        since=mark,
    )
    assert all(stream["participant"] != bob.id for stream in offer["streams"])


async def test_state_changes_reach_others(bots, room):
    alice = await bots.join(room, "Alice", publish=False)
    bob = await bots.join(room, "Bob", publish=False)

    await bob.set_state(audio=False, hand=True)

    update = await alice.wait_for(lambda f: f["type"] == "participant_updated")
    assert update["participant"]["id"] == bob.id
    assert update["participant"]["audio"] is False
    assert update["participant"]["hand"] is True
    assert update["participant"]["video"] is True
    await bob.send({"type": "reaction", "emoji": "🎉"})
    reaction = await alice.wait_for(lambda f: f["type"] == "reaction")
    assert reaction == {"type": "reaction", "from": bob.id, "emoji": "🎉"}


async def test_screen_share_reaches_others_as_its_own_target(bots, room):
    alice = await bots.join(room, "Alice")
    bob = await bots.join(room, "Bob", publish=False)

    await alice.publish([TestPatternTrack(640, 360, fps=5), PcmAudioTrack()], target="screen")

    update = await bob.wait_for(
        lambda f: f["type"] == "participant_updated" and f["participant"]["screen"]
    )
    assert update["participant"]["id"] == alice.id
    await bob.wait_frames(alice.id, "video", target="screen", count=3)
    await bob.wait_frames(alice.id, "audio", target="screen", count=10)
    await bob.wait_frames(alice.id, "video", target="camera", count=3)

    mark = len(bob.frames)
    await alice.unpublish("screen")
    stopped = await bob.wait_for(
        lambda f: f["type"] == "participant_updated" and not f["participant"]["screen"],
        since=mark,
    )
    assert stopped["participant"]["id"] == alice.id


async def test_cut_connection_resumes_same_participant_without_duplicate(bots, room):
    alice = await bots.join(room, "Alice")
    bob = await bots.join(room, "Bob")
    await alice.wait_frames(bob.id, "video")
    mark = len(alice.frames)
    before = bob.frames_from(alice.id, "video")

    bob.cut()

    lost = await alice.wait_for(
        lambda f: (
            f["type"] == "participant_updated" and f["participant"]["connection"] == "reconnecting"
        ),
        since=mark,
    )
    assert lost["participant"]["id"] == bob.id
    back = await alice.wait_for(
        lambda f: (
            f["type"] == "participant_updated" and f["participant"]["connection"] == "connected"
        ),
        since=mark,
    )
    assert back["participant"]["id"] == bob.id
    assert bob.reconnections == 1
    assert bob.joined["resumed"] is True
    assert bob.joined["you"]["id"] == bob.id
    assert not any(
        f["type"] in ("participant_left", "participant_joined") for f in alice.frames[mark:]
    )
    # Media kept flowing both ways through the WebSocket cut.
    await bob.wait_frames(alice.id, "video", count=before + 15)
    seen = alice.frames_from(bob.id, "video")
    await alice.wait_frames(bob.id, "video", count=seen + 15)
    await bob.chat_send("back")
    await alice.wait_for(lambda f: f["type"] == "chat" and f["message"]["from"] == bob.id)


async def test_participant_who_does_not_come_back_times_out(bots, room):
    alice = await bots.join(room, "Alice", publish=False)
    bob = await bots.join(room, "Bob", publish=False, auto_reconnect=False)

    bob.cut()

    left = await alice.wait_for(lambda f: f["type"] == "participant_left", timeout=15)
    assert left == {"type": "participant_left", "id": bob.id, "reason": "timeout"}


async def test_resume_on_a_new_connection_replaces_the_old_one(server, bots, room):
    alice = await bots.join(room, "Alice", publish=False)
    token = alice.joined["resume"]

    async with websockets.connect(server.base_url.replace("http", "ws") + "/ws") as ws:
        await ws.send(json.dumps({"type": "join", "room": room, "name": "x", "resume": token}))
        joined = json.loads(await ws.recv())
        assert joined["type"] == "joined"
        assert joined["resumed"] is True
        assert joined["you"]["id"] == alice.id
        replaced = await alice.wait_for(lambda f: f.get("code") == "replaced")
        assert replaced["type"] == "error"


async def test_last_one_out_destroys_the_janus_room(server, bots, room):
    before = set(await janus_rooms(server))
    alice = await bots.join(room, "Alice")
    bob = await bots.join(room, "Bob")
    await alice.wait_frames(bob.id, "video")
    during = set(await janus_rooms(server)) - before
    assert len(during) == 1

    await alice.leave()
    await bob.leave()

    for _ in range(50):
        if not set(await janus_rooms(server)) & during:
            break
        await asyncio.sleep(0.1)
    assert not set(await janus_rooms(server)) & during
    status, _health = server.get("/healthz")
    assert status == 200
    status, info = server.get(f"/api/rooms/{room}")
    assert info["participants"] == 0


async def test_rejoin_after_meeting_ended_starts_a_new_meeting(bots, room):
    alice = await bots.join(room, "Alice")
    await alice.leave()
    bob = await bots.join(room, "Bob")
    carol = await bots.join(room, "Carol")
    await carol.wait_frames(bob.id, "video")
    assert bob.joined["chat"] == []


async def test_meeting_survives_a_janus_crash(bots):
    """Janus dies: the server restarts it, and the meeting goes on there with the same
    people and chat; everyone's media starts afresh (a `joined` that is not `resumed`)."""
    import os
    import signal

    import psutil

    # A server of its own: killing Janus must not disturb the other tests.
    from visio.testing.server import ServerProcess

    server = ServerProcess()
    server.start()
    try:
        bots.server = server
        room = server.create_room()
        alice = await bots.join(room, "Alice")
        bob = await bots.join(room, "Bob")
        await alice.wait_frames(bob.id, "video")
        await alice.chat_send("before the crash")
        await bob.wait_until(lambda: any(m["text"] == "before the crash" for m in bob.chat))
        (janus,) = [p for p in psutil.Process(server.process.pid).children() if p.name() == "janus"]
        since = {alice: len(alice.frames), bob: len(bob.frames)}

        os.kill(janus.pid, signal.SIGKILL)

        for bot, other in ((alice, bob), (bob, alice)):
            again = await bot.wait_for(
                lambda f: f["type"] == "joined" and not f["resumed"], timeout=20, since=since[bot]
            )
            assert again["you"]["id"] == bot.id  # the same place, not a new participant
            assert [p["id"] for p in again["participants"]] == [other.id]
            assert [m["text"] for m in again["chat"]] == ["before the crash"]
        for bot, other in ((alice, bob), (bob, alice)):
            seen = bot.frames_from(other.id, "video")
            await bot.wait_frames(other.id, "video", count=seen + 5, timeout=30)
        status, health = server.get("/healthz")
        assert status == 200 and health["meetings"] == 1
    finally:
        await bots.close()
        server.stop()
