"""A pool of Janus nodes: a node that dies takes no meeting with it."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis.asyncio as aioredis

pytestmark = pytest.mark.integration


async def node_of(deployment, room: str):
    redis = aioredis.Redis.from_url(deployment.redis.url, decode_responses=True)
    try:
        meta = json.loads(await redis.hget(f"visio:room:{room}:meeting", "meta"))
    finally:
        await redis.aclose()
    (node,) = [n for n in deployment.nodes if n.url == meta["rooms"][0]["node"]]
    return node


@pytest.fixture
def restart_nodes(deployment):
    yield
    for node in deployment.nodes:
        if node.process is not None and node.process.poll() is not None:
            node.start()


async def test_a_dead_node_s_meeting_goes_on_on_another(deployment, bots, restart_nodes):
    room = deployment.create_room()
    alice = await bots.join(deployment.base_url, room, "Alice")
    bob = await bots.join(deployment.base_url, room, "Bob")
    await alice.wait_frames(bob.id, "video")
    await bob.wait_frames(alice.id, "video")
    await alice.chat_send("before the node died")
    doomed = await node_of(deployment, room)
    since = {bot: len(bot.frames) for bot in (alice, bob)}

    killed_at = time.monotonic()
    doomed.kill()

    async def renegotiated(bot, other) -> float:
        again = await bot.wait_for(
            lambda f: f["type"] == "joined" and not f["resumed"], timeout=10, since=since[bot]
        )
        assert again["you"]["id"] == bot.id
        assert [m["text"] for m in again["chat"]] == ["before the node died"]
        seen = bot.frames_from(other.id, "video")
        await bot.wait_frames(other.id, "video", count=seen + 5, timeout=10)
        return time.monotonic() - killed_at

    times = await asyncio.gather(renegotiated(alice, bob), renegotiated(bob, alice))
    print("media back after a node died:", [round(t, 2) for t in times])
    assert max(times) < 5.0
    assert (await node_of(deployment, room)) is not doomed
