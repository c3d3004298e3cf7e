"""A pool of Janus nodes: a node that dies takes no meeting with it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from visio.janus.client import JanusConnection
from visio.testing.netns import VETH
from visio.testing.process import stop_process
from visio.testing.server import as_service_user, free_port

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


def visio_command(deployment, *args: str) -> subprocess.CompletedProcess[str]:
    """A `visio` command run with the server processes' configuration."""
    return subprocess.run(
        [sys.executable, "-m", "visio", *args],
        env=deployment.servers[0].env,
        capture_output=True,
        text=True,
        timeout=30,
    )


async def test_an_operator_drains_a_node_without_cutting_the_meeting(deployment, bots):
    room = deployment.create_room()
    alice = await bots.join(deployment.base_url, room, "Alice")
    bob = await bots.join(deployment.base_url, room, "Bob")
    await alice.wait_frames(bob.id, "video")
    await alice.chat_send("before the drain")
    node = await node_of(deployment, room)
    since = {bot: len(bot.frames) for bot in (alice, bob)}

    drained = visio_command(deployment, "nodes", "drain", node.url)
    assert drained.returncode == 0, drained.stderr
    try:
        for bot, other in ((alice, bob), (bob, alice)):
            again = await bot.wait_for(
                lambda f: f["type"] == "joined" and not f["resumed"], timeout=10, since=since[bot]
            )
            assert [m["text"] for m in again["chat"]] == ["before the drain"]
            seen = bot.frames_from(other.id, "video")
            await bot.wait_frames(other.id, "video", count=seen + 5, timeout=10)
        assert (await node_of(deployment, room)) is not node
        async with node.videoroom() as handle:  # nothing of the meeting is left there
            rooms = await handle.request({"request": "list", "admin_key": node.admin_key})
        assert rooms["list"] == []
        listed = visio_command(deployment, "nodes", "list")
        assert listed.returncode == 0, listed.stderr
        assert f"{node.url}\tdraining\tmeetings=0" in listed.stdout
    finally:
        assert visio_command(deployment, "nodes", "undrain", node.url).returncode == 0


def test_nodes_command_errors(deployment):
    unknown = visio_command(deployment, "nodes", "drain", "ws://10.9.9.9:1")
    assert unknown.returncode == 1 and "no media node" in unknown.stderr
    assert "Traceback" not in unknown.stderr


async def test_visio_node_runs_janus_and_reports_its_cpu(deployment):
    """`visio node`: a media node for the servers, its Janus' CPU shared through Redis."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="visio-node-"))
    env = {
        **os.environ,
        "VISIO_DATA_DIR": str(folder),
        "VISIO_REDIS_URL": deployment.redis.url,
        "VISIO_JANUS_WS_PORT": str(port),
        "VISIO_JANUS_API_SECRET": "node-secret",
        "VISIO_JANUS_ADMIN_KEY": "node-key",
        "VISIO_JANUS_ICE_INTERFACES": VETH,
        "VISIO_JANUS_RTP_PORTS": "61000-61999",
        "HOME": str(folder),
    }
    node = subprocess.Popen(  # noqa: ASYNC220 - started once, stopped by its pid
        [sys.executable, "-m", "visio", "node", "--listen", "127.0.0.1"],
        env=env,
        stdout=open(folder / "node.log", "wb"),  # noqa: ASYNC230
        stderr=subprocess.STDOUT,
        **as_service_user(folder),
    )
    url = f"ws://127.0.0.1:{port}"
    redis = aioredis.Redis.from_url(deployment.redis.url, decode_responses=True)
    try:
        report = None
        for _ in range(100):
            report = await redis.get(f"visio:node:{url}:host")
            if report:
                break
            await asyncio.sleep(0.1)
        assert report is not None, "no CPU report from the node"
        figures = json.loads(report)
        assert 0 <= figures["cpu"] < 1 and figures["tx_bps"] >= 0 and figures["rx_bps"] >= 0
        janus = JanusConnection(url, "node-secret")
        await janus.connect()
        assert (await janus.info())["name"] == "Janus WebRTC Server"
        await janus.close()
    finally:
        await redis.aclose()
        assert stop_process(node, 10) == 0, (folder / "node.log").read_text()
