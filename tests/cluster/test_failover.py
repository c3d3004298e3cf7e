"""A server process dies (kill -9) or drains (SIGTERM): its meetings go on elsewhere.

Everyone connects through HAProxy, as browsers do. The room's owner is found in Redis and
is the process stopped; every client comes back to the same meeting (resumed: same
participant, same chat, the lobby queue intact, nobody twice) and the media never stop:
the new owner claims the meeting's Janus session, so no peer connection is renegotiated.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request

import pytest
import redis.asyncio as aioredis

from visio.client import VisioClient
from visio.testing.cluster import Deployment
from visio.testing.process import stop_process
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.integration


def process_of(server: ServerProcess) -> str | None:
    if server.process is None or server.process.poll() is not None:
        return None
    with urllib.request.urlopen(server.base_url + "/healthz", timeout=2) as reply:
        return str(json.loads(reply.read())["process"])


async def owner_of(deployment: Deployment, room: str) -> ServerProcess:
    redis = aioredis.Redis.from_url(deployment.redis.url, decode_responses=True)
    try:
        process_id = await redis.get(f"visio:room:{room}:owner")
    finally:
        await redis.aclose()
    for server in deployment.servers:
        if await asyncio.to_thread(process_of, server) == process_id:
            return server
    raise AssertionError(f"no live process owns {room} ({process_id})")


async def meeting_with_a_waiter(deployment, people, bots):
    alice = await people.signed_in("alice")
    room = await alice.new_room(access="trusted")
    url = deployment.base_url
    owner = await bots.join(url, room, "Alice", cookies=alice.cookies)
    bob = await bots.join(url, room, "Bob", cookies=(await people.signed_in("bob")).cookies)
    waiter = await bots.join(url, room, "Gus")
    assert waiter.frames[-1]["type"] == "lobby"
    await owner.wait_for(lambda f: f["type"] == "lobby_update" and f["waiting"])
    await bob.chat_send("before the failover")
    for bot in (owner, bob):
        await bot.wait_until(lambda b=bot: len(b.chat) == 1)
    await owner.wait_frames(bob.id, "video")
    await bob.wait_frames(owner.id, "video")
    return room, owner, bob, waiter


async def back_in_the_meeting(
    clients: list[VisioClient], since: dict[VisioClient, int], timeout: float = 10.0
) -> dict[VisioClient, float]:
    """When each client's `joined` (resumed, media kept) came back."""

    async def resumed(client: VisioClient) -> float:
        frame = await client.wait_for(
            lambda f: f["type"] == "joined", timeout=timeout, since=since[client]
        )
        assert frame["resumed"], frame
        assert frame["published"] == ["camera"]  # the media went on: nothing to republish
        return time.monotonic()

    times = await asyncio.gather(*(resumed(c) for c in clients))
    return dict(zip(clients, times, strict=True))


def assert_one_meeting(owner: VisioClient, bob: VisioClient) -> None:
    for me, other in ((owner, bob), (bob, owner)):
        assert [p["id"] for p in me.joined["participants"]] == [other.id]  # nobody twice
        assert [m["text"] for m in me.joined["chat"]] == ["before the failover"]


@pytest.fixture
def restart_stopped(deployment):
    yield
    for server in deployment.servers:
        if server.process is not None and server.process.poll() is not None:
            server.start()
    deployment.wait_balanced()


async def test_the_owner_is_killed(deployment, people, bots, restart_stopped):
    room, owner, bob, waiter = await meeting_with_a_waiter(deployment, people, bots)
    doomed = await owner_of(deployment, room)
    since = {c: len(c.frames) for c in (owner, bob, waiter)}
    frames_before = owner.frames_from(bob.id)

    killed_at = time.monotonic()
    stop_process(doomed.process, 0, signal.SIGKILL)

    back = await back_in_the_meeting([owner, bob], since)
    print("failover after kill -9:", [round(t - killed_at, 2) for t in back.values()])
    assert max(back.values()) - killed_at < 5.0
    assert_one_meeting(owner, bob)
    assert (await owner_of(deployment, room)) is not doomed
    lobby = await waiter.wait_for(lambda f: f["type"] == "lobby", since=since[waiter])
    assert lobby["expires_in"] > 0
    update = await owner.wait_for(
        lambda f: f["type"] == "lobby_update", since=since[owner], timeout=10
    )
    assert [w["name"] for w in update["waiting"]] == ["Gus"]  # the same request
    await owner.send({"type": "admit", "id": update["waiting"][0]["id"]})
    await waiter.admitted()
    await owner.wait_frames(bob.id, count=frames_before + 20)


async def test_the_owner_drains(deployment, people, bots, restart_stopped):
    room, owner, bob, waiter = await meeting_with_a_waiter(deployment, people, bots)
    leaving = await owner_of(deployment, room)
    since = {c: len(c.frames) for c in (owner, bob, waiter)}
    offers = {c: sum(f["type"] == "offer" for f in c.frames) for c in (owner, bob)}

    started = time.monotonic()
    assert stop_process(leaving.process, 15) in (0, -signal.SIGTERM)

    back = await back_in_the_meeting([owner, bob], since)
    print("failover after SIGTERM:", [round(t - started, 2) for t in back.values()])
    assert max(back.values()) - started < 5.0
    assert_one_meeting(owner, bob)
    await waiter.wait_for(lambda f: f["type"] == "lobby", since=since[waiter])
    for client in (owner, bob):  # no renegotiation: no new subscriber offer was needed
        assert sum(f["type"] == "offer" for f in client.frames) == offers[client]
    frames = owner.frames_from(bob.id)
    await owner.wait_frames(bob.id, count=frames + 20)


async def test_breakout_rooms_go_on_when_the_owner_drains(
    deployment, people, bots, restart_stopped
):
    """Rooms, who is where, per-room chat and media, and the timer survive a takeover."""
    alice = await people.signed_in("alice")
    room = await alice.new_room()
    url = deployment.base_url
    owner = await bots.join(url, room, "Alice", cookies=alice.cookies)
    ana, ben = await bots.join(url, room, "Ana"), await bots.join(url, room, "Ben")
    await ana.wait_frames(ben.id, "video")
    await owner.breakout_open(2, assignments={ana.id: 1, ben.id: 1}, duration_s=25)
    await owner.breakout_move(2, participant=ben.id)  # by hand, after opening
    await ana.wait_in_room(1)
    await ben.wait_in_room(2)
    await ana.chat_send("room one only")
    await owner.breakout_move(1)  # the moderator visits room 1: sees its chat
    await owner.wait_until(lambda: "room one only" in [m["text"] for m in owner.chat])

    leaving = await owner_of(deployment, room)
    since = {c: len(c.frames) for c in (owner, ana, ben)}
    assert stop_process(leaving.process, 15) in (0, -signal.SIGTERM)
    await back_in_the_meeting([owner, ana, ben], since)
    assert (await owner_of(deployment, room)) is not leaving
    assert (owner.breakout_room, ana.breakout_room, ben.breakout_room) == (1, 1, 2)
    assert [m["text"] for m in ana.joined["chat"]] == ["room one only"]
    assert ben.joined["chat"] == []
    before = ben.frames_from(ana.id)
    await asyncio.sleep(1.5)
    assert ben.frames_from(ana.id) <= before + 2  # still apart, across the takeover

    # The new owner's timer calls everyone back; media flows between the rooms again.
    await ben.wait_for(lambda f: f["type"] == "breakout_closing", timeout=25, since=since[ben])
    for client in (owner, ana, ben):
        await client.wait_in_room(None, timeout=20)
    await ben.wait_frames(ana.id, count=ben.frames_from(ana.id) + 10, timeout=20)
