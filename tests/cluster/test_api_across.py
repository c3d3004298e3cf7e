"""An API change made through one server process applies at once to a meeting another
process holds; when everyone has gone, nothing of the meeting is left anywhere."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

pytestmark = pytest.mark.integration


async def api_on(deployment, server, person, method: str, path: str, body=None):
    """The same person, through a given process (their session is in the shared database)."""
    headers = {"X-CSRF-Token": person.cookies.get("visio_csrf", "")}
    return await person.http.request(
        method, server.base_url + path, json=body, headers=headers, follow_redirects=False
    )


async def test_access_members_and_end_from_another_process(deployment, people, bots):
    a, b = deployment.servers
    alice = await people.signed_in("alice")
    room = await alice.new_room(access="restricted")
    owner = await bots.join(a.base_url, room, "Alice", cookies=alice.cookies)  # a holds it
    guest = await bots.join(a.base_url, room, "Gus", publish=False)
    assert guest.frames[-1]["type"] == "lobby"
    await owner.wait_for(lambda f: f["type"] == "lobby_update" and f["waiting"])

    seen = await api_on(deployment, b, alice, "GET", f"/api/rooms/{room}/participants")
    assert seen.status_code == 200
    assert [p["name"] for p in seen.json()["participants"]] == ["Alice"]
    assert [w["name"] for w in seen.json()["waiting"]] == ["Gus"]

    changed = await api_on(
        deployment, b, alice, "PATCH", f"/api/rooms/{room}", {"access": "public"}
    )
    assert changed.status_code == 200
    await guest.admitted()  # the room is public now: the waiter enters at once
    room_frame = await owner.wait_for(lambda f: f["type"] == "room")
    assert room_frame["room"]["access"] == "public"

    bob = await people.signed_in("bob")
    put = await api_on(
        deployment, b, alice, "PUT", f"/api/rooms/{room}/members/bob@visio.test", {"role": "admin"}
    )
    assert put.status_code == 200
    bob_bot = await bots.join(a.base_url, room, "Bob", publish=False, cookies=bob.cookies)
    assert bob_bot.joined["you"]["role"] == "admin"

    deleted = await api_on(deployment, b, alice, "DELETE", f"/api/rooms/{room}")
    assert deleted.status_code == 204
    for bot in (owner, guest, bob_bot):
        ended = await bot.wait_for(lambda f: f["type"] == "ended")
        assert ended["by"] is None


async def test_nothing_is_left_behind(deployment, bots):
    room = deployment.create_room()
    alice = await bots.join(deployment.servers[0].base_url, room, "Alice")
    bob = await bots.join(deployment.servers[1].base_url, room, "Bob")
    await alice.wait_frames(bob.id, "video")
    redis = aioredis.Redis.from_url(deployment.redis.url, decode_responses=True)
    try:
        meta = json.loads(await redis.hget(f"visio:room:{room}:meeting", "meta"))
        for bot in (alice, bob):
            await bot.leave()
        for _ in range(100):
            keys = [k async for k in redis.scan_iter(f"visio:room:{room}:*")]
            if not keys and room not in await redis.smembers("visio:rooms"):
                break
            await asyncio.sleep(0.1)
        assert not keys
    finally:
        await redis.aclose()
    (home,) = meta["rooms"]
    (node,) = [n for n in deployment.nodes if n.url == home["node"]]
    async with node.videoroom() as handle:
        rooms = await handle.request({"request": "list", "admin_key": node.admin_key})
    assert home["janus_room"] not in [r["room"] for r in rooms["list"]]
