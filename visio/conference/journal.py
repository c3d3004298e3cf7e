"""Writes down what changes in the rooms this process owns, for the process that may take
them over (visio.cluster.state). On the embedded default nothing is written: there is no
other process.

Changes are coalesced: a participant who changes five times in one turn of the event loop
is written once, as they are at the end of it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from visio.cluster.state import RoomState
    from visio.conference.lobby import Waiter
    from visio.conference.meeting import Meeting
    from visio.conference.participant import Participant


class Journal(Protocol):
    def meeting(self, meeting: Meeting) -> None: ...

    def participant(self, meeting: Meeting, participant: Participant) -> None: ...

    def left(self, meeting: Meeting, participant: Participant) -> None: ...

    def chat(self, meeting: Meeting, message: dict[str, Any]) -> None: ...

    def whole_chat(self, meeting: Meeting) -> None: ...

    def waiter(self, waiter: Waiter) -> None: ...

    def waiter_gone(self, waiter: Waiter) -> None: ...

    def ended(self, room_id: str) -> None: ...

    def forget(self, room_id: str) -> None: ...


class NoJournal:
    """One process holds everything: nothing to write down."""

    def meeting(self, meeting: Meeting) -> None:
        pass

    def participant(self, meeting: Meeting, participant: Participant) -> None:
        pass

    def left(self, meeting: Meeting, participant: Participant) -> None:
        pass

    def chat(self, meeting: Meeting, message: dict[str, Any]) -> None:
        pass

    def whole_chat(self, meeting: Meeting) -> None:
        pass

    def waiter(self, waiter: Waiter) -> None:
        pass

    def waiter_gone(self, waiter: Waiter) -> None:
        pass

    def ended(self, room_id: str) -> None:
        pass

    def forget(self, room_id: str) -> None:
        pass


NO_JOURNAL = NoJournal()


class RoomJournal:
    """Writes the records of changed meetings, participants and waiters to Redis."""

    def __init__(self, state: RoomState) -> None:
        self.state = state
        self._meetings: dict[str, Meeting] = {}
        self._participants: dict[tuple[str, str], tuple[Meeting, Participant]] = {}
        self._scheduled = False

    def meeting(self, meeting: Meeting) -> None:
        self._meetings[meeting.room_id] = meeting
        self._schedule()

    def participant(self, meeting: Meeting, participant: Participant) -> None:
        self._participants[(meeting.room_id, participant.id)] = (meeting, participant)
        self._schedule()

    def left(self, meeting: Meeting, participant: Participant) -> None:
        self._participants.pop((meeting.room_id, participant.id), None)
        self.state.participant(meeting.room_id, participant.id, None)

    def chat(self, meeting: Meeting, message: dict[str, Any]) -> None:
        self.state.chat(meeting.room_id, message)

    def whole_chat(self, meeting: Meeting) -> None:
        self.state.whole_chat(meeting.room_id, list(meeting.chat))

    def waiter(self, waiter: Waiter) -> None:
        self.state.waiter(waiter.room_id, waiter.id, waiter.record().model_dump())

    def waiter_gone(self, waiter: Waiter) -> None:
        self.state.waiter(waiter.room_id, waiter.id, None)

    def ended(self, room_id: str) -> None:
        self._drop(room_id)
        self.state.meeting(room_id, None)

    def forget(self, room_id: str) -> None:
        self._drop(room_id)
        self.state.forget(room_id)

    def _drop(self, room_id: str) -> None:
        self._meetings.pop(room_id, None)
        for key in [k for k in self._participants if k[0] == room_id]:
            del self._participants[key]

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._write)

    def write_now(self) -> None:
        """Queue every pending record now (before a hand-over)."""
        self._write()

    def _write(self) -> None:
        self._scheduled = False
        meetings, self._meetings = self._meetings, {}
        participants, self._participants = self._participants, {}
        for room_id, meeting in meetings.items():
            if not meeting.closed:
                self.state.meeting(room_id, meeting.record().model_dump())
        for (room_id, participant_id), (meeting, participant) in participants.items():
            if not meeting.closed and participant_id in meeting.participants:
                self.state.participant(room_id, participant_id, participant.record().model_dump())
