"""A running meeting: its people, its chat and its Janus room.

The meeting owns one Janus session on its node. Each participant publishes through
publisher handles and receives everybody else through one subscriber handle whose
subscriptions the meeting keeps in step with who publishes (the server makes the offers;
one renegotiation at a time per participant).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from visio.conference.journal import NO_JOURNAL, Journal
from visio.conference.participant import Participant, Publication, Subscription
from visio.conference.records import CaptureRecord, MeetingRecord, ParticipantRecord
from visio.janus.client import JanusError, JanusEvent, JanusSession
from visio.janus.nodes import JanusNode
from visio.janus.videoroom import (
    PublisherHandle,
    RoomOptions,
    SubscriberHandle,
    SubscriberOffer,
    create_room,
    destroy_room,
    media_mids,
    moderate,
)
from visio.protocol import ProtocolError
from visio.transcripts.capture import CaptureSession, nothing_captured

log = logging.getLogger(__name__)
RESYNC_DELAY_S = 0.5
MAX_SYNC_FAILURES = 5


def _janus_room_id() -> int:
    return secrets.randbits(52) or 1


class Meeting:
    def __init__(
        self,
        room_id: str,
        name: str,
        node: JanusNode,
        *,
        chat_history_max: int,
        room_options: RoomOptions,
        on_empty: Callable[[Meeting], Coroutine[Any, Any, None]],
        journal: Journal = NO_JOURNAL,
    ) -> None:
        self.room_id = room_id
        self.name = name
        self.access = "public"
        self.locked = False
        self.banned: set[str] = set()  # identity keys of people removed by a moderator
        self.node = node
        self.janus_room = _janus_room_id()
        self.room_options = room_options
        self.participants: dict[str, Participant] = {}
        self.chat: deque[dict[str, Any]] = deque(maxlen=chat_history_max)
        self._chat_seq = 0
        self._feeds: dict[int, tuple[Participant, Publication]] = {}
        self._session: JanusSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_empty = on_empty
        self.journal = journal
        self.closed = False
        self.capture: CaptureSession | None = None  # set once someone starts a capture

    # -- life cycle ---------------------------------------------------------------

    @property
    def session_id(self) -> int:
        return self._session.id if self._session is not None else 0

    @property
    def chat_seq(self) -> int:
        return self._chat_seq

    async def start(self) -> None:
        assert self.node.connection is not None and self.node.control is not None
        session = await self.node.connection.create_session()
        try:
            await create_room(
                self.node.control, self.janus_room, self.node.admin_key, self.room_options
            )
        except JanusError:
            await session.destroy()  # or its keepalive would keep it forever
            raise
        self._session = session
        self.node.meetings += 1
        self.journal.meeting(self)
        log.info("meeting started", extra={"room": self.room_id, "janus_room": self.janus_room})

    def record(self) -> MeetingRecord:
        return MeetingRecord(
            room=self.room_id,
            name=self.name,
            access=self.access,
            locked=self.locked,
            banned=sorted(self.banned),
            node=self.node.url,
            janus_room=self.janus_room,
            session=self.session_id,
            chat_seq=self._chat_seq,
            capture=_capture_record(self.capture) if self.capture is not None else None,
        )

    async def take_over(
        self,
        record: MeetingRecord,
        participants: list[ParticipantRecord],
        chat: list[dict[str, Any]],
    ) -> bool:
        """Go on with a meeting another process ran, everyone in it waiting to reconnect.

        Its Janus session is claimed, not re-created, so every peer connection stays up:
        True. When the session is gone (Janus restarted, or nobody claimed it in time), a
        new Janus room is made and everyone publishes and subscribes anew (`media_reset`,
        told by their next `joined`): False.
        """
        session = await self._claim(record)
        self.locked, self.banned = record.locked, set(record.banned)
        self._chat_seq = record.chat_seq
        self.chat.extend(chat)
        if session is not None:
            self.janus_room, self._session = record.janus_room, session
            self.node.meetings += 1
        for data in participants:
            self._restore(data, session)
        if session is None:
            await self.start()
        log.info(
            "meeting taken over",
            extra={
                "room": self.room_id,
                "participants": len(self.participants),
                "media_kept": session is not None,
            },
        )
        return session is not None

    async def _claim(self, record: MeetingRecord) -> JanusSession | None:
        if not self.node.up or self.node.url != record.node:
            return None
        assert self.node.connection is not None and self.node.control is not None
        try:
            return await self.node.connection.claim_session(record.session)
        except JanusError as exc:
            log.warning(
                "janus session not claimed", extra={"room": self.room_id, "error": str(exc)}
            )
        with contextlib.suppress(JanusError):
            await destroy_room(self.node.control, record.janus_room)  # nothing left behind
        return None

    def _restore(self, data: ParticipantRecord, session: JanusSession | None) -> None:
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
            media_reset=session is None,
        )
        if session is not None:
            self._restore_media(participant, data, session)
        self.participants[participant.id] = participant
        self.node.participants += 1

    def _restore_media(
        self, participant: Participant, data: ParticipantRecord, session: JanusSession
    ) -> None:
        for target, pub in data.publications.items():
            handle = PublisherHandle(session.adopt(pub.handle), pub.feed)
            publication = Publication(target, handle, live=pub.live, mids=pub.mids)
            handle.handle.on_event = self._publisher_events(participant, publication)
            participant.publications[target] = publication
            self._feeds[pub.feed] = (participant, publication)
        sub = data.subscription
        if sub.handle is not None:
            handle = SubscriberHandle(session.adopt(sub.handle))
            handle.joined = True
            handle.handle.on_event = self._subscriber_events(participant, handle)
            subscription = participant.subscription
            subscription.handle, subscription.feeds = handle, set(sub.feeds)
            subscription.pending_frame, subscription.broken = sub.pending, sub.broken

    async def restart_media(self) -> None:
        """The media server lost the meeting: a new Janus room (on `self.node`), and
        everyone publishes and subscribes anew (`media_reset`: their next `joined`)."""
        for participant in self.participants.values():
            self._forget(participant, keep_grace=True)
            participant.media_reset = True
            participant.subscription = Subscription()
        await self._settle()
        self._session = None
        self.janus_room = _janus_room_id()
        await self.start()
        self.node.participants += len(self.participants)
        for participant in self.participants.values():
            self.journal.participant(self, participant)

    def release(self) -> None:
        """Hand the meeting to another process: forget it here, leave everything on Janus."""
        self.closed = True
        for participant in self.participants.values():
            if participant.grace_timer is not None:
                participant.grace_timer.cancel()
        for task in self._tasks:
            task.cancel()
        if self._session is not None:
            self._session.release()
        self.node.meetings = max(0, self.node.meetings - 1)
        self.node.participants = max(0, self.node.participants - len(self.participants))

    async def close(self) -> None:
        """Free everything on Janus: the room, then the session with all its handles."""
        if self.closed:
            return
        self.closed = True
        for participant in list(self.participants.values()):
            self._forget(participant)
        self.participants.clear()
        await self._settle()
        if self.node.up and self.node.control is not None:
            with contextlib.suppress(JanusError):
                await destroy_room(self.node.control, self.janus_room)
        if self._session is not None:
            await self._session.destroy()
        self.node.meetings = max(0, self.node.meetings - 1)
        log.info("meeting ended", extra={"room": self.room_id, "janus_room": self.janus_room})

    async def _settle(self, timeout: float = 5.0) -> None:
        """Let background requests (handle detaches above all) finish before the room goes.

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

    # -- people -------------------------------------------------------------------

    def broadcast(self, frame: dict[str, Any], exclude: Participant | None = None) -> None:
        for participant in self.participants.values():
            if participant is not exclude:
                participant.send(frame)

    def room_info(self) -> dict[str, Any]:
        return {
            "id": self.room_id,
            "name": self.name,
            "access": self.access,
            "locked": self.locked,
            "capture": self.capture_state(),
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
        self.node.participants += 1
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
        if self.participants.pop(participant.id, None) is None:
            return
        self.node.participants = max(0, self.node.participants - 1)
        self._forget(participant)
        self.journal.left(self, participant)
        self.broadcast({"type": "participant_left", "id": participant.id, "reason": reason})
        log.info(
            "participant left",
            extra={"room": self.room_id, "participant": participant.id, "reason": reason},
        )
        self._resync_everyone()
        if not self.participants:
            await self._on_empty(self)

    def _forget(self, participant: Participant, keep_grace: bool = False) -> None:
        """Drop a participant's Janus handles (in the background) and its feeds."""
        if participant.grace_timer is not None and not keep_grace:
            participant.grace_timer.cancel()
            participant.grace_timer = None
        for publication in participant.publications.values():
            self._feeds.pop(publication.feed_id, None)
            self._spawn(publication.handle.close())
        participant.publications.clear()
        subscription = participant.subscription
        if subscription.handle is not None:
            self._spawn(subscription.handle.close())
            subscription.handle = None

    # -- publishing -----------------------------------------------------------------

    async def publish(self, participant: Participant, target: str, sdp: str) -> str:
        """Publish a target; an existing publication of it is replaced once Janus accepts."""
        session = self._require_session()
        feed_id = secrets.randbits(52) or 1
        handle = await PublisherHandle.attach(session, feed_id, None)
        publication = Publication(target, handle, mids=media_mids(sdp))
        handle.handle.on_event = self._publisher_events(participant, publication)
        try:
            answer = await handle.publish(self.janus_room, participant.id, sdp)
        except (JanusError, ValueError) as exc:
            await handle.close()
            raise ProtocolError("bad_sdp", f"media server refused the offer: {exc}") from exc
        if self.participants.get(participant.id) is not participant:
            await handle.close()  # they left or were removed while Janus answered
            raise ProtocolError("not_joined", "you are no longer in this meeting")
        previous = participant.publications.get(target)
        participant.publications[target] = publication
        if target == "camera":
            participant.silenced.clear()  # a new feed: a moderator's mute was on the old one
        self._feeds[feed_id] = (participant, publication)
        if self.capture is not None and self.capture.active:
            self._spawn(self._record(participant, publication, on=True))
        if previous is not None:
            self._feeds.pop(previous.feed_id, None)
            self._spawn(previous.handle.close())
            self._resync_everyone(exclude=participant)
        elif target == "screen":
            self.updated(participant)
        self.journal.participant(self, participant)
        return answer

    async def unpublish(self, participant: Participant, target: str) -> None:
        publication = participant.publications.pop(target, None)
        if publication is None:
            raise ProtocolError("not_published", f"{target} is not published")
        self._feeds.pop(publication.feed_id, None)
        self.journal.participant(self, participant)
        await publication.handle.close()
        if target == "screen":
            self.updated(participant)
        self._resync_everyone()

    async def record_everyone(self, on: bool) -> None:
        """Start (or stop) Janus recording every current publication of the meeting."""
        for participant in list(self.participants.values()):
            for publication in list(participant.publications.values()):
                await self._record(participant, publication, on)

    async def _record(self, participant: Participant, publication: Publication, on: bool) -> None:
        base = None
        if on and self.capture is not None:
            base = self.capture.new_track(
                participant.id, participant.name, publication.target, publication.feed_id
            )
        try:
            await publication.handle.record(base)
        except JanusError as exc:
            log.warning("janus record failed", extra={"room": self.room_id, "error": str(exc)})

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
        if publication is None or self.node.control is None:
            return
        for mid in publication.mids.get(media, []):
            try:
                await moderate(self.node.control, self.janus_room, publication.feed_id, mid, mute)
            except JanusError as exc:
                log.warning("janus moderate failed", extra={"error": str(exc)})

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
        if not self.node.up:
            return  # Janus is gone: the whole meeting is being dropped
        if event.kind == "webrtcup":
            publication.live = True
            self.journal.participant(self, participant)
            participant.send({"type": "media", "target": publication.target, "state": "up"})
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
                self.broadcast(
                    {"type": "speaking", "id": participant.id, "speaking": talking == "talking"}
                )

    # -- subscribing ----------------------------------------------------------------

    def _resync_everyone(self, exclude: Participant | None = None) -> None:
        for participant in list(self.participants.values()):
            if participant is not exclude:
                self._spawn(self.sync_subscription(participant))

    def _wanted_feeds(self, participant: Participant) -> set[int]:
        return {
            feed_id
            for feed_id, (owner, publication) in self._feeds.items()
            if owner is not participant and publication.live
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
            wanted = self._wanted_feeds(participant)
            try:
                offer = await self._negotiate(participant, wanted)
            except _Gone:
                return
            except (JanusError, ValueError) as exc:
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
        handle = await SubscriberHandle.attach(self._require_session(), None)
        handle.handle.on_event = self._subscriber_events(participant, handle)
        try:
            offer = await handle.join(self.janus_room, sorted(wanted))
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
        if subscription.handle is not handle or not self.node.up:
            return
        if event.kind == "webrtcup":
            participant.send({"type": "media", "target": "subscriber", "state": "up"})
        elif event.kind == "hangup":
            subscription.broken = True
            self.journal.participant(self, participant)
            participant.send({"type": "media", "target": "subscriber", "state": "down"})
        elif event.kind == "trickle":
            participant.send(_candidate_frame("subscriber", event.data))

    # -- chat and the rest ------------------------------------------------------------

    def post_chat(self, participant: Participant, text: str) -> None:
        self._chat_seq += 1
        message = {
            "id": f"m-{self._chat_seq}",
            "from": participant.id,
            "name": participant.name,
            "text": text,
            "ts": int(time.time() * 1000),
        }
        self.chat.append(message)
        self.journal.chat(self, message)
        self.broadcast({"type": "chat", "message": message})

    def _require_session(self) -> JanusSession:
        if self._session is None or not self.node.up:
            raise ProtocolError("media_error", "the media server is not available")
        return self._session


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
