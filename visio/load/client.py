"""A lightweight participant for load: the Visio protocol, pre-encoded media, no decoding.

Unlike `visio.client.VisioClient` (the bot used by tests), it keeps no frame history,
never reconnects, publishes replayed packets (`visio.load.media`) and counts what it
receives (`visio.load.receiver`) instead of decoding it. Its join time runs from the
WebSocket's opening to the first RTP packet received from anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import websockets
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)

from visio.load.media import EncodedMedia, MeetingAudioTrack, ReplayVideoTrack, TalkSchedule
from visio.load.receiver import PacketCounter, count_packets, route_offered_ssrcs
from visio.load.rtpstats import StreamTotals
from visio.load.socket_counting import count_at_the_socket

PING_EVERY_S = 15.0  # the server closes a connection silent for 60 s
ACTIVE_WITHIN_S = 2.0  # a stream that got nothing for this long has no current jitter


class JoinFailed(Exception):
    """The client could not join or bring its media up; `code` says what went wrong."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


@dataclass(frozen=True)
class Role:
    """What a participant sends: camera, microphone (always on, DTX) and when it talks."""

    camera: bool
    microphone: bool
    schedule: TalkSchedule


def websocket_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/ws"
    if base.startswith("http://"):
        return "ws://" + base.removeprefix("http://") + "/ws"
    raise ValueError(f"not an http(s) URL: {base_url}")


def _send_audio_level(sender: RTCRtpSender, track: MeetingAudioTrack) -> None:
    """Give each packet the audio level extension that a browser sends and Janus reads
    (talking events): aiortc computes it only from frames it encodes itself."""
    next_frame = sender._next_encoded_frame

    async def with_level(codec: Any) -> Any:
        frame = await next_frame(codec)
        if frame is not None:
            frame.audio_level = track.level_dbov
        return frame

    sender._next_encoded_frame = with_level  # type: ignore[method-assign]


class LoadClient:
    def __init__(self, base_url: str, room: str, name: str, role: Role, media: EncodedMedia):
        self.ws_url = websocket_url(base_url)
        self.room, self.name, self.role, self.media = room, name, role, media
        self.ws: websockets.ClientConnection | None = None
        self.publisher: RTCPeerConnection | None = None
        self.subscriber: RTCPeerConnection | None = None
        self.counters: dict[RTCRtpReceiver, PacketCounter] = {}
        self.video_track: ReplayVideoTrack | None = None
        self.opened_at: float | None = None
        self.first_packet_at: float | None = None
        self.moments: dict[str, float] = {}  # join phase -> time.monotonic()
        self.errors: list[str] = []
        self.closed = False
        self._ice_servers: list[RTCIceServer] = []
        self._joined = asyncio.Event()
        self._failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._failed.add_done_callback(lambda f: f.exception())  # read, even if nobody waits
        self._published = asyncio.Event()
        self._first_packet = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def publishes(self) -> bool:
        return self.role.camera or self.role.microphone

    def _mark(self, moment: str) -> None:
        self.moments.setdefault(moment, time.monotonic())

    @property
    def join_phases(self) -> dict[str, float]:
        """Seconds from the WebSocket's opening to each step of the join."""
        if self.opened_at is None:
            return {}
        return {name: at - self.opened_at for name, at in self.moments.items()}

    @property
    def join_time(self) -> float | None:
        """Seconds from the WebSocket's opening to the first media packet received."""
        if self.opened_at is None or self.first_packet_at is None:
            return None
        return self.first_packet_at - self.opened_at

    # -- joining ------------------------------------------------------------------

    async def join(self, timeout: float, expect_media: bool) -> None:
        """Join, publish, and wait until the publication is up and (when others publish)
        the first packet came in. JoinFailed otherwise, after at most `timeout` seconds."""
        try:
            await asyncio.wait_for(self._join(expect_media), timeout)
        except TimeoutError:
            raise JoinFailed("timeout", self._waiting_for(expect_media)) from None
        except (OSError, websockets.InvalidHandshake) as exc:
            raise JoinFailed("connect", str(exc)) from None

    async def _join(self, expect_media: bool) -> None:
        self.opened_at = time.monotonic()
        self.ws = await websockets.connect(self.ws_url, max_size=2**20, ping_interval=None)
        self._mark("open")
        self._tasks += [asyncio.create_task(self._read(self.ws)), asyncio.create_task(self._ping())]
        await self._send(
            {
                "type": "join",
                "room": self.room,
                "name": self.name,
                "audio": self.role.microphone,
                "video": self.role.camera,
            }
        )
        await self._until(self._joined)
        if self.publishes:
            await self._publish()
            await self._until(self._published)
        if expect_media:
            await self._until(self._first_packet)

    async def _until(self, event: asyncio.Event) -> None:
        """Wait for `event`; raise JoinFailed as soon as the server says something failed."""
        waiting = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait((waiting, self._failed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if not event.is_set():
            self._failed.result()

    def _waiting_for(self, expect_media: bool) -> str:
        if not self._joined.is_set():
            return "no joined frame"
        if self.publishes and not self._published.is_set():
            return "publication not up"
        return "no media packet received" if expect_media else "?"

    async def _send(self, frame: dict[str, Any]) -> None:
        if self.ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.ws.send(json.dumps(frame))

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(PING_EVERY_S)
            await self._send({"type": "ping"})

    def _new_pc(self) -> RTCPeerConnection:
        return RTCPeerConnection(
            RTCConfiguration(
                iceServers=list(self._ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
            )
        )

    async def _publish(self) -> None:
        pc = self.publisher = self._new_pc()
        if self.role.microphone:
            audio = MeetingAudioTrack(self.media, self.role.schedule)
            _send_audio_level(pc.addTransceiver(audio, "sendonly").sender, audio)
        if self.role.camera:
            self.video_track = ReplayVideoTrack(self.media)
            sender = pc.addTransceiver(self.video_track, "sendonly").sender
            # A PLI makes aiortc ask its encoder for a key frame; we have no encoder.
            sender._send_keyframe = self.video_track.request_keyframe  # type: ignore[method-assign]
        await pc.setLocalDescription(await pc.createOffer())
        await self._send(
            {
                "type": "publish",
                "target": "camera",
                "sdp": pc.localDescription.sdp,
                "audio": self.role.microphone,
                "video": self.role.camera,
            }
        )

    # -- frames from the server ---------------------------------------------------

    async def _read(self, ws: websockets.ClientConnection) -> None:
        code, detail = "closed", "the server closed the WebSocket"
        try:
            async for raw in ws:
                await self._on_frame(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        except Exception as exc:  # e.g. an SDP aiortc cannot take: this client is out
            code, detail = "client_error", repr(exc)
        if not self.closed:
            self._fail(code, detail)

    async def _on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "joined":
            self._ice_servers = [
                RTCIceServer(s["urls"], s.get("username"), s.get("credential"))
                for s in frame.get("iceServers", [])
            ]
            self._mark("joined")
            self._joined.set()
        elif kind == "answer" and self.publisher is not None:
            await self.publisher.setRemoteDescription(RTCSessionDescription(frame["sdp"], "answer"))
        elif kind == "offer":
            await self._on_offer(frame)
        elif kind == "media" and frame.get("target") == "camera":
            if frame.get("state") == "up":
                self._mark("published")
                self._published.set()
            else:
                self._fail("publication down")
        elif kind == "lobby":
            self._fail("lobby", "the room made us wait in its lobby")
        elif kind == "error":
            self._fail(str(frame.get("code")), str(frame.get("message", "")))
        elif kind == "ended":
            self._fail("ended")

    def _fail(self, code: str, detail: str = "") -> None:
        self.errors.append(code)
        if not self._failed.done():
            self._failed.set_exception(JoinFailed(code, detail))

    async def _on_offer(self, frame: dict[str, Any]) -> None:
        self._mark("offer")
        first = self.subscriber is None
        if self.subscriber is None:
            self.subscriber = self._new_pc()
        pc = self.subscriber
        await pc.setRemoteDescription(RTCSessionDescription(frame["sdp"], "offer"))
        for transceiver in pc.getTransceivers():
            receiver = transceiver.receiver
            if receiver not in self.counters:  # new m-lines: count, do not decode
                self.counters[receiver] = count_packets(receiver, transceiver.kind, self._on_media)
        if first:
            count_at_the_socket(pc, self.counters)
        answer = await pc.createAnswer()
        # Be the DTLS server, so that Janus speaks first, once its ICE is up. As DTLS
        # client, aiortc often sends its first flight before Janus' ICE is ready; that
        # flight is lost and OpenSSL resends it after 1 s (browsers: after ~50 ms), a
        # client artefact that would dominate join p95.
        sdp = answer.sdp.replace("a=setup:active", "a=setup:passive")
        await pc.setLocalDescription(RTCSessionDescription(sdp, "answer"))
        route_offered_ssrcs(pc)
        await self._send({"type": "answer", "sdp": pc.localDescription.sdp})

    def _on_media(self, arrival: float) -> None:
        if self.first_packet_at is None:
            self.first_packet_at = arrival
            self.moments["media"] = arrival
            self._first_packet.set()

    # -- figures ------------------------------------------------------------------

    def totals(self, kind: str) -> StreamTotals:
        total = StreamTotals()
        for counter in self.counters.values():
            if counter.kind == kind:
                for stream in counter.streams.values():
                    total += stream.totals()
        return total

    def jitters_ms(self, now: float) -> list[float]:
        """The current jitter of each stream that is flowing."""
        return [
            stream.jitter_ms
            for counter in self.counters.values()
            for stream in counter.streams.values()
            if stream.last_at is not None and now - stream.last_at < ACTIVE_WITHIN_S
        ]

    def receiving(self, now: float) -> bool:
        return any(
            stream.last_at is not None and now - stream.last_at < ACTIVE_WITHIN_S
            for counter in self.counters.values()
            for stream in counter.streams.values()
        )

    # -- leaving ------------------------------------------------------------------

    async def leave(self) -> None:
        self.closed = True
        await self._send({"type": "leave"})
        await self.close()

    async def close(self) -> None:
        self.closed = True
        for task in self._tasks:
            task.cancel()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 2)
        for pc in (self.publisher, self.subscriber):
            if pc is not None:
                with contextlib.suppress(Exception):
                    # Shielded: aiortc may be closing it too, and a cancelled close
                    # breaks the other one.
                    await asyncio.wait_for(asyncio.shield(pc.close()), 5)
