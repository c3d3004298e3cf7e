"""Live captions of one running meeting.

While at least one participant wants captions, Janus forwards the audio of every
publication (microphone, screen share) to a local UDP port of ours. Each speaker's
audio is decoded as it arrives; only those who talk hold one of the few recognition
slots (a thread each). When more people talk than there are slots, the loudest and most
recent talkers are served first and the others are announced as not captioned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from visio.captions.listener import AudioListener, listen, srtp_key
from visio.captions.speaker import Speaker
from visio.conference.media import MediaRoom, media_address
from visio.conference.meeting import Meeting
from visio.conference.participant import Participant
from visio.janus.client import JanusError
from visio.janus.videoroom import rtp_forward, stop_rtp_forward

if TYPE_CHECKING:  # the speech engine loads on first use only
    from visio.speech.streaming import CaptionUpdate, StreamingEngine

log = logging.getLogger(__name__)
TICK_S = 0.25
RELEASE_AFTER_S = 2.0  # a slot is given back after this long without voice
HISTORY = 2000  # final captions kept for people who turn captions on late


@dataclass
class Forward:
    feed_id: int
    stream_id: int
    listener: AudioListener
    speaker: Speaker
    room: MediaRoom  # where the feed is published, which forwards it


class RoomCaptions:
    def __init__(
        self,
        meeting: Meeting,
        engine: StreamingEngine,
        *,
        slots: int,
        language: str | None,
        bind_host: str = "127.0.0.1",
        forward_host: str = "127.0.0.1",
    ) -> None:
        self.meeting = meeting
        self.engine = engine
        self.slots = slots
        self.language = language
        self.bind_host = bind_host
        self.forward_host = forward_host
        self.subscribers: set[str] = set()
        self.forwards: dict[int, Forward] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._task: asyncio.Task[None] | None = None
        self._sync = asyncio.Lock()
        self.closed = False

    # -- who wants captions ------------------------------------------------------------

    async def subscribe(self, participant: Participant, on: bool) -> None:
        if on:
            self.subscribers.add(participant.id)
        else:
            self.subscribers.discard(participant.id)
        await self.sync()  # the reply comes once the forwards follow
        if on:
            # What was said before they joined is not theirs to read (audit L5).
            place = self.meeting.breakouts.place(participant.id)
            history = [
                f
                for f in self.history
                if f["end"] >= participant.joined_at and f.get("breakout") == place
            ]
            participant.send({"type": "captions", "on": True, "history": history})
        else:
            participant.send({"type": "captions", "on": False})
        if self.subscribers and self._task is None:
            self._task = asyncio.create_task(self._run())

    def _audience(self) -> list[Participant]:
        people = self.meeting.participants
        self.subscribers &= set(people)
        return [people[pid] for pid in self.subscribers]

    def _send(self, frame: dict[str, Any]) -> None:
        """To those who follow captions in the speaker's room (breakout rooms: per room)."""
        together = self.meeting.breakouts.together
        for participant in self._audience():
            if together(participant.id, frame["participant"]):
                participant.send(frame)

    # -- forwards follow the publications ------------------------------------------------

    def _wanted(self) -> dict[int, tuple[Participant, str, str]]:
        """feed id -> (participant, target, audio mid) for every live publication."""
        if not self._audience():
            return {}
        wanted = {}
        for participant in self.meeting.participants.values():
            for publication in participant.publications.values():
                mids = publication.mids.get("audio", [])
                if publication.live and mids:
                    wanted[publication.feed_id] = (participant, publication.target, mids[0])
        return wanted

    async def sync(self) -> None:
        """Start the forwards of new publications and stop those no longer wanted."""
        async with self._sync:
            wanted = {} if self.closed else self._wanted()
            for feed_id in [f for f in self.forwards if f not in wanted]:
                await self._stop(self.forwards.pop(feed_id))
            for feed_id, (participant, target, mid) in wanted.items():
                if feed_id not in self.forwards:
                    await self._start(feed_id, participant, target, mid)
            self._announce()

    def _announce(self) -> None:
        """Everyone is told while speech is recognised, as for a capture (audit L5)."""
        on = not self.closed and bool(self._audience())
        if self.meeting.captions_on != on:
            self.meeting.captions_on = on
            if not self.meeting.closed:
                self.meeting.broadcast({"type": "room", "room": self.meeting.room_info()})

    async def _start(self, feed_id: int, participant: Participant, target: str, mid: str) -> None:
        room = self.meeting.room_of_feed(feed_id)  # the node the feed is published on
        if room is None or not room.up:
            return
        speaker = Speaker(participant.id, participant.name, target, participant.guest)
        key = srtp_key()
        listener = await listen(self.bind_host, media_address(room.node), speaker.hear, key)
        try:
            stream_id = await rtp_forward(
                room.control, room.janus_room, feed_id, mid,
                self.forward_host, listener.port, room.node.admin_key, key,
            )  # fmt: skip
        except (JanusError, ValueError) as exc:
            listener.close()
            log.warning("captions: rtp_forward failed", extra={"error": str(exc)})
            return
        self.forwards[feed_id] = Forward(feed_id, stream_id, listener, speaker, room)
        log.info("captions: forwarding", extra={"room": self.meeting.room_id, "feed": feed_id})

    async def _stop(self, forward: Forward) -> None:
        forward.speaker.stop()
        forward.listener.close()
        room = forward.room
        if room.up:
            with contextlib.suppress(JanusError):  # the feed may be gone, and its forwards
                await stop_rtp_forward(
                    room.control, room.janus_room, forward.feed_id,
                    forward.stream_id, room.node.admin_key,
                )  # fmt: skip

    # -- recognition slots ---------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self.closed and self.subscribers:
                await self.sync()
                self._schedule()
                await asyncio.sleep(TICK_S)
        finally:
            self._task = None
            if not self.closed and not self.subscribers:
                await self.sync()  # nobody wants captions: stop the forwards

    def _schedule(self) -> None:
        speakers = [forward.speaker for forward in self.forwards.values()]
        now = time.monotonic()
        for speaker in speakers:
            if speaker.recognising and now - speaker.voiced_at > RELEASE_AFTER_S:
                speaker.stop()
        free = self.slots - sum(s.recognising for s in speakers)
        waiting = [s for s in speakers if s.talking and not s.recognising]
        waiting.sort(key=lambda s: (s.level, s.started_talking_at), reverse=True)
        for speaker in waiting[:free]:
            speaker.start(self.engine, self.language, self._on_updates)
        for speaker in speakers:
            if speaker.talking:
                self._mark(speaker, speaker.recognising)

    def _mark(self, speaker: Speaker, captioned: bool) -> None:
        if speaker.captioned is captioned:
            return
        if speaker.captioned is None and captioned:
            speaker.captioned = True  # the usual case needs no announcement
            return
        speaker.captioned = captioned
        self._send(
            {
                "type": "caption_status",
                "participant": speaker.participant_id,
                "name": speaker.label,
                "captioned": captioned,
            }
        )

    def _on_updates(self, speaker: Speaker, updates: list[CaptionUpdate]) -> None:
        for update in updates:
            frame = {
                "type": "caption",
                "id": f"{speaker.participant_id}-{speaker.target}-"
                f"{int(speaker.stream_started_at * 1000)}-{update.utterance}",
                "participant": speaker.participant_id,
                "name": speaker.label,
                "text": update.text,
                "final": update.final,
                "start": int((speaker.stream_started_at + update.start) * 1000),
                "end": int((speaker.stream_started_at + update.end) * 1000),
                "language": update.language,
            }
            place = self.meeting.breakouts.place(speaker.participant_id)
            if place is not None:
                frame["breakout"] = place
            if update.final:
                self.history.append(frame)
            self._send(frame)

    async def close(self) -> None:
        """The meeting ends: no forward, port or thread is left behind."""
        self.closed = True
        self.subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        async with self._sync:
            for forward in self.forwards.values():
                await self._stop(forward)
            self.forwards.clear()
