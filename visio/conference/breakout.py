"""Breakout rooms: a meeting split into smaller rooms for a while, then brought back.

A breakout room is a part of its meeting that sees, hears and reads only itself. Nobody
republishes to move: people keep their feeds (and their Janus handles) where they are
placed, and what changes is which feeds the server subscribes each of them to
(`Meeting._wanted_feeds` asks `together`), so a move costs one renegotiation of the
subscriber connection. Chat, reactions, speaking and captions follow the same rule, a
moderator's broadcast reaches every room, and a capture records the main room only.
Everything runs in the room's owner and is written down with the meeting
(`BreakoutRecord`), so a takeover keeps the rooms, who is where, and the timer.
docs/ARCHITECTURE.md ("Breakout rooms") gives the rules; docs/PROTOCOL.md the frames.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from visio import audit
from visio import protocol as p
from visio.conference.records import BreakoutRecord

if TYPE_CHECKING:
    from visio.conference.meeting import Meeting
    from visio.conference.participant import Participant

log = logging.getLogger(__name__)
WARNING_S = 60  # everyone is warned this long before the timer calls them back
MOVED_CHAT = 50  # the newest messages of the room one arrives in


def _now_ms() -> int:
    return int(time.time() * 1000)


class Breakouts:
    """The breakout rooms of one meeting: their names, who is where, the timer."""

    def __init__(self, meeting: Meeting) -> None:
        self.meeting = meeting
        self.names: list[str] = []  # room n is names[n - 1]; none: no rooms open
        self.where: dict[str, int] = {}  # participant id -> room; absent: the main room
        self.choose = False  # people may pick their room themselves
        self.ends_at: int | None = None  # epoch ms when everyone is called back
        self.opening = 0
        self._timers: list[asyncio.TimerHandle] = []

    @property
    def open(self) -> bool:
        return bool(self.names)

    def room_of(self, participant_id: str) -> int | None:
        return self.where.get(participant_id)

    def together(self, a: str, b: str) -> bool:
        return self.where.get(a) == self.where.get(b)

    def place(self, participant_id: str) -> str | None:
        """Where someone speaks, for chat and captions: None in the main room, else the
        room of this opening (an earlier opening's room 1 is another conversation)."""
        room = self.where.get(participant_id)
        return None if room is None else f"{self.opening}.{room}"

    def state(self) -> dict[str, Any]:
        return {
            "type": "breakout",
            "open": self.open,
            "rooms": [{"room": n, "name": name} for n, name in enumerate(self.names, 1)],
            "where": dict(self.where),
            "choose": self.choose,
            "ends_at": self.ends_at,
        }

    def record(self) -> BreakoutRecord | None:
        if not self.opening:  # (closed rooms are kept for their count: chat stays apart)
            return None
        return BreakoutRecord(
            opening=self.opening,
            names=self.names,
            where=self.where,
            choose=self.choose,
            ends_at=self.ends_at,
        )

    def restore(self, record: BreakoutRecord | None) -> None:
        """Go on with the rooms another process ran, timer included."""
        if record is None:
            return
        self.opening, self.names = record.opening, list(record.names)
        self.where = {pid: room for pid, room in record.where.items() if room <= len(self.names)}
        self.choose, self.ends_at = record.choose, record.ends_at
        if self.ends_at is not None and self.open:
            self._arm((self.ends_at - _now_ms()) / 1000)

    def forget(self, participant_id: str) -> None:
        self.where.pop(participant_id, None)

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # -- what moderators (and choosers) do ------------------------------------------------

    def open_rooms(self, message: p.BreakoutOpen, by: Participant) -> None:
        if self.open:
            raise p.ProtocolError("breakout_open", "breakout rooms are open already: close them")
        people = self.meeting.participants
        unknown = sorted(set(message.assignments) - set(people))
        if unknown:
            raise p.ProtocolError("not_found", f"no participant {unknown[0]!r} in this meeting")
        self.opening += 1
        self.names = list(message.names) or [f"{n}" for n in range(1, message.count + 1)]
        self.choose = message.assign == "choose"
        moves: dict[str, int | None] = dict(message.assignments)
        if message.assign == "random":
            moves.update(_shuffled(people, message.count))
        self.stop()
        self.ends_at = None
        if message.duration_s is not None:
            self.ends_at = _now_ms() + message.duration_s * 1000
            self._arm(message.duration_s)
        log.info(
            "breakout rooms opened",
            extra={"room": self.meeting.room_id, "rooms": message.count, "assign": message.assign},
        )
        self.meeting.journal.meeting(self.meeting)
        self.move(moves, by)

    def move(self, moves: dict[str, int | None], by: Participant | None) -> None:
        """Put people in rooms (None: the main room); everyone sees the new state, and
        each one moved is told (with the chat of the room they arrive in)."""
        meeting = self.meeting
        moved: list[tuple[Participant, int | None]] = []  # with where they were
        for participant_id, room in moves.items():
            participant = meeting.participants.get(participant_id)
            before = self.where.get(participant_id)
            if participant is None or before == room:
                continue
            if room is None:
                del self.where[participant_id]
            else:
                self.where[participant_id] = room
            moved.append((participant, before))
        meeting.broadcast(self.state())
        # Each `moved` frame is made when it is sent (after the old connection is gone), so
        # that its chat has what the room said meanwhile, which the mover already receives.
        meeting.regrouped(
            [(p, before, functools.partial(self._moved_frame, p, by)) for p, before in moved]
        )

    def _moved_frame(self, participant: Participant, by: Participant | None) -> dict[str, Any]:
        room = self.where.get(participant.id)
        return {
            "type": "moved",
            "room": room,
            "name": self.names[room - 1] if room is not None else None,
            "chat": self.meeting.chat_for(participant)[-MOVED_CHAT:],
            "by": {"id": by.id, "name": by.name} if by is not None else None,
        }

    def choose_room(self, me: Participant, room: int | None) -> None:
        if not self.open:
            raise p.ProtocolError("breakout_closed", "no breakout rooms are open")
        if not me.moderator and not self.choose:
            raise p.ProtocolError("forbidden", "a moderator assigns the rooms")
        self._check_room(room)
        self.move({me.id: room}, me)

    def move_someone(self, me: Participant, participant_id: str, room: int | None) -> None:
        if not self.open:
            raise p.ProtocolError("breakout_closed", "no breakout rooms are open")
        if participant_id not in self.meeting.participants:
            raise p.ProtocolError("not_found", f"no participant {participant_id!r} here")
        self._check_room(room)
        self.move({participant_id: room}, me)

    def _check_room(self, room: int | None) -> None:
        if room is not None and room > len(self.names):
            raise p.ProtocolError("not_found", f"there are {len(self.names)} breakout rooms")

    def broadcast(self, me: Participant, text: str) -> None:
        self.meeting.post_chat(me, text, everywhere=True)

    def close_rooms(self, after_s: int = 0) -> None:
        """Everyone back to the main room: now, or after a warning."""
        if not self.open:
            raise p.ProtocolError("breakout_closed", "no breakout rooms are open")
        self.stop()
        if after_s > 0:
            self.ends_at = _now_ms() + after_s * 1000
            self._arm(after_s)  # the warning goes now
            return
        self.call_back()

    def call_back(self) -> None:
        if self.meeting.closed or not self.open:
            return
        self.stop()
        everyone: dict[str, int | None] = dict.fromkeys(self.where)
        self.names, self.choose, self.ends_at = [], False, None
        self.move(everyone, None)
        log.info("breakout rooms closed", extra={"room": self.meeting.room_id})

    # -- the timer -------------------------------------------------------------------------

    def _arm(self, remaining_s: float) -> None:
        """Call everyone back in `remaining_s`, with a warning before (now if it is near)."""
        loop = asyncio.get_running_loop()
        remaining_s = max(0.0, remaining_s)
        warning_s = min(WARNING_S, remaining_s / 2) if remaining_s > 1 else 0
        self._timers.append(loop.call_later(remaining_s, self.call_back))
        if warning_s:
            self._timers.append(
                loop.call_later(remaining_s - warning_s, self._warn, round(warning_s))
            )

    def _warn(self, seconds: int) -> None:
        if not self.meeting.closed and self.open:
            self.meeting.broadcast({"type": "breakout_closing", "in_s": seconds})


def _shuffled(people: dict[str, Participant], count: int) -> dict[str, int | None]:
    """Everyone but the moderators, spread evenly over the rooms in a random order."""
    ids = [pid for pid, participant in people.items() if not participant.moderator]
    random.shuffle(ids)
    return {pid: n % count + 1 for n, pid in enumerate(ids)}


def apply(meeting: Meeting, me: Participant, message: p.Message, by: audit.Who) -> None:
    """One breakout request, checked: moderators do everything; others may only pick
    their own room when the moderator let people choose."""
    breakouts = meeting.breakouts
    if isinstance(message, p.BreakoutMove) and message.id in (None, me.id):
        breakouts.choose_room(me, message.room)
        return
    if not me.moderator:
        raise p.ProtocolError("forbidden", "only the room's owner and admins may do this")
    room = meeting.room_id
    match message:
        case p.BreakoutOpen():
            breakouts.open_rooms(message, me)
            audit.record("breakout_opened", by, room=room, rooms=message.count)
        case p.BreakoutMove(id=participant_id, room=target) if participant_id is not None:
            breakouts.move_someone(me, participant_id, target)
        case p.BreakoutBroadcast(text=text):
            if not breakouts.open:
                raise p.ProtocolError("breakout_closed", "no breakout rooms are open")
            breakouts.broadcast(me, text)
        case p.BreakoutClose(after_s=after_s):
            breakouts.close_rooms(after_s)
            audit.record("breakout_closed", by, room=room)
