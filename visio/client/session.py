"""VisioClient: one participant speaking the Visio protocol, with aiortc for media.

It joins a room, publishes tracks, answers the server's subscriber offers, counts the
frames it receives from each remote participant, and reconnects by itself (with the
resume token) when its WebSocket drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)
Frame = dict[str, Any]


# The server closes after these: coming back would not help.
FINAL_ERRORS = frozenset(
    (
        "removed",
        "denied",
        "lobby_expired",
        "replaced",
        "server_shutdown",
        "signed_out",
        "access_revoked",
    )
)


class VisioError(Exception):
    def __init__(self, frame: Frame) -> None:
        self.code = frame.get("code") or frame.get("type")
        super().__init__(f"{self.code}: {frame.get('message', '')}")
        self.frame = frame


@dataclass
class ReceivedTrack:
    """Frames received on one remote track."""

    participant: str
    target: str
    media: str
    frames: int = 0
    first_frame_at: float | None = None  # time.monotonic()
    last_frame: Any = None
    listeners: list[Callable[[Any], None]] = field(default_factory=list)


class VisioClient:
    def __init__(
        self,
        base_url: str,
        room: str,
        name: str,
        *,
        audio: bool = True,
        video: bool = True,
        auto_reconnect: bool = True,
        cookies: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        relay_only: bool = False,
        turn_transport: str | None = None,
    ) -> None:
        if turn_transport not in (None, *TURN_TRANSPORTS):
            raise ValueError(f"turn_transport: one of {', '.join(TURN_TRANSPORTS)}")
        self.relay_only = relay_only  # only TURN-relayed candidates, as from a locked-down network
        self.turn_transport = turn_transport  # keep only the TURN URLs of this transport
        self.headers = dict(headers or {})
        if cookies:
            self.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self.ws_url = base_url.replace("http", "ws", 1).rstrip("/") + "/ws"
        self.room = room
        self.name = name
        self.audio = audio
        self.video = video
        self.auto_reconnect = auto_reconnect
        self.ws: websockets.ClientConnection | None = None
        self.joined: Frame | None = None
        self.resume_token: str | None = None  # from `joined`, or `lobby` while waiting
        self.id: str | None = None
        self.participants: dict[str, Frame] = {}
        self.chat: list[Frame] = []
        self.breakout: Frame | None = None  # the breakout rooms while they are open
        self.breakout_room: int | None = None  # the one we are in; None: the main room
        self.frames: list[Frame] = []  # every frame received, in order
        self.errors: list[Frame] = []
        self.received: dict[tuple[str, str, str], ReceivedTrack] = {}
        self.publishers: dict[str, RTCPeerConnection] = {}
        self.local_tracks: dict[str, list[MediaStreamTrack]] = {}
        self.subscriber: RTCPeerConnection | None = None
        self.streams: dict[str, Frame] = {}  # mid -> stream description
        self._subscriber_ufrag: str | None = None  # the ICE ufrag of Janus' side
        self.opened_at: float | None = None
        self.reconnections = 0
        self._failed_attempts = 0  # reconnections since the last `joined` or `lobby`
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self._reconnecting: asyncio.Future[None] | None = None
        self._consumers: set[asyncio.Task[None]] = set()  # its tasks: track readers, rejoins
        self._closing = False
        self._connecting = False
        self._ice_servers: list[RTCIceServer] = []
        self.busy_waits = 0  # joins sent again after a busy server's "retry in N s"
        # Called with every frame received from anyone (a mixer's input, e.g. visio.sip).
        self.frame_listeners: list[Callable[[ReceivedTrack, Any], None]] = []

    # -- connection ---------------------------------------------------------------

    async def connect(self, timeout: float = 15.0) -> Frame:
        """Join; return `joined`, or the `lobby` frame when the room makes us wait.

        A busy server answers "retry in N s": the join is sent again after that wait, as
        long as `timeout` allows; any other error raises VisioError."""
        deadline = time.monotonic() + timeout
        self.opened_at = time.monotonic()
        self._connecting = True
        try:
            await self._open(resume=None)
            since = 0
            while True:
                answer = await self.wait_for(
                    lambda f: f["type"] in ("joined", "lobby", "error"),
                    deadline - time.monotonic(),
                    since,
                )
                retry_in = _busy_wait(answer)
                if retry_in is None or time.monotonic() + retry_in > deadline:
                    break
                self.busy_waits += 1
                await asyncio.sleep(retry_in)
                since = len(self.frames)
                await self.send(self._join_frame(resume=None))
        finally:
            self._connecting = False
        if answer["type"] == "error":
            raise VisioError(answer)
        return answer

    async def admitted(self, timeout: float = 15.0) -> Frame:
        """Wait in the lobby until `joined` (admitted); VisioError if refused or expired."""
        frame = await self.wait_for(
            lambda f: (
                f["type"] in ("joined", "ended")
                or (f["type"] == "error" and f.get("code") in (*FINAL_ERRORS, "room_full"))
            ),
            timeout,
        )
        if frame["type"] != "joined":
            raise VisioError(frame)
        return frame

    async def _open(self, resume: str | None) -> None:
        self.ws = await websockets.connect(
            self.ws_url, max_size=2**20, ping_interval=20, additional_headers=self.headers
        )
        await self.ws.send(json.dumps(self._join_frame(resume)))
        self._reader = asyncio.create_task(self._read_loop(self.ws))

    def _join_frame(self, resume: str | None) -> Frame:
        join: Frame = {
            "type": "join",
            "room": self.room,
            "name": self.name,
            "audio": self.audio,
            "video": self.video,
        }
        if resume:
            join["resume"] = resume
        return join

    async def _join_again(self, delay: float) -> None:
        """A rejoin the server was too busy for: send it again when it said."""
        await asyncio.sleep(delay)
        self.busy_waits += 1
        await self.send(self._join_frame(self.resume_token))

    async def send(self, frame: Frame) -> None:
        """Send a frame; on a connection that just closed it is lost, as on a network.

        The reader still reads what the server sent before closing (an error frame that
        says why, above all), then reconnects or not.
        """
        if self.ws is None:
            raise ConnectionError("not connected")
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(json.dumps(frame))

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None
        await self.ws.send(data)

    async def _read_loop(self, ws: websockets.ClientConnection) -> None:
        try:
            async for raw in ws:
                await self._on_frame(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        finally:
            if ws is self.ws and not self._closing:
                if self.auto_reconnect and self.resume_token is not None:
                    self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        """Open a new socket and resume; the pause grows until the server lets us back in
        (a server that is restarting closes sockets at once: no storm of reconnections)."""
        while not self._closing:
            if self._failed_attempts:
                await asyncio.sleep(min(0.25 * 2 ** (self._failed_attempts - 1), 5.0))
            self._failed_attempts += 1
            try:
                await self._open(resume=self.resume_token)
                self.reconnections += 1
                return
            except (OSError, websockets.InvalidHandshake, TimeoutError):
                continue

    def cut(self) -> None:
        """Drop the WebSocket abruptly (as a network loss would); reconnection follows."""
        if self.ws is not None:
            self.ws.transport.abort()

    async def wait_for(
        self, predicate: Callable[[Frame], bool], timeout: float = 15.0, since: int = 0
    ) -> Frame:
        """The first frame (from index `since`) matching the predicate."""

        async def find() -> Frame:
            async with self._changed:
                while True:
                    for frame in self.frames[since:]:
                        if predicate(frame):
                            return frame
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        async def check() -> None:
            async with self._changed:
                await self._changed.wait_for(condition)

        await asyncio.wait_for(check(), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- frames from the server ---------------------------------------------------

    async def _on_frame(self, frame: Frame) -> None:
        self.frames.append(frame)
        kind = frame.get("type")
        if kind == "joined":
            await self._on_joined(frame)
        elif kind == "lobby":
            self.resume_token = frame.get("resume") or self.resume_token
            self._failed_attempts = 0
        elif kind == "offer":
            await self._on_offer(frame)
        elif kind == "answer":
            pc = self.publishers.get(frame["target"])
            if pc is not None:
                await pc.setRemoteDescription(RTCSessionDescription(frame["sdp"], "answer"))
        elif kind in ("participant_joined", "participant_updated"):
            self.participants[frame["participant"]["id"]] = frame["participant"]
        elif kind == "participant_left":
            self.participants.pop(frame["id"], None)
        elif kind == "chat":
            self.chat.append(frame["message"])
        elif kind == "breakout":
            self.breakout = frame if frame["open"] else None
        elif kind == "moved":
            # Moved to another room: the next offer is a new subscriber connection's (the
            # old one's Janus handle is gone); the chat is now that room's.
            self.breakout_room = frame["room"]
            self.chat = list(frame["chat"])
            await self._close_subscriber()
        elif kind == "media" and frame["state"] == "down":
            await self._recover(frame["target"])
        elif kind == "error":
            self.errors.append(frame)
            if frame.get("code") in FINAL_ERRORS:
                self.auto_reconnect = False
            retry_in = _busy_wait(frame)
            if retry_in is not None and not self._connecting and not self._closing:
                self._spawn(self._join_again(retry_in))  # connect() waits by itself
        elif kind == "ended":
            self.auto_reconnect = False
        await self._notify()

    async def _on_joined(self, frame: Frame) -> None:
        rejoined = self.joined is not None
        resumed = rejoined and frame.get("resumed")
        self.joined = frame
        self._failed_attempts = 0
        self.resume_token = frame.get("resume") or self.resume_token
        self.id = frame["you"]["id"]
        self.participants = {p["id"]: p for p in frame["participants"]}
        self.chat = list(frame["chat"])
        self.breakout = frame.get("breakout")
        self.breakout_room = (self.breakout or {}).get("where", {}).get(self.id)
        self._ice_servers = ice_servers(frame.get("iceServers", []), self.turn_transport)
        if resumed:
            for target in list(self.publishers):
                pc = self.publishers[target]
                if target not in frame["published"] or pc.connectionState != "connected":
                    await self._recover(target)
            if self.subscriber is not None and self.subscriber.connectionState != "connected":
                await self._recover("subscriber")
        elif rejoined:
            # Our place was lost (grace expired, media server restarted): start afresh.
            await self._close_subscriber()
            for target in list(self.local_tracks):
                await self.publish(self.local_tracks[target], target)

    async def _recover(self, target: str) -> None:
        if target == "subscriber":
            await self._close_subscriber()
            await self.send({"type": "resubscribe"})
        elif target in self.local_tracks:
            await self.publish(self.local_tracks[target], target)

    def joined_with_turn(self) -> bool:
        """Whether the ICE servers we were given (and kept) include a TURN server."""
        return any(
            turn_transport_of(url) is not None
            for server in self._ice_servers
            for url in ([server.urls] if isinstance(server.urls, str) else server.urls)
        )

    # -- publishing ---------------------------------------------------------------

    def _new_pc(self) -> RTCPeerConnection:
        # MAX_BUNDLE: with aiortc's default (balanced) policy, a second video m-line keeps
        # a transport of its own that is dropped at bundling, and its packets are lost.
        policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
        return RTCPeerConnection(
            RTCConfiguration(
                iceServers=list(self._ice_servers),
                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
                iceTransportPolicy=policy,
            )
        )

    async def publish(self, tracks: list[MediaStreamTrack], target: str = "camera") -> None:
        old = self.publishers.pop(target, None)
        if old is not None:
            await old.close()
        pc = self._new_pc()
        for track in tracks:
            pc.addTransceiver(track, direction="sendonly")
        self.publishers[target] = pc
        self.local_tracks[target] = tracks
        await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
        await self.send(
            {
                "type": "publish",
                "target": target,
                "sdp": pc.localDescription.sdp,
                "audio": self.audio,
                "video": self.video,
            }
        )

    async def unpublish(self, target: str) -> None:
        pc = self.publishers.pop(target, None)
        self.local_tracks.pop(target, None)
        await self.send({"type": "unpublish", "target": target})
        if pc is not None:
            await pc.close()

    # -- subscribing --------------------------------------------------------------

    async def _on_offer(self, frame: Frame) -> None:
        ufrag = _ice_ufrag(frame["sdp"])
        if self.subscriber is not None and ufrag != self._subscriber_ufrag:
            # A new Janus handle (moved while our connection was down, say): a new peer.
            await self._close_subscriber()
        self._subscriber_ufrag = ufrag
        if self.subscriber is None:
            self.subscriber = self._new_pc()
            self.subscriber.on("track", self._on_track)
        for stream in frame["streams"]:
            self.streams[stream["mid"]] = stream
        await self.subscriber.setRemoteDescription(RTCSessionDescription(frame["sdp"], "offer"))
        await self.subscriber.setLocalDescription(await self.subscriber.createAnswer())
        await self.send({"type": "answer", "sdp": self.subscriber.localDescription.sdp})

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.subscriber is not None
        transceiver = _transceiver_of(self.subscriber, track)
        if transceiver is None or transceiver.mid is None:
            return
        self._spawn(self._consume(transceiver.mid, track))

    def _spawn(self, coro: Any) -> None:
        """A task of this client's, cancelled when it closes."""
        task = asyncio.ensure_future(coro)
        self._consumers.add(task)
        task.add_done_callback(self._consumers.discard)

    async def _consume(self, mid: str, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            stream = self.streams.get(mid)
            if stream is None:
                continue
            key = (stream["participant"], stream["target"], stream["media"])
            received = self.received.get(key)
            if received is None:
                received = self.received[key] = ReceivedTrack(*key)
            received.frames += 1
            received.last_frame = frame
            if received.first_frame_at is None:
                received.first_frame_at = time.monotonic()
                await self._notify()
            for listener in received.listeners:
                listener(frame)
            for each in self.frame_listeners:
                each(received, frame)

    def frames_from(self, participant: str, media: str = "video", target: str = "camera") -> int:
        received = self.received.get((participant, target, media))
        return received.frames if received else 0

    async def wait_frames(
        self,
        participant: str,
        media: str = "video",
        target: str = "camera",
        count: int = 1,
        timeout: float = 20.0,
    ) -> None:
        deadline = time.monotonic() + timeout
        while self.frames_from(participant, media, target) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name}: {self.frames_from(participant, media, target)}/{count} "
                    f"{media} frames from {participant} ({target})"
                )
            await asyncio.sleep(0.05)

    async def _close_subscriber(self) -> None:
        if self.subscriber is not None:
            await self.subscriber.close()
        self.subscriber = None
        self.streams.clear()

    # -- meeting actions ----------------------------------------------------------

    async def chat_send(self, text: str) -> None:
        await self.send({"type": "chat", "text": text})

    async def breakout_open(
        self,
        count: int,
        assign: str = "manual",
        assignments: dict[str, int] | None = None,
        duration_s: int | None = None,
        names: list[str] | None = None,
    ) -> None:
        frame: Frame = {"type": "breakout_open", "count": count, "assign": assign}
        if assignments:
            frame["assignments"] = assignments
        if duration_s is not None:
            frame["duration_s"] = duration_s
        if names:
            frame["names"] = names
        await self.send(frame)

    async def breakout_move(
        self, room: int | None, participant: str | None = None, ref: str | None = None
    ) -> None:
        """Move someone (a moderator), or oneself (a moderator's visit, or one's choice)."""
        frame: Frame = {"type": "breakout_move", "room": room}
        if participant is not None:
            frame["id"] = participant
        if ref is not None:
            frame["ref"] = ref
        await self.send(frame)

    async def breakout_broadcast(self, text: str) -> None:
        await self.send({"type": "breakout_broadcast", "text": text})

    async def breakout_close(self, after_s: int = 0) -> None:
        await self.send({"type": "breakout_close", "after_s": after_s})

    async def wait_in_room(self, room: int | None, timeout: float = 15.0) -> None:
        """Until the server has moved us to this room (None: the main room)."""
        await self.wait_until(lambda: self.breakout_room == room, timeout)

    async def set_state(self, **state: bool) -> None:
        await self.send({"type": "state", **state})

    async def leave(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed, ConnectionError):
            await self.send({"type": "leave"})
        await self.close()

    async def close(self) -> None:
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:  # stop handling frames before the connections go
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for consumer in list(self._consumers):
            consumer.cancel()
        for pc in list(self.publishers.values()):
            await pc.close()
        self.publishers.clear()
        await self._close_subscriber()


TURN_TRANSPORTS = ("udp", "tcp", "tls")


def turn_transport_of(url: str) -> str | None:
    """udp, tcp or tls for a TURN URL (RFC 7065); None for anything else (STUN)."""
    scheme, _, rest = url.partition(":")
    if scheme == "turns":
        return "tls"
    if scheme != "turn":
        return None
    return "tcp" if "transport=tcp" in rest.partition("?")[2].lower() else "udp"


def ice_servers(servers: list[Frame], turn_transport: str | None = None) -> list[RTCIceServer]:
    """The `joined` frame's ICE servers for aiortc; only the TURN URLs of `turn_transport`
    when given (aiortc uses the first TURN URL it finds: this chooses which)."""
    chosen = []
    for server in servers:
        urls = [server["urls"]] if isinstance(server["urls"], str) else list(server["urls"])
        if turn_transport is not None:
            urls = [u for u in urls if turn_transport_of(u) in (None, turn_transport)]
        if urls:
            chosen.append(
                RTCIceServer(
                    urls=urls, username=server.get("username"), credential=server.get("credential")
                )
            )
    return chosen


def _busy_wait(frame: Frame) -> float | None:
    """The seconds a `busy` error asks to wait before joining again; None for anything else."""
    retry_in = frame.get("retry_in")
    if frame.get("type") != "error" or frame.get("code") != "busy":
        return None
    return float(retry_in) if isinstance(retry_in, int | float) and 0 <= retry_in <= 60 else 1.0


def _ice_ufrag(sdp: str) -> str | None:
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line.removeprefix("a=ice-ufrag:").strip()
    return None


def _transceiver_of(pc: RTCPeerConnection, track: MediaStreamTrack) -> RTCRtpTransceiver | None:
    for transceiver in pc.getTransceivers():
        if transceiver.receiver.track is track:
            return transceiver
    return None
