"""The bus between server processes: forged or malformed messages change nothing and are
logged; a Redis restart mid-meeting stops no meeting, and the bus recovers."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
import redis.asyncio as aioredis

from visio.cluster.bus import seal
from visio.testing.cluster import Deployment

pytestmark = pytest.mark.integration


def process_id(server) -> str:
    with urllib.request.urlopen(server.base_url + "/healthz", timeout=2) as reply:
        return str(json.loads(reply.read())["process"])


async def test_forged_and_malformed_messages_change_nothing(deployment, bots):
    a, b = deployment.servers
    room = deployment.create_room()
    alice = await bots.join(a.base_url, room, "Alice")
    bob = await bots.join(b.base_url, room, "Bob")
    await bob.wait_frames(alice.id, "video")
    owner, edge = await asyncio.to_thread(process_id, a), await asyncio.to_thread(process_id, b)
    secret = deployment.cluster_secret.encode()
    since = {bot: len(bot.frames) for bot in (alice, bob)}
    forged = [
        seal(b"not the cluster secret", edge, "end", {"room": room}),  # wrong key
        "0" * 64 + '.{"k":"end","f":"x","t":0,"b":{"room":"' + room + '"}}',  # bad signature
        "garbage",
        seal(secret, edge, "end", {"room": "../etc/passwd"}),  # signed, but no room id
        seal(secret, edge, "batch", {"items": "not a list"}),
        seal(secret, edge, "hello", {"conn": "x", "identity": "admin", "client": "?"}),
        seal(secret, edge, "deliver", {"conn": "nobody", "frame": {"type": "ended"}}),
        seal(secret, edge, "frame", {"conn": 7, "frame": {"type": "end"}}),
        seal(secret, edge, "no such kind", {}),
    ]
    redis = aioredis.Redis.from_url(deployment.redis.url, decode_responses=True)
    try:
        for message in forged:
            for target in (owner, edge):
                await redis.publish(f"visio:bus:{target}", message)
    finally:
        await redis.aclose()

    await alice.chat_send("still here")
    await bob.wait_until(lambda: [m["text"] for m in bob.chat] == ["still here"])
    for bot in (alice, bob):
        assert not [f for f in bot.frames[since[bot] :] if f["type"] in ("ended", "error")]
    frames = bob.frames_from(alice.id)
    await bob.wait_frames(alice.id, count=frames + 10)
    logged = a.log_tail(400) + b.log_tail(400)
    assert logged.count("bus message dropped") >= 2 * len(forged) - 2


async def test_redis_restarts_mid_meeting(deployment: Deployment, bots):
    a, b = deployment.servers
    room = deployment.create_room()
    alice = await bots.join(a.base_url, room, "Alice")  # a holds the room
    bob = await bots.join(b.base_url, room, "Bob")  # relayed through b
    await bob.wait_frames(alice.id, "video")
    await alice.wait_frames(bob.id, "video")

    deployment.redis.stop()
    seen = alice.frames_from(bob.id)
    await alice.wait_frames(bob.id, count=seen + 30)  # the media go on without Redis
    since = len(bob.frames)
    deployment.redis.start()

    # The bus is back: Bob's relay is closed so that he resumes (he may have missed frames).
    back = await bob.wait_for(lambda f: f["type"] == "joined", since=since, timeout=15)
    assert back["resumed"] and back["you"]["id"] == bob.id, (a.data_dir, b.data_dir)
    await bob.chat_send("after the restart")
    await alice.wait_until(lambda: "after the restart" in [m["text"] for m in alice.chat])
    carol = await bots.join(b.base_url, room, "Carol", publish=False)
    assert sorted(p["name"] for p in carol.joined["participants"]) == ["Alice", "Bob"]
    redis = aioredis.Redis.from_url(deployment.redis.url, decode_responses=True)
    try:  # what Redis lost was written again
        meta = json.loads(await redis.hget(f"visio:room:{room}:meeting", "meta"))
        assert meta["room"] == room
    finally:
        await redis.aclose()
