"""A running meeting: its people, its chat and its Janus rooms.

The meeting has a room on one media node, or on several when one node cannot carry it all
(visio.conference.media): each participant is placed in one of them, publishes there
through publisher handles and receives everybody else there through one subscriber
handle, whose subscriptions the meeting keeps in step with who publishes (the server
makes the offers; one renegotiation at a time per participant). Feeds published in one
room are mirrored into the others (visio.conference.mirrors).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from visio.conference import gate, quality
from visio.conference.breakout import Breakouts
from visio.conference.journal import NO_JOURNAL, Journal
from visio.conference.media import MediaRoom
from visio.conference.mirrors import Mirrors
from visio.conference.participant import Participant, Publication, Subscription
from visio.conference.records import (
    CaptureRecord,
    MediaRoomRecord,
    MeetingRecord,
    ParticipantRecord,
)
from visio.conference.stage import Stage
from visio.janus.cascade import extmap_id
from visio.janus.client import JanusError, JanusEvent
from visio.janus.nodes import JanusNode, NodeLoad
from visio.janus.videoroom import (
    UNAUTHORIZED,
    PublisherHandle,
    RoomOptions,
    SubscriberHandle,
    SubscriberOffer,
    destroy_room,
    media_mids,
    moderate,
    subscriber_offer,
)
from visio.limits.budgets import RateLimiter
from visio.protocol import ProtocolError, QualityReport
from visio.transcripts.capture import CaptureSession, nothing_captured

log = logging.getLogger(__name__)
RESYNC_DELAY_S = 0.5
MAX_SYNC_FAILURES = 5
CAPTURE_SWITCHES = 6  # switches of transcription or recording at once, then
CAPTURE_SWITCHES_PER_MINUTE = 6  # this many a minute (audit M8)

# Where the next person is placed: a node of one of the meeting's rooms, or a new one.
Placer = Callable[["Meeting"], Awaitable[JanusNode]]


class Meeting:
    def __init__(
        self,
        room_id: str,
        name: str,
        *,
        chat_history_max: int,
        room_options: RoomOptions,
        on_empty: Callable[[Meeting], Coroutine[Any, Any, None]],
        place: Placer | None = None,
        journal: Journal = NO_JOURNAL,
    ) -> None:
        self.room_id = room_id
        self.name = name
        self.access = "public"
        self.max_participants: int | None = None  # the room's cap, set by its moderators
        self.locked = False
        self.captions_on = False  # someone follows live captions: speech is recognised
        self.banned: set[str] = set()  # identity keys of people removed by a moderator
        self.stage = Stage()  # large meetings' rules and spotlight (visio.conference.rights)
        self.publish_key = gate.new_key()  # Janus' own check on publishers (visio.conference.gate)
        self.room_options = room_options
        self.rooms: dict[str, MediaRoom] = {}  # node URL -> room; the first is the home
        self.participants: dict[str, Participant] = {}
        self.chat: deque[dict[str, Any]] = deque(maxlen=chat_history_max)
        self._chat_seq = 0
        self._feeds: dict[int, tuple[Participant, Publication]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_empty = on_empty
        self._place = place
        self._placing = asyncio.Lock()
        self.mirrors = Mirrors(on_ready=self._mirror_ready, spawn=self._spawn)
        self.journal = journal
        self.closed = False
        self.capture: CaptureSession | None = None  # set once someone starts a capture
        # Each switch opens recordings of every publication and rewrites the manifest.
        self.capture_switches = RateLimiter(CAPTURE_SWITCHES_PER_MINUTE / 60, CAPTURE_SWITCHES)
        self.breakouts = Breakouts(self)

    # -- life cycle ---------------------------------------------------------------

    @property
    def home(self) -> MediaRoom | None:
        return next(iter(self.rooms.values()), None)

    @property
    def media_up(self) -> bool:
        """Every room of the meeting is on a node that is up."""
        return bool(self.rooms) and all(room.up for room in self.rooms.values())

    @property
    def chat_seq(self) -> int:
        return self._chat_seq

    def nodes(self) -> list[JanusNode]:
        return [room.node for room in self.rooms.values()]

    async def start(self, node: JanusNode) -> None:
        """The meeting's first room, on this node."""
        await self._open_room(node)
        log.info("meeting started", extra={"room": self.room_id, "janus": node.url})

    async def _open_room(self, node: JanusNode) -> MediaRoom:
        room = await MediaRoom.open(node, self.room_options)
        self.rooms[node.url] = room
        self.journal.meeting(self)
        self._mirror_everything_into(room)
        return room

    def record(self) -> MeetingRecord:
        return MeetingRecord(
            room=self.room_id,
            name=self.name,
            access=self.access,
            max_participants=self.max_participants,
            locked=self.locked,
            banned=sorted(self.banned),
            rooms=[
                MediaRoomRecord(node=r.url, janus_room=r.janus_room, session=r.session.id)
                for r in self.rooms.values()
            ],
            mirrors=self.mirrors.records(),
            chat_seq=self._chat_seq,
            capture=_capture_record(self.capture) if self.capture is not None else None,
            breakout=self.breakouts.record(),
            stage=self.stage.record(),
            publish_key=self.publish_key,
        )

    async def take_over(
        self,
        record: MeetingRecord,
        participants: list[ParticipantRecord],
        chat: list[dict[str, Any]],
        nodes: dict[str, JanusNode],
    ) -> bool:
        """Go on with a meeting another process ran, everyone in it waiting to reconnect.

        Its Janus sessions are claimed, not re-created, so every peer connection stays up:
        True. People whose room's session is gone (Janus restarted, or nobody claimed it in
        time) publish and subscribe anew (`media_reset`, told by their next `joined`): False
        when that is everyone.
        """
        for data in record.rooms:
            node = nodes.get(data.node)
            if node is None or not node.up:
                continue
            try:
                room = await MediaRoom.claim(node, data.janus_room, data.session)
            except JanusError as exc:
                log.warning(
                    "janus session not claimed", extra={"room": self.room_id, "error": str(exc)}
                )
                await _destroy_quietly(node, data.janus_room)  # nothing left behind
                continue
            self.rooms[node.url] = room
        self.locked, self.banned = record.locked, set(record.banned)
        self.stage = Stage.restore(record.stage)
        self.publish_key = record.publish_key or self.publish_key
        self._chat_seq = record.chat_seq
        self.chat.extend(chat)
        self.mirrors.restore([m for m in record.mirrors if {m.source, m.target} <= set(self.rooms)])
        self.breakouts.restore(record.breakout)
        for data in participants:
            self._restore(data)
        log.info(
            "meeting taken over",
            extra={"room": self.room_id, "participants": len(self.participants)},
        )
        return bool(self.rooms)

    def _restore(self, data: ParticipantRecord) -> None:
        room = self.rooms.get(data.node) if data.node else None
        participant = Participant(
            name=data.name,
            audio=data.audio,
            video=data.video,
            hand=data.hand,
            id=data.id,
            resume_token=None,
            resume_digest=data.resume,
            identity=data.identity.identity(),
            role=data.role,
            silenced=set(data.silenced),
            admitted=data.admitted,
            joined_at=data.joined_at,
            hand_at=data.hand_at,
            granted=set(data.granted),
            promoted=data.promoted,
            node=room.url if room else None,
            media_reset=data.node is not None and room is None,
        )
        if room is not None:
            self._restore_media(participant, data, room)
        self.participants[participant.id] = participant

    def _restore_media(
        self, participant: Participant, data: ParticipantRecord, room: MediaRoom
    ) -> None:
        for target, pub in data.publications.items():
            handle = PublisherHandle(room.session.adopt(pub.handle), pub.feed)
            publication = Publication(
                target,
                handle,
                live=pub.live,
                mids=pub.mids,
                streams=pub.streams,
                audiolevel=pub.audiolevel,
                node=room.url,
            )
            handle.handle.on_event = self._publisher_events(participant, publication)
            participant.publications[target] = publication
            self._feeds[pub.feed] = (participant, publication)
        sub = data.subscription
        if sub.handle is not None:
            handle = SubscriberHandle(room.session.adopt(sub.handle))
            handle.joined = True
            handle.handle.on_event = self._subscriber_events(participant, handle)
            subscription = participant.subscription
            subscription.handle, subscription.feeds = handle, set(sub.feeds)
            subscription.pending_frame, subscription.broken = sub.pending, sub.broken

    async def drop_rooms(self, urls: set[str]) -> list[Participant]:
        """Those rooms are lost (their node died) or emptied (it drains): their mirrors go,
        and the people placed there start their media anew in another room. Returns them."""
        moved = [p for p in self.participants.values() if p.node in urls]
        for participant in moved:
            self._forget(participant, keep_grace=True)
            participant.node = None
            participant.media_reset = True
            participant.subscription = Subscription()
        for url in urls:
            await self.mirrors.drop_room(url, self.rooms)
        await self._settle()
        for url in urls:
            room = self.rooms.pop(url, None)
            if room is not None and room.up:
                await room.close()
        self.journal.meeting(self)
        for participant in moved:
            self.journal.participant(self, participant)
        self._resync_everyone()
        return moved

    def release(self) -> None:
        """Hand the meeting to another process: forget it here, leave everything on Janus."""
        self.closed = True
        self.breakouts.stop()
        for participant in self.participants.values():
            if participant.grace_timer is not None:
                participant.grace_timer.cancel()
        for task in self._tasks:
            task.cancel()
        for room in self.rooms.values():
            room.release()

    async def close(self) -> None:
        """Free everything on Janus: mirrors, handles, then each room and its session."""
        if self.closed:
            return
        self.closed = True
        self.breakouts.stop()
        for participant in list(self.participants.values()):
            self._forget(participant)
            self._log_quality(participant, "ended")
        self.participants.clear()
        await self.mirrors.close(self.rooms)
        await self._settle()
        for room in self.rooms.values():
            await room.close()
        log.info("meeting ended", extra={"room": self.room_id})

    async def _settle(self, timeout: float = 5.0) -> None:
        """Let background requests (handle detaches above all) finish before a room goes.

        Janus 1.1.2 can crash when a room is destroyed while handles in it are being
        detached (seen: janus_plugin_close_pc on a freed session).
        """
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("meeting task failed", exc_info=task.exception())

    # -- placement ------------------------------------------------------------------

    def live_feeds(self) -> int:
        return sum(1 for _, publication in self._feeds.values() if publication.live)

    def load(self) -> dict[str, NodeLoad]:
        """What this meeting puts on each of its nodes: people, and forwarded streams."""
        loads = {url: NodeLoad(meetings=1) for url in self.rooms}
        for participant in self.participants.values():
            load = loads.get(participant.node or "")
            if load is None:
                continue
            load.participants += 1
            for feed in participant.subscription.feeds:
                owner = self._feeds.get(feed)
                load.streams += _tracks(owner[1]) if owner else 0
        for key, (source, _) in self.mirrors.ready.items():
            owner = self._feeds.get(key[0])
            if source in loads and owner is not None:
                loads[source].streams += _tracks(owner[1])
        return loads

    def placed_in(self, room: MediaRoom) -> list[Participant]:
        return [p for p in self.participants.values() if p.node == room.url]

    async def _room_of(self, participant: Participant) -> MediaRoom:
        """The room the participant is placed in; placed now if they were not yet."""
        room = self.rooms.get(participant.node or "")
        if room is not None:
            return room
        async with self._placing:
            node = await self._place(self) if self._place else None
            if node is None:
                home = self.home
                if home is None:
                    raise ProtocolError("media_error", "the media server is not available")
                node = home.node
            room = self.rooms.get(node.url)
            if room is None:
                try:
                    room = await self._open_room(node)
                except JanusError as exc:
                    raise ProtocolError("media_error", f"media server: {exc.reason}") from exc
                log.info("meeting spread", extra={"room": self.room_id, "janus": node.url})
            participant.node = room.url
            self.journal.participant(self, participant)
            return room

    def _require_room(self, participant: Participant) -> MediaRoom:
        room = self.rooms.get(participant.node or "")
        if room is None or not room.up:
            raise ProtocolError("media_error", "the media server is not available")
        return room

    # -- people -------------------------------------------------------------------

    def broadcast(self, frame: dict[str, Any], exclude: Participant | None = None) -> None:
        for participant in self.participants.values():
            if participant is not exclude:
                participant.send(frame)

    def broadcast_room(self, of: Participant, frame: dict[str, Any]) -> None:
        """To everyone in the same (breakout) room as `of`."""
        for participant in list(self.participants.values()):
            if self.breakouts.together(participant.id, of.id):
                participant.send(frame)

    def room_info(self) -> dict[str, Any]:
        return {
            "id": self.room_id,
            "name": self.name,
            "access": self.access,
            "locked": self.locked,
            "max_participants": self.max_participants,
            "capture": self.capture_state(),
            "captions": self.captions_on,
            "stage": self.stage.public(self.participants),
        }

    def capture_state(self) -> dict[str, bool]:
        """What is being captured now: everyone sees it, and so does anyone about to join."""
        if self.capture is None:
            return nothing_captured()
        return self.capture.state()

    def moderators(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.moderator]

    def others(self, participant: Participant) -> list[dict[str, Any]]:
        return [p.public() for p in self.participants.values() if p is not participant]

    def find_by_token(self, token: str) -> Participant | None:
        for participant in self.participants.values():
            if participant.holds(token):
                return participant
        return None

    def add(self, participant: Participant) -> None:
        self.participants[participant.id] = participant
        self.journal.participant(self, participant)
        self.broadcast(
            {"type": "participant_joined", "participant": participant.public()}, exclude=participant
        )
        log.info("participant joined", extra={"room": self.room_id, "participant": participant.id})
        self._spawn(self.sync_subscription(participant))

    def updated(self, participant: Participant) -> None:
        self.journal.participant(self, participant)
        self.broadcast(
            {"type": "participant_updated", "participant": participant.public()},
            exclude=participant,
        )

    async def remove(self, participant: Participant, reason: str) -> None:
        if self.closed or self.participants.pop(participant.id, None) is None:
            return  # (a meeting handed over to another process is not ours to change)
        self._forget(participant)
        self.breakouts.forget(participant.id)
        self.journal.left(self, participant)
        self.broadcast({"type": "participant_left", "id": participant.id, "reason": reason})
        log.info(
            "participant left",
            extra={"room": self.room_id, "participant": participant.id, "reason": reason},
        )
        self._log_quality(participant, reason)
        self._resync_everyone()
        if not self.participants:
            await self._on_empty(self)
        else:
            self._spawn(self.guard_publishing())

    def report_quality(self, participant: Participant, report: QualityReport) -> None:
        seconds = participant.quality.add(report)
        quality.observe(report, seconds)

    def _log_quality(self, participant: Participant, reason: str) -> None:
        """One line per participant and call: what their client measured, no media, no name."""
        if not participant.quality.reports:
            return
        log.info(
            "call quality",
            extra={
                "room": self.room_id,
                "participant": participant.id,
                "reason": reason,
                **participant.quality.summary(),
            },
        )

    def _forget(self, participant: Participant, keep_grace: bool = False) -> None:
        """Drop a participant's Janus handles and feeds (in the background)."""
        if participant.grace_timer is not None and not keep_grace:
            participant.grace_timer.cancel()
            participant.grace_timer = None
        for publication in participant.publications.values():
            self._retire(publication)
        participant.publications.clear()
        subscription = participant.subscription
        if subscription.handle is not None:
            self._spawn(subscription.handle.close())
            subscription.handle = None

    def _retire(self, publication: Publication) -> None:
        """A feed goes: nobody subscribes to it any more, its mirrors go, then its handle."""
        self._feeds.pop(publication.feed_id, None)
        self._spawn(self._wind_down(publication))

    async def _wind_down(self, publication: Publication) -> None:
        if self.mirrors.count():
            await self._resync_all_now()
            await self.mirrors.drop(publication.feed_id, self.rooms)
            if not self.closed:
                self.journal.meeting(self)
        await publication.handle.close()

    # -- publishing -----------------------------------------------------------------

    async def publish(self, participant: Participant, target: str, sdp: str) -> str:
        """Publish a target; an existing publication of it is replaced once Janus accepts."""
        room = await self._room_of(participant)
        feed_id = secrets.randbits(52) or 1
        handle = await PublisherHandle.attach(room.session, feed_id, None)
        publication = Publication(
            target, handle, mids=media_mids(sdp), audiolevel=extmap_id(sdp), node=room.url
        )
        handle.handle.on_event = self._publisher_events(participant, publication)
        token = gate.publish_token(self.publish_key, participant.id, target)
        try:
            await room.allow_publishers(self._publish_tokens())
            published = await handle.publish(room.janus_room, participant.id, sdp, token)
        except (JanusError, ValueError) as exc:
            await handle.close()
            if isinstance(exc, JanusError) and exc.code == UNAUTHORIZED:
                raise ProtocolError(
                    "forbidden", f"the media server does not let you publish a {target}: {exc}"
                ) from exc
            raise ProtocolError("bad_sdp", f"media server refused the offer: {exc}") from exc
        if self.participants.get(participant.id) is not participant:
            await handle.close()  # they left or were removed while Janus answered
            raise ProtocolError("not_joined", "you are no longer in this meeting")
        publication.streams = published.streams
        previous = participant.publications.get(target)
        participant.publications[target] = publication
        if target == "camera":
            participant.silenced.clear()  # a new feed: a moderator's mute was on the old one
        self._feeds[feed_id] = (participant, publication)
        if self.capture is not None and self.capture.active and self._captured(participant):
            self._spawn(self._record(participant, publication, on=True))
        if previous is not None:
            self._retire(previous)
            self._resync_everyone(exclude=participant)
        elif target == "screen":
            self.updated(participant)
        self.journal.participant(self, participant)
        return published.sdp

    def _publish_tokens(self) -> set[str]:
        return gate.allowed_tokens(self.publish_key, self.stage, self.participants.values())

    async def guard_publishing(self) -> None:
        """Bring every room's list of publish tokens in line with who may publish now
        (visio.conference.gate). A room Janus could not update catches up at its next
        publish, before anyone joins it."""
        tokens = self._publish_tokens()
        for room in list(self.rooms.values()):
            try:
                await room.allow_publishers(tokens)
            except JanusError as exc:
                log.warning(
                    "publish tokens not updated",
                    extra={"room": self.room_id, "janus": room.url, "error": str(exc)},
                )

    async def restart_publisher_ice(self, participant: Participant, target: str, sdp: str) -> str:
        """An ICE restart of a publication, on the same Janus handle: nobody else notices."""
        publication = participant.publications.get(target)
        if publication is None:
            raise ProtocolError("not_published", f"{target} is not published")
        try:
            return await publication.handle.restart_ice(sdp)
        except (JanusError, ValueError) as exc:
            raise ProtocolError("bad_sdp", f"media server refused the ICE restart: {exc}") from exc

    async def unpublish(self, participant: Participant, target: str) -> None:
        publication = participant.publications.pop(target, None)
        if publication is None:
            raise ProtocolError("not_published", f"{target} is not published")
        self._retire(publication)
        self.journal.participant(self, participant)
        if target == "screen":
            self.updated(participant)
        self._resync_everyone()

    async def record_everyone(self, on: bool) -> None:
        """Start (or stop) Janus recording every current publication of the meeting."""
        for participant in list(self.participants.values()):
            for publication in list(participant.publications.values()):
                if self._captured(participant) or not on:
                    await self._record(participant, publication, on)

    def _captured(self, participant: Participant) -> bool:
        """A capture records the main room only, never a breakout room."""
        return self.breakouts.room_of(participant.id) is None

    def regrouped(
        self, moved: list[tuple[Participant, int | None, Callable[[], dict[str, Any]]]]
    ) -> None:
        """People changed breakout room (each with where they were, and how to make the
        `moved` frame that tells them): each mover gets a subscriber connection of their new
        room, the others' subscriptions follow, and a capture follows the main room."""
        self.journal.meeting(self)
        capturing = self.capture is not None and self.capture.active
        for participant, before, frame in moved:
            here = self._captured(participant)
            if capturing and here != (before is None):
                for publication in list(participant.publications.values()):
                    self._spawn(self._record(participant, publication, on=here))
            self._spawn(self._subscribe_anew(participant, frame))
        if moved:
            self._resync_everyone(exclude_all=frozenset(p.id for p, _, _ in moved))

    async def _subscribe_anew(
        self, participant: Participant, frame: Callable[[], dict[str, Any]]
    ) -> None:
        """A fresh subscriber connection: the `moved` frame goes under the subscription's
        lock, once the old handle is gone, so every offer after it is the new one's (and
        no m-line of the old room is left to reuse)."""
        subscription = participant.subscription
        async with subscription.lock:
            if subscription.handle is not None:
                await subscription.handle.close()
            subscription.handle = None
            subscription.feeds = set()
            subscription.pending_offer = subscription.pending_frame = None
            subscription.needs_sync = subscription.broken = False
            subscription.failures = 0
            participant.send(frame())
        self.journal.participant(self, participant)
        await self.sync_subscription(participant)

    async def _record(self, participant: Participant, publication: Publication, on: bool) -> None:
        base = None
        if on and self.capture is not None:
            base = self.capture.new_track(
                participant.id,
                participant.name,
                publication.target,
                publication.feed_id,
                participant.guest,
            )
            if base is None:
                self._capture_full()
                return
        try:
            await publication.handle.record(base)
        except JanusError as exc:
            log.warning("janus record failed", extra={"room": self.room_id, "error": str(exc)})

    def _capture_full(self) -> None:
        """Past capture_max_tracks (audit M8): said to the moderators once, and logged."""
        assert self.capture is not None
        if self.capture.over_cap > 1:
            return
        log.warning(
            "capture track cap reached",
            extra={"room": self.room_id, "capture": self.capture.capture_id},
        )
        frame = {
            "type": "error",
            "code": "capture_limit",
            "message": f"only {self.capture.max_tracks} tracks are recorded per capture; "
            "later publications are not",
        }
        for moderator in self.moderators():
            moderator.send(frame)

    async def silence(self, participant: Participant, media: str) -> None:
        """A moderator turns someone's microphone (audio) or camera (video) off.

        Janus stops forwarding the track at once, whatever their client does; it forwards
        it again when they turn it back on themselves (`unsilence`).
        """
        await self._moderate_camera(participant, media, mute=True)
        participant.silenced.add(media)
        self.journal.participant(self, participant)
        before = (participant.audio, participant.video)
        if media == "audio":
            participant.audio = False
        else:
            participant.video = False
        if (participant.audio, participant.video) != before:
            self.updated(participant)

    async def unsilence(self, participant: Participant, media: str) -> None:
        if media in participant.silenced:
            participant.silenced.discard(media)
            self.journal.participant(self, participant)
            await self._moderate_camera(participant, media, mute=False)

    async def _moderate_camera(self, participant: Participant, media: str, mute: bool) -> None:
        publication = participant.publications.get("camera")
        room = self.rooms.get(publication.node) if publication is not None else None
        if publication is None or room is None or not room.up:
            return
        for mid in publication.mids.get(media, []):
            try:
                await moderate(room.control, room.janus_room, publication.feed_id, mid, mute)
            except JanusError as exc:
                log.warning("janus moderate failed", extra={"error": str(exc)})

    def room_of_feed(self, feed_id: int) -> MediaRoom | None:
        """The room a feed is published in (captions forward its audio from there)."""
        owner = self._feeds.get(feed_id)
        return self.rooms.get(owner[1].node) if owner is not None else None

    async def trickle(
        self, participant: Participant, target: str, candidate: dict[str, Any] | None
    ) -> None:
        if target == "subscriber":
            handle = participant.subscription.handle
            janus_handle = handle.handle if handle is not None else None
        else:
            publication = participant.publications.get(target)
            janus_handle = publication.handle.handle if publication is not None else None
        if janus_handle is None:
            raise ProtocolError("not_published", f"no {target} connection to trickle to")
        try:
            await janus_handle.trickle(candidate)
        except JanusError as exc:
            raise ProtocolError("bad_message", f"candidate refused: {exc.reason}") from exc

    def _publisher_events(
        self, participant: Participant, publication: Publication
    ) -> Callable[[JanusEvent], None]:
        return lambda event: self._on_publisher_event(participant, publication, event)

    def _on_publisher_event(
        self, participant: Participant, publication: Publication, event: JanusEvent
    ) -> None:
        if publication is not participant.publications.get(publication.target):
            return  # a replaced publication winding down
        room = self.rooms.get(publication.node)
        if room is None or not room.up:
            return  # its Janus is gone: the people there are being moved
        if event.kind == "webrtcup":
            publication.live = True
            self.journal.participant(self, participant)
            participant.send({"type": "media", "target": publication.target, "state": "up"})
            self.mirrors.ensure(publication, room, list(self.rooms.values()))
            self._resync_everyone(exclude=participant)
        elif event.kind == "hangup":
            publication.live = False
            self.journal.participant(self, participant)
            participant.send({"type": "media", "target": publication.target, "state": "down"})
            self._resync_everyone(exclude=participant)
        elif event.kind == "trickle":
            participant.send(_candidate_frame(publication.target, event.data))
        elif event.kind == "event" and event.data.get("id") == publication.feed_id:
            talking = event.data.get("videoroom")
            if talking in ("talking", "stopped-talking") and publication.target == "camera":
                self.broadcast_room(
                    participant,
                    {"type": "speaking", "id": participant.id, "speaking": talking == "talking"},
                )

    # -- mirroring between rooms ------------------------------------------------------

    def _mirror_everything_into(self, room: MediaRoom) -> None:
        for _, publication in self._feeds.values():
            source = self.rooms.get(publication.node)
            if publication.live and source is not None and source is not room:
                self.mirrors.ensure(publication, source, [room])

    def _mirror_ready(self, room: MediaRoom) -> None:
        self.journal.meeting(self)
        for participant in self.placed_in(room):
            self._spawn(self.sync_subscription(participant))

    # -- subscribing ----------------------------------------------------------------

    def _resync_everyone(
        self, exclude: Participant | None = None, exclude_all: frozenset[str] = frozenset()
    ) -> None:
        for participant in list(self.participants.values()):
            if participant is not exclude and participant.id not in exclude_all:
                self._spawn(self.sync_subscription(participant))

    async def _resync_all_now(self) -> None:
        await asyncio.gather(
            *(self.sync_subscription(p) for p in list(self.participants.values())),
            return_exceptions=True,
        )

    def _wanted_feeds(self, participant: Participant) -> set[int]:
        """The live feeds of others that can be had in the participant's room."""
        room = self.rooms.get(participant.node or "")
        if room is None:
            return set()
        return {
            feed_id
            for feed_id, (owner, publication) in self._feeds.items()
            if owner is not participant
            and publication.live
            and self.breakouts.together(owner.id, participant.id)
            and (publication.node == room.url or self.mirrors.visible(feed_id, room))
        }

    async def sync_subscription(self, participant: Participant) -> None:
        """Bring the participant's subscriber connection to every live remote feed."""
        subscription = participant.subscription
        async with subscription.lock:
            if self.closed or participant.id not in self.participants or subscription.broken:
                return
            if subscription.pending_offer is not None:
                subscription.needs_sync = True
                return
            try:
                if participant.node is None and self._feeds:
                    await self._room_of(participant)
                offer = await self._negotiate(participant, self._wanted_feeds(participant))
            except _Gone:
                return
            except (JanusError, ValueError, ProtocolError) as exc:
                # Usually a feed vanished between our look and Janus' answer: try again.
                subscription.failures += 1
                log.info("subscription update failed", extra={"error": str(exc)})
                if subscription.failures <= MAX_SYNC_FAILURES:
                    self._spawn(self._resync_later(participant))
                else:
                    subscription.broken = True
                    participant.send({"type": "media", "target": "subscriber", "state": "down"})
                return
            subscription.failures = 0
            if offer is not None:
                self._offer(participant, offer)

    async def _negotiate(
        self, participant: Participant, wanted: set[int]
    ) -> SubscriberOffer | None:
        subscription = participant.subscription
        if subscription.handle is None:
            if not wanted:
                return None
            return await self._first_offer(participant, wanted)
        handle = subscription.handle
        add = sorted(wanted - subscription.feeds)
        remove = sorted(subscription.feeds - wanted)
        if not add and not remove:
            return None
        offer = await handle.update(add, remove)
        if offer is None:
            subscription.feeds = set(wanted)
            self.journal.participant(self, participant)
        return offer

    async def _first_offer(self, participant: Participant, wanted: set[int]) -> SubscriberOffer:
        room = self._require_room(participant)
        handle = await SubscriberHandle.attach(room.session, None)
        handle.handle.on_event = self._subscriber_events(participant, handle)
        try:
            offer = await handle.join(room.janus_room, sorted(wanted))
        except (JanusError, ValueError):
            await handle.close()
            raise
        if self.closed or self.participants.get(participant.id) is not participant:
            await handle.close()  # they left while Janus answered: nobody would detach it
            raise _Gone()
        participant.subscription.handle = handle
        return offer

    async def _resync_later(self, participant: Participant) -> None:
        await asyncio.sleep(RESYNC_DELAY_S)
        await self.sync_subscription(participant)

    def _offer(self, participant: Participant, offer: SubscriberOffer) -> None:
        subscription = participant.subscription
        subscription.feeds = {s.feed_id for s in offer.streams if s.active}
        subscription.pending_offer = offer
        streams = []
        for stream in offer.streams:
            owner = self._feeds.get(stream.feed_id)
            if stream.active and owner is not None:
                streams.append(
                    {
                        "mid": stream.mid,
                        "participant": owner[0].id,
                        "target": owner[1].target,
                        "media": stream.media,
                    }
                )
        subscription.pending_frame = {"type": "offer", "sdp": offer.sdp, "streams": streams}
        self.journal.participant(self, participant)
        participant.send(subscription.pending_frame)

    async def answer(self, participant: Participant, sdp: str) -> None:
        subscription = participant.subscription
        async with subscription.lock:
            if subscription.pending_offer is None or subscription.handle is None:
                raise ProtocolError("no_offer", "no subscriber offer is waiting for an answer")
            try:
                await subscription.handle.start(sdp)
            except JanusError as exc:
                raise ProtocolError("bad_sdp", f"media server refused the answer: {exc}") from exc
            subscription.pending_offer = None
            subscription.pending_frame = None
            again = subscription.needs_sync
            subscription.needs_sync = False
        self.journal.participant(self, participant)
        if again:
            self._spawn(self.sync_subscription(participant))

    async def resubscribe(self, participant: Participant) -> None:
        subscription = participant.subscription
        async with subscription.lock:
            if subscription.handle is not None:
                await subscription.handle.close()
            subscription.handle = None
            subscription.feeds = set()
            subscription.pending_offer = None
            subscription.pending_frame = None
            subscription.needs_sync = False
            subscription.broken = False
            subscription.failures = 0
        self.journal.participant(self, participant)
        await self.sync_subscription(participant)

    async def set_layer(self, participant: Participant, mid: str, quality: str) -> None:
        handle = participant.subscription.handle
        if handle is None:
            raise ProtocolError("bad_message", "no subscriber connection")
        try:
            await handle.set_substream(mid, quality)
        except JanusError as exc:
            raise ProtocolError("bad_message", f"cannot set layer: {exc.reason}") from exc

    def _subscriber_events(
        self, participant: Participant, handle: SubscriberHandle
    ) -> Callable[[JanusEvent], None]:
        return lambda event: self._on_subscriber_event(participant, handle, event)

    def _on_subscriber_event(
        self, participant: Participant, handle: SubscriberHandle, event: JanusEvent
    ) -> None:
        subscription = participant.subscription
        room = self.rooms.get(participant.node or "")
        if subscription.handle is not handle or room is None or not room.up:
            return
        if event.kind == "webrtcup":
            participant.send({"type": "media", "target": "subscriber", "state": "up"})
        elif event.kind == "hangup":
            subscription.broken = True
            self.journal.participant(self, participant)
            participant.send({"type": "media", "target": "subscriber", "state": "down"})
        elif event.kind == "trickle":
            participant.send(_candidate_frame("subscriber", event.data))
        elif event.kind == "event" and (event.jsep or {}).get("type") == "offer":
            self._spawn(self._janus_offer(participant, handle, event))

    async def _janus_offer(
        self, participant: Participant, handle: SubscriberHandle, event: JanusEvent
    ) -> None:
        """Janus renegotiated a subscription by itself (a mirrored feed was removed while
        someone still received it): relay its offer as if it were ours; it supersedes any
        offer still waiting for an answer."""
        subscription = participant.subscription
        async with subscription.lock:
            if subscription.handle is not handle:
                return
            try:
                offer = subscriber_offer(event.data, event.jsep)
            except (ValueError, KeyError, TypeError):
                return
            subscription.needs_sync = True  # make sure the feeds end up as wanted
            self._offer(participant, offer)

    # -- chat and the rest ------------------------------------------------------------

    def chat_for(self, participant: Participant) -> list[dict[str, Any]]:
        """The chat of the room the participant is in, with the broadcasts to every room."""
        place = self.breakouts.place(participant.id)
        return [m for m in self.chat if m.get("breakout") == place or m.get("everywhere")]

    def post_chat(self, participant: Participant, text: str, everywhere: bool = False) -> None:
        """A message to one's room, or (a moderator's broadcast) to every room."""
        self._chat_seq += 1
        message = {
            "id": f"m-{self._chat_seq}",
            "from": participant.id,
            "name": participant.name,
            "guest": participant.guest,
            "text": text,
            "ts": int(time.time() * 1000),
        }
        place = self.breakouts.place(participant.id)
        if everywhere:
            message["everywhere"] = True
        elif place is not None:
            message["breakout"] = place
        self.chat.append(message)
        self.journal.chat(self, message)
        if everywhere:
            self.broadcast({"type": "chat", "message": message})
        else:
            self.broadcast_room(participant, {"type": "chat", "message": message})


async def _destroy_quietly(node: JanusNode, janus_room: int) -> None:
    if node.control is not None:
        with contextlib.suppress(JanusError):
            await destroy_room(node.control, janus_room)


def _tracks(publication: Publication) -> int:
    return sum(len(mids) for mids in publication.mids.values()) or 1


def _capture_record(capture: CaptureSession) -> CaptureRecord:
    return CaptureRecord(
        id=capture.capture_id,
        title=capture.title,
        language=capture.language,
        started_at=capture.started_at,
        transcription=capture.transcription,
        recording=capture.recording,
    )


class _Gone(Exception):
    """The participant left while Janus was answering."""


def _candidate_frame(target: str, janus_message: dict[str, Any]) -> dict[str, Any]:
    candidate = janus_message.get("candidate")
    if not candidate or candidate.get("completed"):
        candidate = None
    return {"type": "candidate", "target": target, "candidate": candidate}
