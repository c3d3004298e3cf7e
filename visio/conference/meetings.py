"""The rooms this server process holds: their running meetings and their lobbies.

A meeting starts (a Janus room is created) when its first person joins and ends (the
room is destroyed) when its last person leaves or does not come back in time. With
several server processes, each room is held by one of them (visio.cluster); everything
here then happens in the room's owner, and is written down (the journal) so that another
process can take the room over without anyone noticing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from visio import audit, metrics
from visio.access import Identity, LobbyReason, Role, lobby_reason, role_in
from visio.captions.service import CaptionService
from visio.conference import rights
from visio.conference.journal import NO_JOURNAL, Journal
from visio.conference.lobby import Admitted, Lobby, Waiter
from visio.conference.meeting import Meeting
from visio.conference.participant import Outbox, Participant
from visio.conference.records import MeetingRecord, ParticipantRecord, WaiterRecord
from visio.config import Settings
from visio.db import RoomPolicy, Store
from visio.janus.client import JanusError
from visio.janus.nodes import JanusNode, JanusPool, NodeLoad, NoJanusNode
from visio.janus.videoroom import RoomOptions
from visio.protocol import Join, ProtocolError
from visio.transcripts.capture import nothing_captured
from visio.transcripts.service import Captures
from visio.turn import ice_servers

log = logging.getLogger(__name__)
USED_NOTED_EVERY_S = 3600.0  # a room's last use, for the purge of unused rooms (in days)
# Called once a join is known to count (its room exists, it takes no place back), with
# whether it waits in the lobby; raises ProtocolError to refuse it (visio.limits).
Admission = Callable[[bool], Awaitable[None]]
LOBBY_FULL_RETRY_S = 30.0
NODE_WAIT_S = 10.0  # a join waits this long for a media node that is (re)starting


def display_name(identity: Identity, message: Join) -> str:
    """Signed-in people are named by their identity provider; guests by what they typed."""
    return identity.name if identity.signed_in and identity.name else message.name


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


def refuse_a_signed_in_name(meeting: Meeting, message: Join) -> None:
    """A guest may not take the name of someone signed in who is in the meeting (audit M6)."""
    wanted = message.name.casefold()
    for participant in meeting.participants.values():
        if not participant.guest and participant.name.casefold() == wanted:
            raise ProtocolError(
                "name_taken",
                f"{participant.name} is signed in and in this meeting: choose another name",
                message.ref,
            )


def newest_chat(chat: Iterable[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The newest messages whose JSON fits in `budget` bytes, oldest first: a joiner gets
    the recent conversation, not megabytes of it (audit M7)."""
    kept: list[dict[str, Any]] = []
    for message in reversed(list(chat)):
        budget -= len(json.dumps(message, ensure_ascii=False).encode()) + 1
        if budget < 0:
            break
        kept.append(message)
    kept.reverse()
    return kept


class Meetings:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        pool: JanusPool,
        captures: Captures,
        captions: CaptionService,
        journal: Journal = NO_JOURNAL,
    ) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool
        self.captures = captures
        self.captions = captions
        self.journal = journal
        self.running: dict[str, Meeting] = {}
        self.lobbies: defaultdict[str, Lobby] = defaultdict(Lobby)
        self.on_idle: Callable[[str], None] = lambda room_id: None  # nothing left of a room
        # The load other server processes put on the media nodes (with several of them).
        self.other_loads: Callable[[], dict[str, NodeLoad]] = dict
        self._locks = KeyedLocks()
        self._used_noted: dict[str, float] = {}  # room -> when its use was last written
        self._background: set[asyncio.Task[None]] = set()
        pool.on_node_lost(self._node_lost)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def capture_state(self, room_id: str) -> dict[str, bool]:
        """Whether the room's meeting is being transcribed or recorded right now."""
        meeting = self.running.get(room_id)
        return meeting.capture_state() if meeting is not None else nothing_captured()

    def participant_count(self, room_id: str) -> int:
        meeting = self.running.get(room_id)
        return len(meeting.participants) if meeting else 0

    def holds(self, room_id: str) -> bool:
        """Whether anything of the room lives here: a meeting, or someone waiting."""
        return room_id in self.running or bool(self.lobbies.get(room_id))

    # -- joining ------------------------------------------------------------------------

    async def join(
        self,
        message: Join,
        outbox: Outbox,
        identity: Identity,
        *,
        on_admitted: Admitted,
        admission: Admission | None = None,
    ) -> tuple[Meeting, Participant] | Waiter:
        """Enter the meeting, take one's place back, or wait in its lobby."""
        try:
            with metrics.JOIN_SECONDS.time():
                entered = await self._join(message, outbox, identity, on_admitted, admission)
        except ProtocolError:
            metrics.JOINS.labels("refused").inc()
            raise
        if isinstance(entered, Waiter):
            metrics.JOINS.labels("lobby").inc()
        else:
            metrics.JOINS.labels("joined").inc()
        return entered

    async def _join(
        self,
        message: Join,
        outbox: Outbox,
        identity: Identity,
        on_admitted: Admitted,
        admission: Admission | None,
    ) -> tuple[Meeting, Participant] | Waiter:
        async with self._locks.hold(message.room):
            policy = await self.store.policy(message.room)
            if policy is None:
                raise ProtocolError("room_not_found", f"no room {message.room!r}", message.ref)
            meeting = self.running.get(message.room)
            if meeting is not None and not meeting.media_up:
                await self._move_locked(meeting)  # a media node of it went away
            meeting = self._usable(message.room)
            if message.resume:
                back = self._come_back(message, meeting, outbox, identity, on_admitted)
                if back is not None:
                    return back
            if meeting is not None and not identity.signed_in:
                refuse_a_signed_in_name(meeting, message)
            reason = lobby_reason(
                policy,
                identity,
                locked=meeting.locked if meeting else False,
                banned=frozenset(meeting.banned) if meeting else frozenset(),
            )
            if admission is not None:
                await admission(reason is not None)
            if reason is not None:
                return self._wait(policy, message, outbox, identity, reason, on_admitted)
            meeting = meeting or await self._start_meeting(policy)
            if (meeting.access, meeting.max_participants) != (
                policy.access,
                policy.max_participants,
            ):
                meeting.access, meeting.max_participants = policy.access, policy.max_participants
                self.journal.meeting(meeting)
            if meeting.stage.follow(policy):  # changed from the command line: from now on
                self.journal.meeting(meeting)
            participant = self._enter(meeting, message, outbox, identity, role_in(policy, identity))
            return meeting, participant

    def _come_back(
        self,
        message: Join,
        meeting: Meeting | None,
        outbox: Outbox,
        identity: Identity,
        on_admitted: Admitted,
    ) -> tuple[Meeting, Participant] | Waiter | None:
        """The place of whoever holds this resume token, in the meeting or in the lobby."""
        assert message.resume is not None
        if meeting is not None:
            participant = meeting.find_by_token(message.resume)
            if participant is not None and participant.identity == identity:
                self._resume(meeting, participant, outbox, message.resume)
                return meeting, participant
        lobby = self.lobbies.get(message.room)
        waiter = lobby.find_by_token(message.resume) if lobby else None
        if waiter is not None and waiter.identity == identity:
            self._wait_again(waiter, outbox, on_admitted, message.resume)
            return waiter
        return None

    def _usable(self, room_id: str) -> Meeting | None:
        meeting = self.running.get(room_id)
        if meeting is not None and not meeting.closed and meeting.media_up:
            return meeting
        return None

    def _enter(
        self,
        meeting: Meeting,
        message: Join,
        outbox: Outbox | None,
        identity: Identity,
        role: Role,
        waited: Waiter | None = None,
        admitted: bool = False,
    ) -> Participant:
        cap = min(self.settings.max_participants, meeting.max_participants or 10**9)
        if len(meeting.participants) >= cap:
            raise ProtocolError("room_full", f"this meeting is full ({cap} people)", message.ref)
        participant = Participant(
            name=display_name(identity, message),
            audio=message.audio,
            video=message.video,
            outbox=outbox,
            identity=identity,
            role=role,
            admitted=admitted,
        )
        if waited is not None:  # admitted from the lobby: the token they waited with goes on
            participant.resume_token = waited.resume_token
            participant.resume_digest = waited.resume_digest
        rights.on_entry(meeting, participant)
        participant.send(self._joined(meeting, participant, resumed=False))
        meeting.add(participant)
        self.show_lobby(meeting, participant)
        if outbox is None:
            self._keep_place(meeting, participant)
        return participant

    def show_lobby(self, meeting: Meeting, participant: Participant) -> None:
        """A moderator who arrives (or becomes one) sees who is already waiting."""
        lobby = self.lobbies.get(meeting.room_id)
        if participant.moderator and lobby:
            participant.send(lobby.update_frame())

    def _new_meeting(self, room_id: str, name: str, access: str) -> Meeting:
        meeting = Meeting(
            room_id,
            name,
            chat_history_max=self.settings.chat_history_max,
            room_options=RoomOptions(bitrate=self.settings.room_video_bitrate),
            on_empty=self._ended,
            place=self._place,
            journal=self.journal,
        )
        meeting.access = access
        return meeting

    async def _start_meeting(self, policy: RoomPolicy) -> Meeting:
        node = await self._pick_node()
        meeting = self._new_meeting(policy.room_id, policy.name, policy.access)
        try:
            await meeting.start(node)
        except JanusError as exc:
            raise ProtocolError("media_error", f"could not start the meeting: {exc}") from exc
        self.running[policy.room_id] = meeting
        self._mark_used(policy.room_id)
        return meeting

    def _mark_used(self, room_id: str) -> None:
        """Keeps the room from the purge of unused rooms (visio.transcripts.jobs), which
        counts in days: noted once an hour at most, off the join's path (a database write
        per meeting start would queue joins behind SQLite's lock)."""
        now = time.monotonic()
        if now - self._used_noted.get(room_id, -USED_NOTED_EVERY_S) < USED_NOTED_EVERY_S:
            return
        self._used_noted[room_id] = now
        self._spawn(self._note_used(room_id))

    async def _note_used(self, room_id: str) -> None:
        try:
            await self.store.room_used(room_id)
        except Exception:  # the database may be busy a moment: the next meeting notes it
            self._used_noted.pop(room_id, None)
            log.warning("could not note a room's use", extra={"room": room_id})

    # -- media nodes: load and placement -------------------------------------------------

    def node_loads(self) -> dict[str, NodeLoad]:
        """What each media node carries: this process's meetings, and the others' (with
        several server processes, from Redis)."""
        loads = defaultdict(NodeLoad, self.local_loads())
        for url, load in self.other_loads().items():
            loads[url] += load
        return dict(loads)

    def local_loads(self) -> dict[str, NodeLoad]:
        loads: defaultdict[str, NodeLoad] = defaultdict(NodeLoad)
        for meeting in self.running.values():
            for url, load in meeting.load().items():
                loads[url] += load
        return dict(loads)

    async def _pick_node(self) -> JanusNode:
        """The least loaded usable node, for a new meeting (waiting a little for one)."""
        try:
            return await self.pool.pick_when_up(NODE_WAIT_S, self.node_loads)
        except NoJanusNode as exc:
            raise ProtocolError("media_error", str(exc)) from exc

    async def _place(self, meeting: Meeting) -> JanusNode:
        """Where a person of this meeting goes: the meeting's first room whose node has
        room for them (it fills one node, then spreads), else the least loaded node."""
        loads = self.node_loads()
        adds = 2 * (meeting.live_feeds() + 1)  # the streams one more person costs a node
        capacity = self.settings.janus_node_streams
        for room in meeting.rooms.values():
            if room.up and not room.node.draining:
                if loads.get(room.url, NodeLoad()).streams + adds <= capacity:
                    return room.node
        spread = [n for n in self.pool.usable() if n.url not in meeting.rooms]
        if spread:
            return self.pool.least_loaded(spread, loads)
        return await self._pick_node()

    def _joined(self, meeting: Meeting, participant: Participant, resumed: bool) -> dict[str, Any]:
        seen = meeting.chat_for(participant)  # the chat of their (breakout) room
        chat = newest_chat(seen, self.settings.chat_history_bytes)
        if participant.admitted:  # let in from the lobby: what was said before is not theirs
            chat = [m for m in chat if m["ts"] >= participant.joined_at]
        return {
            "type": "joined",
            "room": meeting.room_info(),
            "you": participant.public(),
            "participants": meeting.others(participant),
            "chat": chat,
            "chat_earlier": len(seen) - len(chat),
            "resume": participant.resume_token,
            "resumed": resumed,
            "published": [t for t, p in participant.publications.items() if p.live],
            "iceServers": ice_servers(self.settings, participant.id),
            "breakout": meeting.breakouts.state() if meeting.breakouts.open else None,
        }

    # -- the lobby ----------------------------------------------------------------------

    def _wait(
        self,
        policy: RoomPolicy,
        message: Join,
        outbox: Outbox,
        identity: Identity,
        reason: LobbyReason,
        on_admitted: Admitted,
    ) -> Waiter:
        if len(self.lobbies[policy.room_id]) >= self.settings.lobby_max_waiting:
            raise ProtocolError(
                "lobby_full",
                "too many people are waiting to enter this meeting; try again later",
                message.ref,
                retry_in=LOBBY_FULL_RETRY_S,
            )
        waiter = Waiter(
            room_id=policy.room_id,
            name=display_name(identity, message),
            identity=identity,
            request=message,
            reason=reason,
            outbox=outbox,
            on_admitted=on_admitted,
        )
        self._start_expiry(waiter, self.settings.lobby_timeout_s)
        self.lobbies[policy.room_id].add(waiter)
        self.journal.waiter(waiter)
        self._tell_waiting(waiter, policy.name)
        self._lobby_changed(policy.room_id)
        log.info("waiting in the lobby", extra={"room": policy.room_id, "reason": reason})
        return waiter

    def _start_expiry(self, waiter: Waiter, after_s: float) -> None:
        loop = asyncio.get_running_loop()
        waiter.expires_at = loop.time() + after_s
        waiter.timer = loop.call_later(after_s, self._expire_waiter, waiter)

    def _tell_waiting(self, waiter: Waiter, room_name: str) -> None:
        if waiter.outbox is None:
            return
        remaining = waiter.expires_at - asyncio.get_running_loop().time()
        waiter.outbox.send(
            {
                "type": "lobby",
                "room": {
                    "id": waiter.room_id,
                    "name": room_name,
                    "capture": self.capture_state(waiter.room_id),
                },
                "reason": waiter.reason,
                "expires_in": max(0, round(remaining)),
                "resume": waiter.resume_token,
            }
        )

    def _wait_again(
        self, waiter: Waiter, outbox: Outbox, on_admitted: Admitted, token: str
    ) -> None:
        """A waiter whose connection dropped is back in time: same place in the queue."""
        if waiter.outbox is not None and waiter.outbox is not outbox:
            waiter.outbox.send(_replaced())
            waiter.outbox.close(4001, "replaced")
        waiter.outbox, waiter.on_admitted, waiter.resume_token = outbox, on_admitted, token
        meeting = self.running.get(waiter.room_id)
        self._tell_waiting(waiter, meeting.name if meeting else waiter.request.room)
        log.info("back in the lobby", extra={"room": waiter.room_id})

    def _lobby_changed(self, room_id: str) -> None:
        lobby = self.lobbies.get(room_id)
        if lobby is not None and not lobby:
            del self.lobbies[room_id]
        meeting = self.running.get(room_id)
        if meeting is None:
            self._maybe_idle(room_id)
            return
        frame = (lobby or Lobby()).update_frame()
        for moderator in meeting.moderators():
            moderator.send(frame)

    def _maybe_idle(self, room_id: str) -> None:
        if not self.holds(room_id):
            self.journal.forget(room_id)
            self.on_idle(room_id)

    def _expire_waiter(self, waiter: Waiter) -> None:
        if not self._take_waiter(waiter):
            return
        waiter.dismiss(
            {"type": "error", "code": "lobby_expired", "message": "nobody let you in in time"},
            4008,
            "lobby expired",
        )
        self._lobby_changed(waiter.room_id)

    def leave_lobby(self, waiter: Waiter) -> None:
        """They gave up waiting."""
        if self._take_waiter(waiter):
            self._lobby_changed(waiter.room_id)

    def lobby_connection_lost(self, waiter: Waiter, outbox: Outbox) -> None:
        """Their connection dropped: their place is kept for the reconnection grace."""
        if waiter.outbox is not outbox:
            return  # already back on a newer connection
        waiter.outbox, waiter.on_admitted = None, None
        grace = self.settings.reconnect_grace_s
        if grace <= 0:
            self.leave_lobby(waiter)
            return
        waiter.grace_timer = asyncio.get_running_loop().call_later(grace, self._waiter_gone, waiter)

    def _waiter_gone(self, waiter: Waiter) -> None:
        waiter.grace_timer = None
        if waiter.outbox is None:
            self.leave_lobby(waiter)

    def _take_waiter(self, waiter: Waiter) -> bool:
        lobby = self.lobbies.get(waiter.room_id)
        if lobby is None or lobby.take(waiter.id) is None:
            return False
        self.journal.waiter_gone(waiter)
        return True

    def admit(
        self, meeting: Meeting, waiter_id: str | None, by_moderator: bool = True
    ) -> list[Waiter]:
        """Let one waiter (or all, with None) into the running meeting: by a moderator's
        decision, or (by_moderator False) because the room now lets them in by right.
        Returns those let in."""
        admitted = []
        for waiter in self._take_waiters(meeting.room_id, waiter_id):
            try:
                participant = self._enter(
                    meeting,
                    waiter.request,
                    waiter.outbox,
                    waiter.identity,
                    "participant",
                    waited=waiter,
                    admitted=by_moderator,
                )
            except ProtocolError as error:
                waiter.dismiss(error.frame(), 4009, error.code)
                continue
            admitted.append(waiter)
            if waiter.on_admitted is not None:
                waiter.on_admitted(meeting, participant)
        self._lobby_changed(meeting.room_id)
        return admitted

    def deny(self, meeting: Meeting, waiter_id: str | None) -> list[Waiter]:
        denied = self._take_waiters(meeting.room_id, waiter_id)
        for waiter in denied:
            waiter.dismiss(
                {"type": "error", "code": "denied", "message": "a moderator refused you entry"},
                4003,
                "denied",
            )
        self._lobby_changed(meeting.room_id)
        return denied

    def _take_waiters(self, room_id: str, waiter_id: str | None) -> list[Waiter]:
        lobby = self.lobbies.get(room_id)
        if waiter_id is None:
            waiters = lobby.take_all() if lobby else []
        else:
            waiter = lobby.take(waiter_id) if lobby else None
            if waiter is None:
                raise ProtocolError("not_found", f"nobody waits with id {waiter_id!r}")
            waiters = [waiter]
        for waiter in waiters:
            self.journal.waiter_gone(waiter)
        return waiters

    # -- room settings and ending --------------------------------------------------------

    async def policy_changed(self, room_id: str) -> None:
        """The room's access, name or members changed: apply it to the running meeting."""
        async with self._locks.hold(room_id):
            policy = await self.store.policy(room_id)
            meeting = self._usable(room_id)
            if policy is None or meeting is None:
                return
            meeting.name, meeting.access = policy.name, policy.access
            meeting.max_participants = policy.max_participants
            self.journal.meeting(meeting)
            await rights.follow_policy(meeting, policy)
            meeting.broadcast({"type": "room", "room": meeting.room_info()})
            for participant in list(meeting.participants.values()):
                role = rights.role_kept(participant, role_in(policy, participant.identity))
                if role != participant.role:
                    participant.role = role
                    participant.send(
                        {"type": "participant_updated", "participant": participant.public()}
                    )
                    meeting.updated(participant)
                    self.show_lobby(meeting, participant)
            await self._move_out_who_may_no_longer_enter(meeting, policy)
            self._admit_who_may_now_enter(meeting, policy)

    async def _move_out_who_may_no_longer_enter(self, meeting: Meeting, policy: RoomPolicy) -> None:
        """Access revoked (a stricter level, a member or admin removed): those who were in
        by right and would now wait leave, told `access_revoked`; coming back, they wait
        in the lobby. A lock does not move anyone out, nor does it touch those a
        moderator let in."""
        banned = frozenset(meeting.banned)
        for participant in list(meeting.participants.values()):
            if participant.admitted:
                continue
            reason = lobby_reason(policy, participant.identity, locked=False, banned=banned)
            if reason is None:
                continue
            participant.send(
                {
                    "type": "error",
                    "code": "access_revoked",
                    "message": "you may no longer enter this room; ask to be let in",
                    "reason": reason,
                }
            )
            if participant.outbox is not None:
                participant.outbox.close(4003, "access revoked")
            await meeting.remove(participant, "access_revoked")

    def _admit_who_may_now_enter(self, meeting: Meeting, policy: RoomPolicy) -> None:
        lobby = self.lobbies.get(meeting.room_id)
        for waiter in list(lobby.waiting.values()) if lobby else []:
            reason = lobby_reason(
                policy, waiter.identity, locked=meeting.locked, banned=frozenset(meeting.banned)
            )
            if reason is None:
                for admitted in self.admit(meeting, waiter.id, by_moderator=False):
                    target = audit.waiting(admitted.identity, admitted.id)
                    audit.record(
                        "lobby_admitted", None, room=meeting.room_id, target=target, reason="rules"
                    )

    async def set_locked(self, meeting: Meeting, locked: bool) -> None:
        """Lock or unlock; unlocking lets in those who only waited because of the lock."""
        if meeting.locked == locked:
            return
        meeting.locked = locked
        self.journal.meeting(meeting)
        if locked:
            meeting.broadcast({"type": "room", "room": meeting.room_info()})
        else:
            await self.policy_changed(meeting.room_id)  # tells everyone, admits who may enter

    async def end(self, room_id: str, by: Participant | None) -> None:
        """End the meeting for everyone in it and everyone waiting to enter."""
        frame = {"type": "ended", "by": {"id": by.id, "name": by.name} if by else None}
        lobby = self.lobbies.pop(room_id, None)
        for waiter in lobby.take_all() if lobby else []:
            waiter.dismiss(frame, 1000, "meeting ended")
        meeting = self.running.pop(room_id, None)
        if meeting is not None:
            for participant in meeting.participants.values():
                participant.send(frame)
                if participant.outbox is not None:
                    participant.outbox.close(1000, "meeting ended")
            log.info("meeting ended by a moderator", extra={"room": room_id})
            await self._close(meeting)
        self._maybe_idle(room_id)

    async def _close(self, meeting: Meeting) -> None:
        """Free the meeting's media, then queue what it captured (its files are complete)."""
        self.journal.ended(meeting.room_id)
        await self.captions.meeting_closed(meeting)
        await meeting.close()
        await self.captures.meeting_ended(meeting)
        self._mark_used(meeting.room_id)

    # -- losing and resuming connections -------------------------------------------------

    def _resume(
        self, meeting: Meeting, participant: Participant, outbox: Outbox, token: str
    ) -> None:
        if participant.grace_timer is not None:
            participant.grace_timer.cancel()
            participant.grace_timer = None
        old = participant.outbox
        if old is not None and old is not outbox:
            old.send(_replaced())
            old.close(4001, "replaced")
        was_reconnecting = old is None
        participant.outbox = outbox
        participant.resume_token = token
        metrics.RECONNECTS.inc()
        fresh_media, participant.media_reset = participant.media_reset, False
        participant.send(self._joined(meeting, participant, resumed=not fresh_media))
        pending = participant.subscription.pending_frame
        if pending is not None and not fresh_media:
            participant.send(pending)  # the client may never have seen it
        self.show_lobby(meeting, participant)
        if was_reconnecting:
            meeting.updated(participant)
        log.info(
            "participant resumed", extra={"room": meeting.room_id, "participant": participant.id}
        )

    def connection_lost(self, meeting: Meeting, participant: Participant, outbox: Outbox) -> None:
        """Keep the participant's place for the grace period; then they leave."""
        if (
            meeting.closed
            or participant.outbox is not outbox
            or participant.id not in meeting.participants
        ):
            return  # handed over, replaced by a newer connection, or gone
        participant.outbox = None
        if self.settings.reconnect_grace_s <= 0:
            self._spawn(meeting.remove(participant, "timeout"))
            return
        meeting.updated(participant)
        self._keep_place(meeting, participant)

    def _keep_place(self, meeting: Meeting, participant: Participant) -> None:
        loop = asyncio.get_running_loop()
        participant.grace_timer = loop.call_later(
            max(0.0, self.settings.reconnect_grace_s),
            lambda: self._spawn(self._expire(meeting, participant)),
        )

    async def _expire(self, meeting: Meeting, participant: Participant) -> None:
        participant.grace_timer = None
        if participant.outbox is None:
            await meeting.remove(participant, "timeout")

    # -- the media server ------------------------------------------------------------------

    def _node_lost(self, node: JanusNode) -> None:
        """Janus went away with the meetings' media: each goes on, on a live node."""
        self.move_off(node)

    def move_off(self, node: JanusNode) -> None:
        """Move every meeting's people off this node (lost, or drained by an operator)."""
        for meeting in [m for m in self.running.values() if node in m.nodes()]:
            self._spawn(self._move(meeting))

    async def _move(self, meeting: Meeting) -> None:
        async with self._locks.hold(meeting.room_id):
            if self.running.get(meeting.room_id) is meeting:
                await self._move_locked(meeting)

    async def _move_locked(self, meeting: Meeting) -> None:
        """Its rooms on nodes that are down (or draining) go; the people there start their
        media anew in another room, on another node."""
        gone = {url for url, room in meeting.rooms.items() if not room.up or room.node.draining}
        moved = await meeting.drop_rooms(gone)
        try:
            if not meeting.rooms:
                await meeting.start(await self._pick_node())
        except (ProtocolError, JanusError) as exc:
            log.error("meeting lost its media", extra={"room": meeting.room_id, "error": str(exc)})
            self._drop_everyone(meeting)
            return
        for participant in moved:
            if participant.connected:
                participant.media_reset = False
                participant.send(self._joined(meeting, participant, resumed=False))
        metrics.MEETINGS_MOVED.inc()
        log.info("meeting moved", extra={"room": meeting.room_id, "people": len(moved)})

    def _drop_everyone(self, meeting: Meeting) -> None:
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
        self._spawn(self._close(meeting))

    async def _ended(self, meeting: Meeting) -> None:
        if self.running.get(meeting.room_id) is meeting:
            del self.running[meeting.room_id]
        await self._close(meeting)
        self._maybe_idle(meeting.room_id)

    # -- taking rooms over, handing them over ----------------------------------------------

    async def take_over(
        self,
        room_id: str,
        meeting: MeetingRecord | None,
        participants: list[ParticipantRecord],
        chat: list[dict[str, Any]],
        waiters: list[WaiterRecord],
    ) -> None:
        """Hold a room another process held: its meeting, chat and lobby go on here.

        Everyone's connection went with the old owner; each has `reconnect_grace_s` to
        come back (with their resume token) before they are taken for gone.
        """
        async with self._locks.hold(room_id):
            if self.holds(room_id):
                return
            for data in waiters:
                self._restore_waiter(data)
            if meeting is not None:
                await self._restore_meeting(meeting, participants, chat)
            self._lobby_changed(room_id)

    def _restore_waiter(self, data: WaiterRecord) -> None:
        waiter = Waiter.restore(data)
        self._start_expiry(waiter, self.settings.lobby_timeout_s)
        self.lobbies[waiter.room_id].add(waiter)
        waiter.grace_timer = asyncio.get_running_loop().call_later(
            max(0.0, self.settings.reconnect_grace_s), self._waiter_gone, waiter
        )

    async def _restore_meeting(
        self,
        record: MeetingRecord,
        participants: list[ParticipantRecord],
        chat: list[dict[str, Any]],
    ) -> None:
        meeting = self._new_meeting(record.room, record.name, record.access)
        meeting.max_participants = record.max_participants
        self.captures.restore(meeting, record.capture)
        nodes = {node.url: node for node in self.pool.nodes}
        media_kept = await meeting.take_over(record, participants, chat, nodes)
        try:
            if not meeting.rooms:
                await meeting.start(await self._pick_node())
        except JanusError as exc:
            raise ProtocolError("media_error", f"could not restore the meeting: {exc}") from exc
        self.running[record.room] = meeting
        if media_kept:
            await self.captions.meeting_taken_over(meeting)
        for participant in list(meeting.participants.values()):
            self._keep_place(meeting, participant)
            self.journal.participant(meeting, participant)
        self.journal.meeting(meeting)

    def rewrite(self, room_id: str) -> None:
        """Write down all of the room again (Redis lost what it had)."""
        meeting = self.running.get(room_id)
        if meeting is not None:
            self.journal.meeting(meeting)
            for participant in meeting.participants.values():
                self.journal.participant(meeting, participant)
            self.journal.whole_chat(meeting)
        lobby = self.lobbies.get(room_id)
        for waiter in lobby.waiting.values() if lobby else []:
            self.journal.waiter(waiter)

    async def hand_over(self, room_id: str) -> list[Outbox]:
        """Forget the room here, leaving its media on Janus for the next owner; the
        connections of its people, to close so that they reconnect there."""
        async with self._locks.hold(room_id):
            outboxes: list[Outbox] = []
            lobby = self.lobbies.pop(room_id, None)
            outboxes += [w.outbox for w in (lobby.take_all() if lobby else []) if w.outbox]
            meeting = self.running.pop(room_id, None)
            if meeting is not None:
                await self.captions.meeting_closed(meeting)  # its audio comes here
                meeting.release()
                outboxes += [p.outbox for p in meeting.participants.values() if p.outbox]
            return outboxes

    async def close(self) -> None:
        shutdown = {"type": "error", "code": "server_shutdown", "message": "the server is stopping"}
        for lobby in self.lobbies.values():
            for waiter in lobby.take_all():
                waiter.dismiss(shutdown, 1012, "server shutdown")
        self.lobbies.clear()
        for meeting in list(self.running.values()):
            meeting.broadcast(shutdown)
            for participant in meeting.participants.values():
                if participant.outbox is not None:
                    participant.outbox.close(1012, "server shutdown")
            await self._close(meeting)
        self.running.clear()


def _replaced() -> dict[str, Any]:
    return {
        "type": "error",
        "code": "replaced",
        "message": "this participant continued on another connection",
    }
