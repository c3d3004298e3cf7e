"""Meetings larger than one media node: it fills one node, then spreads; each speaker's
stream crosses to another node once, however many watch it there."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from tests.conftest import GENEROUS_LIMITS
from visio.janus.cascade import list_remotes
from visio.testing.cluster import Deployment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    # A node "full" at 5 forwarded streams: the speaker and one viewer fill the first.
    small = Deployment(servers=2, nodes=2, sign_in=False, janus_node_streams=5, **GENEROUS_LIMITS)
    small.start()
    yield small
    small.stop()


async def meeting_meta(deployment: Deployment, room: str) -> dict:
    redis = aioredis.Redis.from_url(deployment.redis.url, decode_responses=True)
    try:
        return json.loads(await redis.hget(f"visio:room:{room}:meeting", "meta"))
    finally:
        await redis.aclose()


async def test_a_meeting_spreads_and_each_stream_crosses_once(deployment, bots):
    room = deployment.create_room()
    url = deployment.base_url
    speaker = await bots.join(url, room, "Speaker")
    viewers = []
    for n in range(4):
        viewer = await bots.join(url, room, f"Viewer {n}", publish=False)
        await viewer.wait_frames(speaker.id, "video", count=3)
        viewers.append(viewer)

    meta = await meeting_meta(deployment, room)
    first, second = meta["rooms"]  # spread over both nodes
    assert {first["node"], second["node"]} == {n.url for n in deployment.nodes}
    mirrors = [m for m in meta["mirrors"] if m["target"] == second["node"]]
    assert len(mirrors) == 1  # the speaker's feed, once, for every viewer on the second node
    (source,) = [n for n in deployment.nodes if n.url == first["node"]]
    async with source.videoroom() as handle:
        remotes = await list_remotes(handle, first["janus_room"], mirrors[0]["source_feed"])
    assert len(remotes) == 1

    for viewer in viewers:  # the ones over there hear the speaker too
        await viewer.wait_frames(speaker.id, "audio", count=20)

    await speaker.leave()  # the feed goes: its mirror goes, and nothing is left behind
    for _ in range(50):
        meta = await meeting_meta(deployment, room)
        if not meta["mirrors"]:
            break
        await asyncio.sleep(0.1)
    assert meta["mirrors"] == []
    async with source.videoroom() as handle:
        found = await handle.request({"request": "list", "admin_key": source.admin_key})
    assert first["janus_room"] in [r["room"] for r in found["list"]]
