"""A browser's simulcast camera, published through the web app, mirrored from the
server's Janus to a second Janus node: a subscriber there picks any of the three layers."""

from __future__ import annotations

import time

import pytest

from tests.browser.test_web_meeting import join_through_the_ui, sent_layers
from visio.janus.cascade import mirror_publisher, participants, unmirror
from visio.janus.client import JanusConnection, JanusHandle
from visio.testing.janus import JanusNodeProcess
from visio.testing.janus_peers import JanusSubscriber, published_streams

pytestmark = pytest.mark.browser

ROOM_B = 3003


async def feed_of(handle: JanusHandle, admin_key: str, display: str) -> tuple[int, int]:
    """(Janus room, feed) of the publisher the server named `display` (its participant id)."""
    listing = await handle.request({"request": "list", "admin_key": admin_key})
    for room in listing["list"]:
        for participant in await participants(handle, room["room"]):
            if participant.get("display") == display and participant.get("publisher"):
                return room["room"], participant["id"]
    raise AssertionError(f"no publisher {display} on the server's Janus")


async def width_settles(subscriber: JanusSubscriber, widths: list[int], check) -> int:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 20
    while not (widths and check(widths[-1])):
        assert time.monotonic() < deadline, f"decoded width stayed at {widths[-1:]}"
        await subscriber.wait_frames("video", subscriber.frames["video"] + 1)
    return widths[-1]


async def test_a_browser_camera_keeps_its_three_layers_on_another_node(server, new_page, tmp_path):
    alice = await new_page()
    await join_through_the_ui(alice, f"{server.base_url}/{server.create_room()}", "Alice")
    # Without the top layer, asking for it would give the middle one, and the low layer
    # would be measured against the wrong width (CI once saw 640 then 320 that way).
    assert await sent_layers(alice.evaluate) == ["h", "l", "m"]
    alice_id = await alice.evaluate("window.visioMeeting.conn.you.id")

    node_b = JanusNodeProcess("node-b", folder=tmp_path / "node-b")
    node_b.start()
    source = JanusConnection(server.janus_url, server.api_secret)
    await source.connect()
    try:
        on_a = await (await source.create_session()).attach()
        room_a, feed = await feed_of(on_a, server.admin_key, alice_id)
        async with node_b.videoroom() as on_b:
            await on_b.request({"request": "create", "room": ROOM_B, "admin_key": node_b.admin_key})
            # The streams are asked of the server's Janus: the camera's video is simulcast.
            mirror = await mirror_publisher(
                on_a,
                room_a,
                feed,
                on_b,
                ROOM_B,
                target_address=node_b.address,
                streams=await published_streams(on_a, room_a, feed),
                admin_key=server.admin_key,
            )
            subscriber = JanusSubscriber(on_b.session, ROOM_B)
            widths: list[int] = []
            subscriber.listeners.append(
                lambda kind, frame: widths.append(frame.width) if kind == "video" else None
            )
            await subscriber.join([mirror.target_feed])
            [video_mid] = [m for m, s in subscriber.streams.items() if s["type"] == "video"]
            assert "simulcast" in subscriber.streams[video_mid]

            await subscriber.set_substream(video_mid, 2)
            high = await width_settles(subscriber, widths, lambda w: w >= 640)
            await subscriber.set_substream(video_mid, 0)
            low = await width_settles(subscriber, widths, lambda w: 0 < w <= high // 4)
            await subscriber.set_substream(video_mid, 1)
            await width_settles(subscriber, widths, lambda w: low < w < high)

            await unmirror(on_a, on_b, mirror)
            await subscriber.close()
            assert await participants(on_b, ROOM_B) == []
            await on_b.request({"request": "destroy", "room": ROOM_B})
        await on_a.session.destroy()
    finally:
        await source.close()
        assert node_b.stop() == 0, node_b.log_tail()
