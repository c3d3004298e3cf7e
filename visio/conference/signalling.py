"""One client WebSocket: read frames, check them, act on the meeting, write replies.

Frames of one connection are handled in order (a `candidate` must reach Janus after the
`publish` it belongs to). Replies go through an outbox with its own writer task, so a
slow client never holds up the meeting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from visio import protocol as p
from visio.access import Identity
from visio.conference import moderation
from visio.conference.lobby import Waiter
from visio.conference.meeting import Meeting
from visio.conference.meetings import Meetings
from visio.conference.participant import Participant
from visio.config import Settings
from visio.janus.client import JanusUnavailable
from visio.ratelimit import SlidingWindowLimiter

log = logging.getLogger(__name__)
OUTBOX_LIMIT = 2000


class WebSocketOutbox:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.closing: tuple[int, str] | None = None
        self.writer = asyncio.create_task(self._write_loop())

    def send(self, frame: dict[str, Any]) -> None:
        if self.closing is not None:
            return
        if self.queue.qsize() >= OUTBOX_LIMIT:
            log.warning("client too slow, closing its connection")
            self.close(1008, "too slow")
            return
        self.queue.put_nowait(frame)

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, reason)
            self.queue.put_nowait(None)

    async def _write_loop(self) -> None:
        try:
            while (frame := await self.queue.get()) is not None:
                await self.websocket.send_text(json.dumps(frame, ensure_ascii=False))
            code, reason = self.closing or (1000, "")
            await self.websocket.close(code, reason)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away; the reader notices too

    async def drain(self) -> None:
        self.close(1000, "")
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self.writer, 2.0)


class RateLimiter:
    """A token bucket: `rate` frames per second, bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class ClientSession:
    def __init__(
        self,
        websocket: WebSocket,
        settings: Settings,
        meetings: Meetings,
        identity: Identity,
        join_limiter: SlidingWindowLimiter,
    ) -> None:
        self.websocket = websocket
        self.settings = settings
        self.meetings = meetings
        self.identity = identity
        self.client = websocket.client.host if websocket.client else "?"
        self.join_limiter = join_limiter
        self.outbox = WebSocketOutbox(websocket)
        self.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        self.meeting: Meeting | None = None
        self.participant: Participant | None = None
        self.waiter: Waiter | None = None
        self.left = False

    async def run(self) -> None:
        try:
            while not self.left and self.outbox.closing is None:
                raw = await self._receive()
                if raw is None:
                    break
                await self._handle(raw)
        finally:
            self._disconnected()
            await self.outbox.drain()

    async def _receive(self) -> str | bytes | None:
        try:
            message = await asyncio.wait_for(
                self.websocket.receive(), self.settings.ws_idle_timeout_s
            )
        except TimeoutError:
            self.outbox.close(1001, "idle")
            return None
        if message["type"] == "websocket.disconnect":
            return None
        return message.get("text") if message.get("text") is not None else message.get("bytes")

    async def _handle(self, raw: str | bytes) -> None:
        try:
            message = p.parse(raw, self.settings.max_frame_bytes)
            if not self.limiter.allow():
                raise p.ProtocolError("rate_limited", "too many messages; slow down", message.ref)
            await self._dispatch(message)
        except p.ProtocolError as error:
            self.outbox.send(error.frame())
        except JanusUnavailable as exc:
            log.warning("janus unavailable", extra={"error": str(exc)})
            self.outbox.send(
                {
                    "type": "error",
                    "code": "media_error",
                    "message": "the media server did not answer; try again",
                }
            )

    async def _dispatch(self, message: p.Message) -> None:
        if isinstance(message, p.Ping):
            self.outbox.send({"type": "pong"})
            return
        if self.waiter is not None:
            self._while_waiting(self.waiter, message)
            return
        if self.participant is None or self.meeting is None:
            if not isinstance(message, p.Join):
                raise p.ProtocolError("not_joined", "send join first", message.ref)
            await self._join(message)
            return
        try:
            await self._act(self.meeting, self.participant, message)
        except p.ProtocolError as error:
            error.ref = error.ref or message.ref
            raise

    async def _join(self, message: p.Join) -> None:
        if not self.join_limiter.allow(self.client):
            raise p.ProtocolError("rate_limited", "too many joins; wait a minute", message.ref)
        entered = await self.meetings.join(
            message,
            self.outbox,
            self.identity,
            client=self.client,
            on_admitted=self._admitted,
        )
        if isinstance(entered, Waiter):
            self.waiter = entered
        else:
            self.meeting, self.participant = entered

    def _admitted(self, meeting: Meeting, participant: Participant) -> None:
        self.waiter = None
        self.meeting, self.participant = meeting, participant

    def _while_waiting(self, waiter: Waiter, message: p.Message) -> None:
        if isinstance(message, p.Leave):
            self.left = True
            self.waiter = None
            self.meetings.leave_lobby(waiter)
            self.outbox.close(1000, "left")
            return
        raise p.ProtocolError("not_joined", "you are waiting in the lobby", message.ref)

    async def _act(self, meeting: Meeting, me: Participant, message: p.Message) -> None:
        if isinstance(message, p.MODERATOR_MESSAGES):
            await moderation.apply(self.meetings, meeting, me, message)
            return
        match message:
            case p.Join():
                raise p.ProtocolError("already_joined", "this connection has joined already")
            case p.Publish(target=target, sdp=sdp):
                answer = await meeting.publish(me, target, sdp)
                if target == "camera":
                    self._set_state(meeting, me, audio=message.audio, video=message.video)
                self.outbox.send({"type": "answer", "target": target, "sdp": answer})
            case p.Unpublish(target=target):
                await meeting.unpublish(me, target)
            case p.Answer(sdp=sdp):
                await meeting.answer(me, sdp)
            case p.Candidate(target=target, candidate=candidate):
                await meeting.trickle(
                    me, target, candidate.model_dump(exclude_none=True) if candidate else None
                )
            case p.Resubscribe():
                await meeting.resubscribe(me)
            case p.Layer(mid=mid, quality=quality):
                await meeting.set_layer(me, mid, quality)
            case p.State(audio=audio, video=video, hand=hand):
                self._set_state(meeting, me, audio=audio, video=video, hand=hand)
                await self._lift_silence(meeting, me, audio=audio, video=video)
            case p.Chat(text=text):
                meeting.post_chat(me, text)
            case p.Reaction(emoji=emoji):
                meeting.broadcast({"type": "reaction", "from": me.id, "emoji": emoji})
            case p.Captions(on=on):
                await self.meetings.captions.switch(meeting, me, on)
            case p.Leave():
                self.left = True
                await meeting.remove(me, "left")
                self.outbox.close(1000, "left")

    @staticmethod
    def _set_state(
        meeting: Meeting,
        me: Participant,
        audio: bool | None = None,
        video: bool | None = None,
        hand: bool | None = None,
    ) -> None:
        before = (me.audio, me.video, me.hand)
        me.audio = me.audio if audio is None else audio
        me.video = me.video if video is None else video
        me.hand = me.hand if hand is None else hand
        if (me.audio, me.video, me.hand) != before:
            meeting.updated(me)

    @staticmethod
    async def _lift_silence(
        meeting: Meeting, me: Participant, audio: bool | None, video: bool | None
    ) -> None:
        """Turning one's own microphone or camera back on ends a moderator's mute."""
        if audio:
            await meeting.unsilence(me, "audio")
        if video:
            await meeting.unsilence(me, "video")

    def _disconnected(self) -> None:
        if self.waiter is not None:
            self.meetings.leave_lobby(self.waiter)
            return
        if self.participant is None or self.meeting is None or self.left:
            return
        self.meetings.connection_lost(self.meeting, self.participant, self.outbox)


async def serve_websocket(
    websocket: WebSocket,
    settings: Settings,
    meetings: Meetings,
    identity: Identity,
    join_limiter: SlidingWindowLimiter,
) -> None:
    await websocket.accept()
    session = ClientSession(websocket, settings, meetings, identity, join_limiter)
    try:
        await session.run()
    except Exception:
        log.exception("websocket session failed")
        if websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(1011)
