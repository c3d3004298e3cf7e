"""The running meetings of this server process: join, resume, lose and leave.

A meeting starts (a Janus room is created) when its first person joins and ends (the
room is destroyed) when its last person leaves or does not come back in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from visio.config import Settings
from visio.db import Store
from visio.janus.client import JanusError
from visio.janus.nodes import JanusNode, JanusPool, NoJanusNode
from visio.janus.videoroom import RoomOptions
from visio.meeting import Meeting
from visio.participant import Outbox, Participant
from visio.protocol import Join, ProtocolError
from visio.turn import ice_servers

log = logging.getLogger(__name__)
NODE_WAIT_S = 10.0  # a join waits this long for a media node that is (re)starting


class KeyedLocks:
    """One lock per key, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Meetings:
    def __init__(self, settings: Settings, store: Store, pool: JanusPool) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool
        self.running: dict[str, Meeting] = {}
        self._locks = KeyedLocks()
        self._background: set[asyncio.Task[None]] = set()
        pool.on_node_lost(self._node_lost)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def participant_count(self, room_id: str) -> int:
        meeting = self.running.get(room_id)
        return len(meeting.participants) if meeting else 0

    async def join(self, message: Join, outbox: Outbox) -> tuple[Meeting, Participant]:
        async with self._locks.hold(message.room):
            return await self._join(message, outbox)

    async def _join(self, message: Join, outbox: Outbox) -> tuple[Meeting, Participant]:
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
            node = await self.pool.pick_when_up(NODE_WAIT_S)
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

    def _node_lost(self, node: JanusNode) -> None:
        """Janus went away with the meeting's media: everyone rejoins on a live node."""
        for meeting in [m for m in self.running.values() if m.node is node]:
            del self.running[meeting.room_id]
            for participant in meeting.participants.values():
                participant.send(
                    {
                        "type": "error",
                        "code": "media_lost",
                        "message": "the media server stopped; rejoining",
                    }
                )
                if participant.outbox is not None:
                    participant.outbox.close(1012, "media server lost")
            self._spawn(meeting.close())

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
