"""aiortc peers driven straight on a Janus node's VideoRoom, with no Visio server between:
for tests and benchmarks of what Janus itself does (cascades between nodes, forwarding)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from visio.janus.cascade import FeedStream, feed_streams_of
from visio.janus.client import JanusEvent, JanusHandle, JanusSession, JanusUnavailable
from visio.janus.videoroom import PLUGIN, allowed_tokens


def peer_connection() -> RTCPeerConnection:
    # No ICE server (aiortc's default is a public STUN server); one bundled transport.
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


class JanusPublisher:
    """Publishes tracks in a room as one feed."""

    def __init__(
        self, session: JanusSession, room: int, display: str = "publisher", token: str = ""
    ) -> None:
        self.session = session
        self.room = room
        self.display = display
        self.token = token  # one on the room's list (Visio's rooms let no publisher in without)
        self.pc = peer_connection()
        self.handle: JanusHandle | None = None
        self.feed = 0
        self.streams: list[FeedStream] = []
        self.offer_sdp = ""
        self._up = asyncio.Event()

    async def publish(self, tracks: list[MediaStreamTrack], timeout: float = 15.0) -> None:
        self.handle = await self.session.attach(PLUGIN, self._on_event)
        for track in tracks:
            self.pc.addTransceiver(track, direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offer_sdp = self.pc.localDescription.sdp
        reply = await self.handle.message(
            {
                "request": "joinandconfigure",
                "ptype": "publisher",
                "room": self.room,
                "display": self.display,
                "token": self.token,
            },
            {"type": "offer", "sdp": self.offer_sdp},
        )
        if reply.jsep is None:
            raise RuntimeError(f"Janus did not answer the offer: {reply.data}")
        self.feed = int(reply.data["id"])
        self.streams = feed_streams_of(reply.data)
        await self.pc.setRemoteDescription(RTCSessionDescription(reply.jsep["sdp"], "answer"))
        await asyncio.wait_for(self._up.wait(), timeout)

    def _on_event(self, event: JanusEvent) -> None:
        if event.kind == "webrtcup":
            self._up.set()

    async def close(self) -> None:
        await self.pc.close()
        if self.handle is not None:
            await self.handle.detach()


class JanusSubscriber:
    """One multistream subscription that decodes what it receives and counts the frames.

    Offers Janus makes by itself (a publisher went away) are answered too, and kept in
    `updates`.
    """

    def __init__(self, session: JanusSession, room: int) -> None:
        self.session = session
        self.room = room
        self.pc = peer_connection()
        self.pc.on("track", self._on_track)
        self.handle: JanusHandle | None = None
        self.streams: dict[str, dict[str, Any]] = {}  # mid -> Janus' description
        self.frames: Counter[str] = Counter()  # media kind -> decoded frames
        self.updates: list[dict[str, Any]] = []
        self.listeners: list[Callable[[str, Any], None]] = []  # (kind, frame)
        self._consumers: set[asyncio.Task[None]] = set()

    async def join(self, feeds: list[int]) -> None:
        self.handle = await self.session.attach(PLUGIN, self._on_event)
        reply = await self.handle.message(
            {
                "request": "join",
                "ptype": "subscriber",
                "room": self.room,
                "streams": [{"feed": feed} for feed in feeds],
                "autoupdate": False,
                "use_msid": False,
            }
        )
        await self._answer(reply.data, reply.jsep)

    async def _answer(self, data: dict[str, Any], jsep: dict[str, Any] | None) -> None:
        if jsep is None or jsep.get("type") != "offer":
            raise RuntimeError(f"Janus made no subscriber offer: {data}")
        assert self.handle is not None
        self.streams = {str(s["mid"]): s for s in data.get("streams", [])}
        await self.pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.handle.message(
            {"request": "start"}, {"type": "answer", "sdp": self.pc.localDescription.sdp}
        )

    async def _on_event(self, event: JanusEvent) -> None:
        if event.kind == "event" and event.data.get("videoroom") == "updated" and event.jsep:
            self.updates.append(event.data)
            with contextlib.suppress(JanusUnavailable):  # closing meanwhile
                await self._answer(event.data, event.jsep)

    def _on_track(self, track: MediaStreamTrack) -> None:
        task = asyncio.ensure_future(self._consume(track))
        self._consumers.add(task)
        task.add_done_callback(self._consumers.discard)

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.frames[track.kind] += 1
            for listener in self.listeners:
                listener(track.kind, frame)

    async def wait_frames(self, kind: str, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.frames[kind] < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.frames[kind]}/{count} {kind} frames")
            await asyncio.sleep(0.05)

    async def set_substream(self, mid: str, substream: int) -> None:
        """Which simulcast layer of a stream to receive: 0 (lowest) to 2."""
        assert self.handle is not None
        await self.handle.message(
            {"request": "configure", "streams": [{"mid": mid, "substream": substream}]}
        )

    async def close(self) -> None:
        for task in list(self._consumers):
            task.cancel()
        await self.pc.close()
        if self.handle is not None:
            await self.handle.detach()


async def published_streams(handle: JanusHandle, room: int, feed: int) -> list[FeedStream]:
    """What a feed of someone else's room publishes, asked of Janus (a test that did not
    see the publish reply). Janus lists streams only to publishers: a probe puts a token of
    its own on the room's list, joins as a publisher that publishes nothing, reads the list,
    leaves and takes its token off again."""
    token = f"probe-{feed}"
    await allowed_tokens(handle, room, "add", {token})
    probe = await handle.session.attach()
    try:
        reply = await probe.message(
            {"request": "join", "ptype": "publisher", "room": room, "token": token}
        )
        for publisher in reply.data.get("publishers", []):
            if publisher.get("id") == feed:
                return [FeedStream.from_janus(s) for s in publisher.get("streams", [])]
        raise AssertionError(f"feed {feed} publishes nothing in room {room}")
    finally:
        await probe.detach()
        await allowed_tokens(handle, room, "remove", {token})
