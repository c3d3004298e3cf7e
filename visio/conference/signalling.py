"""One client's signalling: check each frame, act on the meeting, reply.

Frames of one connection are handled in order (a `candidate` must reach Janus after the
`publish` it belongs to). Replies go to the client's outbox, which never blocks: a
WebSocket's own writer (visio.conference.websocket), or the bus back to the process that
holds the client's socket (visio.cluster.relay). The session does not know which.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from visio import audit, metrics
from visio import protocol as p
from visio.access import Identity
from visio.conference import breakout, moderation, rights
from visio.conference.lobby import Waiter
from visio.conference.meeting import Meeting
from visio.conference.meetings import Meetings
from visio.conference.participant import Outbox, Participant
from visio.config import Settings
from visio.janus.client import JanusUnavailable
from visio.limits.callers import Caller, Limits, Refused

log = logging.getLogger(__name__)


class ClientSession:
    def __init__(
        self,
        outbox: Outbox,
        settings: Settings,
        meetings: Meetings,
        identity: Identity,
        client: str,
        limits: Limits,
    ) -> None:
        self.outbox = outbox
        self.settings = settings
        self.meetings = meetings
        self.identity = identity
        self.client = client  # the address, as visio.proxies resolved it
        self.caller = Caller.of(identity, client)
        self.limits = limits
        self.room: str | None = None  # one connection serves one room
        self.meeting: Meeting | None = None
        self.participant: Participant | None = None
        self.waiter: Waiter | None = None
        self.left = False
        # With several server processes: whether this process still holds a room (a
        # relayed client may have been routed here just as the room moved).
        self.room_guard: Callable[[str], Awaitable[bool]] | None = None

    async def handle(self, raw: str | bytes) -> None:
        try:
            await self._dispatch(p.parse(raw, self.settings.max_frame_bytes))
        except p.ProtocolError as error:
            metrics.ERRORS.labels(error.code).inc()
            self.outbox.send(error.frame())
        except JanusUnavailable as exc:
            metrics.ERRORS.labels("media_error").inc()
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
        if self.meeting is not None and self.meeting.closed:
            self.outbox.close(1012, "meeting moved")  # handed over: resume where it is now
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
        if self.room is not None and message.room != self.room:
            raise p.ProtocolError("bad_message", "one connection serves one room", message.ref)
        self.room = message.room
        if self.room_guard is not None and not await self.room_guard(message.room):
            self.outbox.close(1012, "meeting moved")  # the client reconnects where it is now
            return
        entered = await self.meetings.join(
            message,
            self.outbox,
            self.identity,
            on_admitted=self._admitted,
            admission=functools.partial(self._within_limits, ref=message.ref),
        )
        if isinstance(entered, Waiter):
            self.waiter = entered
        else:
            self.meeting, self.participant = entered

    async def _within_limits(self, lobby: bool, ref: str | None) -> None:
        """A join that counts (its room exists, it takes nobody's place back)."""
        try:
            await self.limits.join(self.caller, lobby=lobby)
        except Refused as refused:
            raise p.ProtocolError(
                refused.code, refused.message, ref, retry_in=refused.retry_in
            ) from None

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
            by = audit.who(self.identity, self.client, me.id, me.role)
            await moderation.apply(self.meetings, meeting, me, message, by)
            return
        if isinstance(message, p.BREAKOUT_MESSAGES):
            by = audit.who(self.identity, self.client, me.id, me.role)
            breakout.apply(meeting, me, message, by)
            return
        if isinstance(message, p.STAGE_MESSAGES):
            by = audit.who(self.identity, self.client, me.id, me.role)
            await rights.apply(self.meetings, meeting, me, message, by)
            return
        match message:
            case p.Join():
                raise p.ProtocolError("already_joined", "this connection has joined already")
            case p.Publish(target=target, sdp=sdp):
                rights.check_publish(meeting, me, target)
                answer = await meeting.publish(me, target, sdp)
                await rights.still_allowed(meeting, me, target)
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
            case p.RestartIce(target=target, sdp=sdp):
                answer = await meeting.restart_publisher_ice(me, target, sdp)
                self.outbox.send({"type": "answer", "target": target, "sdp": answer})
            case p.Layer(mid=mid, quality=quality):
                await meeting.set_layer(me, mid, quality)
            case p.QualityReport():
                meeting.report_quality(me, message)
            case p.State(audio=audio, video=video, hand=hand):
                audio, video = rights.allowed_state(meeting, me, audio, video)
                raised = me.hand
                self._set_state(meeting, me, audio=audio, video=video, hand=hand)
                if me.hand != raised:
                    rights.hand_moved(meeting, me)
                await self._lift_silence(meeting, me, audio=audio, video=video)
            case p.Chat(text=text):
                meeting.post_chat(me, text)
            case p.Reaction(emoji=emoji):
                meeting.broadcast_room(me, {"type": "reaction", "from": me.id, "emoji": emoji})
            case p.Captions(on=on):
                await self.meetings.captions.switch(meeting, me, on)
                by = audit.who(self.identity, self.client, me.id, me.role)
                audit.record("captions_on" if on else "captions_off", by, room=meeting.room_id)
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

    def disconnected(self) -> None:
        """The client's connection is gone (not a `leave`): their place is kept a while."""
        if self.waiter is not None:
            self.meetings.lobby_connection_lost(self.waiter, self.outbox)
            return
        if self.participant is None or self.meeting is None or self.left:
            return
        self.meetings.connection_lost(self.meeting, self.participant, self.outbox)


class LocalRouter:
    """One server process holds every room (the embedded default)."""

    def __init__(self, settings: Settings, meetings: Meetings, limits: Limits) -> None:
        self.settings = settings
        self.meetings = meetings
        self.limits = limits

    async def connect(
        self, join: p.Join, outbox: Outbox, identity: Identity, client: str
    ) -> ClientSession:
        return ClientSession(outbox, self.settings, self.meetings, identity, client, self.limits)
