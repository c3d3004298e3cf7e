"""The running meetings of this server process: join, resume, lose and leave.

A meeting starts (a Janus room is created) when its first person joins and ends (the
room is destroyed) when its last person leaves or does not come back in time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from visio.config import Settings
from visio.db import Store
from visio.janus.client import JanusError
from visio.janus.nodes import JanusPool, NoJanusNode
from visio.janus.videoroom import RoomOptions
from visio.meeting import Meeting
from visio.participant import Outbox, Participant
from visio.protocol import Join, ProtocolError
from visio.turn import ice_servers

log = logging.getLogger(__name__)


class Meetings:
    def __init__(self, settings: Settings, store: Store, pool: JanusPool) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool
        self.running: dict[str, Meeting] = {}
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._background: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def participant_count(self, room_id: str) -> int:
        meeting = self.running.get(room_id)
        return len(meeting.participants) if meeting else 0

    async def join(self, message: Join, outbox: Outbox) -> tuple[Meeting, Participant]:
        async with self._locks[message.room]:
            meeting = await self._meeting_for(message.room)
            participant = meeting.find_by_token(message.resume) if message.resume else None
            if participant is not None:
                self._resume(meeting, participant, outbox)
                return meeting, participant
            if len(meeting.participants) >= self.settings.max_participants:
                raise ProtocolError("room_full", "this meeting is full", message.ref)
            participant = Participant(
                name=message.name, audio=message.audio, video=message.video, outbox=outbox
            )
            participant.send(self._joined(meeting, participant, resumed=False))
            meeting.add(participant)
            return meeting, participant

    async def _meeting_for(self, room_id: str) -> Meeting:
        meeting = self.running.get(room_id)
        if meeting is not None and not meeting.closed and meeting.node.up:
            return meeting
        room = await self.store.get_room(room_id)
        if room is None:
            raise ProtocolError("room_not_found", f"no room {room_id!r}")
        try:
            node = self.pool.pick()
        except NoJanusNode as exc:
            raise ProtocolError("media_error", str(exc)) from exc
        meeting = Meeting(
            room.id,
            room.name,
            node,
            chat_history_max=self.settings.chat_history_max,
            room_options=RoomOptions(bitrate=self.settings.room_video_bitrate),
            on_empty=self._ended,
        )
        try:
            await meeting.start()
        except JanusError as exc:
            raise ProtocolError("media_error", f"could not start the meeting: {exc}") from exc
        self.running[room_id] = meeting
        return meeting

    def _joined(self, meeting: Meeting, participant: Participant, resumed: bool) -> dict[str, Any]:
        return {
            "type": "joined",
            "room": {"id": meeting.room_id, "name": meeting.name},
            "you": participant.public(),
            "participants": meeting.others(participant),
            "chat": list(meeting.chat),
            "resume": participant.resume_token,
            "resumed": resumed,
            "published": [t for t, p in participant.publications.items() if p.live],
            "iceServers": ice_servers(self.settings, participant.id),
        }

    def _resume(self, meeting: Meeting, participant: Participant, outbox: Outbox) -> None:
        if participant.grace_timer is not None:
            participant.grace_timer.cancel()
            participant.grace_timer = None
        old = participant.outbox
        if old is not None and old is not outbox:
            old.send(
                {
                    "type": "error",
                    "code": "replaced",
                    "message": "this participant continued on another connection",
                }
            )
            old.close(4001, "replaced")
        was_reconnecting = old is None
        participant.outbox = outbox
        participant.send(self._joined(meeting, participant, resumed=True))
        pending = participant.subscription.pending_frame
        if pending is not None:
            participant.send(pending)  # the client may never have seen it
        if was_reconnecting:
            meeting.updated(participant)
        log.info(
            "participant resumed", extra={"room": meeting.room_id, "participant": participant.id}
        )

    def connection_lost(self, meeting: Meeting, participant: Participant, outbox: Outbox) -> None:
        """Keep the participant's place for the grace period; then they leave."""
        if participant.outbox is not outbox or participant.id not in meeting.participants:
            return  # already replaced by a newer connection, or gone
        participant.outbox = None
        grace = self.settings.reconnect_grace_s
        if grace <= 0:
            self._spawn(meeting.remove(participant, "timeout"))
            return
        meeting.updated(participant)
        loop = asyncio.get_running_loop()
        participant.grace_timer = loop.call_later(
            grace, lambda: self._spawn(self._expire(meeting, participant))
        )

    async def _expire(self, meeting: Meeting, participant: Participant) -> None:
        participant.grace_timer = None
        if participant.outbox is None:
            await meeting.remove(participant, "timeout")

    async def _ended(self, meeting: Meeting) -> None:
        if self.running.get(meeting.room_id) is meeting:
            del self.running[meeting.room_id]
        await meeting.close()

    async def close(self) -> None:
        for meeting in list(self.running.values()):
            meeting.broadcast(
                {"type": "error", "code": "server_shutdown", "message": "the server is stopping"}
            )
            for participant in meeting.participants.values():
                if participant.outbox is not None:
                    participant.outbox.close(1012, "server shutdown")
            await meeting.close()
        self.running.clear()
