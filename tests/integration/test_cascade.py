"""Two real Janus nodes: a feed published on node A is mirrored into a room of node B
(Janus 1.1 remote publishers), where aiortc subscribers decode it; the mirror comes down
cleanly, also when node A dies."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from visio.client.media import PcmAudioTrack, TestPatternTrack
from visio.janus import videoroom
from visio.janus.cascade import (
    FeedStream,
    Mirror,
    add_remote_publisher,
    extmap_id,
    list_remotes,
    mirror_publisher,
    participants,
    publish_remotely,
    unmirror,
    update_remote_publisher,
    wait_for_feed,
)
from visio.janus.client import JanusError, JanusHandle
from visio.testing.janus import JanusNodeProcess
from visio.testing.janus_peers import JanusPublisher, JanusSubscriber

pytestmark = pytest.mark.integration

ROOM_A = 1001
PUBLISHER_TOKEN = "ada"  # the rooms let no publisher in without a token on their list
ROOM_B = 2002


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[JanusNodeProcess, JanusNodeProcess]]:
    """Two fresh Janus nodes (each starts in ~0.1 s); both must stop cleanly unless killed."""
    a = JanusNodeProcess("node-a", folder=tmp_path / "node-a")
    b = JanusNodeProcess("node-b", folder=tmp_path / "node-b")
    a.start()
    try:
        b.start()
    except Exception:
        a.stop()
        raise
    yield a, b
    for node in (a, b):
        code = node.stop()
        assert code in (0, -signal.SIGKILL), f"{node.name} exited with {code}:\n{node.log_tail()}"


@contextlib.asynccontextmanager
async def rooms(
    a: JanusNodeProcess, b: JanusNodeProcess
) -> AsyncIterator[tuple[JanusHandle, JanusHandle]]:
    """A control handle on each node, each with its room."""
    async with a.videoroom() as on_a, b.videoroom() as on_b:
        await videoroom.create_room(on_a, ROOM_A, a.admin_key, videoroom.RoomOptions())
        await videoroom.create_room(on_b, ROOM_B, b.admin_key, videoroom.RoomOptions())
        await videoroom.allowed_tokens(on_a, ROOM_A, "add", {PUBLISHER_TOKEN})
        yield on_a, on_b


async def publish(on_a: JanusHandle) -> JanusPublisher:
    publisher = JanusPublisher(on_a.session, ROOM_A, "Ada", PUBLISHER_TOKEN)
    await publisher.publish([PcmAudioTrack(), TestPatternTrack()])
    return publisher


async def subscribe(on_b: JanusHandle, mirror: Mirror) -> JanusSubscriber:
    subscriber = JanusSubscriber(on_b.session, ROOM_B)
    await subscriber.join([mirror.target_feed])
    return subscriber


async def room_list(handle: JanusHandle, admin_key: str) -> list[int]:
    listing = await handle.request({"request": "list", "admin_key": admin_key})
    return [room["room"] for room in listing["list"]]


def remote_threads(node: JanusNodeProcess) -> list[str]:
    return [name for name in node.thread_names() if name.startswith("vremote")]


async def until(condition, timeout: float = 5.0, state=None) -> None:  # type: ignore[no-untyped-def]
    """Wait for `condition()`; on timeout, say what `state()` was."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not reached in time: {state() if state else ''}"
        await asyncio.sleep(0.05)


async def ports_given_back(node: JanusNodeProcess, before: set[int], kept: set[int]) -> None:
    """The node's UDP ports are those it had `before`, and at most `kept` besides."""
    await until(
        lambda: node.udp_ports() - before <= kept and before <= node.udp_ports(),
        timeout=15,
        state=lambda: (
            f"{node.name} added {node.udp_ports() - before - kept}, "
            f"closed {before - node.udp_ports()}"
        ),
    )


async def frames_stop(subscriber: JanusSubscriber, kind: str = "video") -> int:
    """Frames received over 1.5 s, once what was in flight has arrived."""
    await asyncio.sleep(1.0)
    before = subscriber.frames[kind]
    await asyncio.sleep(1.5)
    return subscriber.frames[kind] - before


async def test_a_mirrored_feed_crosses_once_to_all_its_subscribers_and_comes_down_cleanly(nodes):
    a, b = nodes
    ports_a, ports_b = a.udp_ports(), b.udp_ports()
    async with rooms(a, b) as (on_a, on_b):
        publisher = await publish(on_a)
        mirror = await mirror_publisher(
            on_a,
            ROOM_A,
            publisher.feed,
            on_b,
            ROOM_B,
            target_address=b.address,
            admin_key=a.admin_key,
            streams=publisher.streams,
            display="Ada",
            audiolevel_ext_id=extmap_id(publisher.offer_sdp),
        )
        assert mirror.mids == {"0": "0", "1": "1"}
        first = await subscribe(on_b, mirror)
        await asyncio.sleep(2.0)  # the publisher's only keyframe is long gone
        late = await subscribe(on_b, mirror)
        subscribers = [first, late]
        # aiortc sends a keyframe every 3000 frames: a late subscriber decodes at once only
        # because its keyframe request goes back to node A over the RTCP port.
        await late.wait_frames("video", 1, timeout=3)
        for subscriber in subscribers:
            await subscriber.wait_frames("video", 15)
            await subscriber.wait_frames("audio", 50)

        # One crossing: one remotization on A, one remote publisher on B, whoever watches.
        [remote] = await list_remotes(on_a, ROOM_A, publisher.feed)
        assert (remote.host, remote.port, remote.rtcp_port) == (
            b.address,
            mirror.port,
            mirror.rtcp_port,
        )
        [seen] = await participants(on_b, ROOM_B)
        assert seen["id"] == mirror.target_feed
        assert seen["remote"] is True and seen["publisher"] is True
        assert seen["display"] == "Ada"
        assert len(remote_threads(b)) == 1
        assert {mirror.port, mirror.rtcp_port} <= b.udp_ports()
        # The audio level header extension crosses too: B sees the speaker talking.
        deadline = time.monotonic() + 5
        while not (await participants(on_b, ROOM_B))[0].get("talking"):
            assert time.monotonic() < deadline, "B never saw the remote publisher talking"
            await asyncio.sleep(0.2)

        await unmirror(on_a, on_b, mirror)
        assert await list_remotes(on_a, ROOM_A, publisher.feed) == []
        assert await participants(on_b, ROOM_B) == []
        await until(lambda: not remote_threads(b))
        for subscriber in subscribers:
            # Janus renegotiates by itself (autoupdate is off): every stream inactive.
            await until(lambda s=subscriber: len(s.updates) == 1)
            assert not any(stream["active"] for stream in subscriber.updates[0]["streams"])
            assert await frames_stop(subscriber) == 0
        # The source still publishes on A, untouched.
        assert [p["id"] for p in await participants(on_a, ROOM_A)] == [publisher.feed]

        for subscriber in subscribers:
            await subscriber.close()
        await publisher.close()
        # Destroying the room while the publisher is still leaving it kept the publisher
        # (and its forwarding socket) alive in about 1 run in 8: wait until it has left.
        await wait_for_feed(on_a, ROOM_A, publisher.feed, present=False)
        await videoroom.destroy_room(on_a, ROOM_A)
        await videoroom.destroy_room(on_b, ROOM_B)
        assert await room_list(on_a, a.admin_key) == []
        assert await room_list(on_b, b.admin_key) == []
    await ports_given_back(a, ports_a, set())
    # Janus 1.1.2 never frees a remote publisher that received RTP (a reference leaks per
    # packet; fixed upstream in 1.2.2): its two ports stay bound until the node restarts.
    # Nothing else may stay.
    await ports_given_back(b, ports_b, {mirror.port, mirror.rtcp_port})


async def test_when_the_source_node_dies_the_mirror_is_still_removed_and_nothing_leaks(nodes):
    a, b = nodes
    ports_b = b.udp_ports()
    async with rooms(a, b) as (on_a, on_b):
        publisher = await publish(on_a)
        mirror = await mirror_publisher(
            on_a,
            ROOM_A,
            publisher.feed,
            on_b,
            ROOM_B,
            target_address=b.address,
            admin_key=a.admin_key,
            streams=publisher.streams,
        )
        subscriber = await subscribe(on_b, mirror)
        await subscriber.wait_frames("video", 15)
        await subscriber.wait_frames("audio", 50)

        assert a.kill() == -signal.SIGKILL
        assert await frames_stop(subscriber) == 0
        assert await frames_stop(subscriber, "audio") == 0
        # Node B does not notice: the remote publisher waits for RTP that will not come.
        assert [p["id"] for p in await participants(on_b, ROOM_B)] == [mirror.target_feed]

        await unmirror(on_a, on_b, mirror)  # A's half fails quietly: A is gone
        assert await participants(on_b, ROOM_B) == []
        await until(lambda: not remote_threads(b))
        await until(lambda: len(subscriber.updates) == 1)
        await unmirror(None, on_b, mirror)  # undoing twice is harmless

        await subscriber.close()
        await publisher.close()
        await videoroom.destroy_room(on_b, ROOM_B)
        assert await room_list(on_b, b.admin_key) == []
    await ports_given_back(b, ports_b, {mirror.port, mirror.rtcp_port})


async def test_a_refused_mirror_leaves_nothing_on_the_target(nodes):
    a, b = nodes
    async with rooms(a, b) as (on_a, on_b):
        publisher = await publish(on_a)
        ports_b = b.udp_ports()
        with pytest.raises(JanusError) as refused:  # the admin key guards publish_remotely
            await mirror_publisher(
                on_a,
                ROOM_A,
                publisher.feed,
                on_b,
                ROOM_B,
                target_address=b.address,
                admin_key="wrong",
                streams=publisher.streams,
            )
        assert refused.value.code == 433
        with pytest.raises(JanusError) as unknown:
            await mirror_publisher(
                on_a,
                ROOM_A,
                12345,
                on_b,
                ROOM_B,
                target_address=b.address,
                admin_key=a.admin_key,
                streams=publisher.streams,
            )
        assert unknown.value.code == 428
        with pytest.raises(ValueError, match="m-line indexes"):
            await mirror_publisher(
                on_a,
                ROOM_A,
                publisher.feed,
                on_b,
                ROOM_B,
                target_address=b.address,
                admin_key=a.admin_key,
                streams=[FeedStream(mindex=1, mid="1", type="video")],
            )

        assert await participants(on_b, ROOM_B) == []
        assert await list_remotes(on_a, ROOM_A, publisher.feed) == []
        await until(lambda: not remote_threads(b))
        await ports_given_back(b, ports_b, set())  # no RTP came: Janus freed them
        await publisher.close()


async def test_a_stream_the_target_did_not_know_reaches_it_once_announced(nodes):
    """Node A forwards every stream of the feed; node B drops those it was not told about
    until `update_remote_publisher` adds them (as for a stream added by renegotiation)."""
    a, b = nodes
    async with rooms(a, b) as (on_a, on_b):
        publisher = await publish(on_a)
        audio, video = publisher.streams
        remote = await add_remote_publisher(on_b, ROOM_B, [audio], iface=b.address)
        await wait_for_feed(on_b, ROOM_B, remote.feed)
        await publish_remotely(
            on_a,
            ROOM_A,
            publisher.feed,
            "ada",
            b.address,
            remote.port,
            remote.rtcp_port,
            a.admin_key,
        )
        mirror = Mirror(ROOM_A, publisher.feed, "ada", ROOM_B, remote.feed, 0, 0, {})
        listener = await subscribe(on_b, mirror)
        assert [s["type"] for s in listener.streams.values()] == ["audio"]
        await listener.wait_frames("audio", 25)

        await update_remote_publisher(on_b, ROOM_B, remote.feed, [video], display="Ada")
        [seen] = await participants(on_b, ROOM_B)
        assert seen["display"] == "Ada"
        viewer = await subscribe(on_b, mirror)
        assert sorted(s["type"] for s in viewer.streams.values()) == ["audio", "video"]
        await viewer.wait_frames("video", 15)
        await viewer.wait_frames("audio", 25)

        await unmirror(on_a, on_b, mirror)
        assert await participants(on_b, ROOM_B) == []
        for peer in (listener, viewer, publisher):
            await peer.close()
