"""The rooms as the REST API sees them: what runs in a room now, and changes to apply to
its meeting, wherever the room is held (this process, or another: visio.cluster)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from visio.conference.meetings import Meetings
from visio.conference.records import MeetingRecord, ParticipantRecord, WaiterRecord
from visio.transcripts.capture import nothing_captured


@dataclass
class MeetingView:
    running: bool = False
    locked: bool = False
    capture: dict[str, bool] = field(default_factory=nothing_captured)
    participants: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of_records(
        cls,
        meeting: MeetingRecord | None,
        participants: list[ParticipantRecord],
        waiters: list[WaiterRecord],
    ) -> MeetingView:
        view = cls(waiting=[_waiter(w) for w in sorted(waiters, key=lambda w: w.since)])
        if meeting is not None:
            view.running, view.locked = True, meeting.locked
            if meeting.capture is not None:
                view.capture = {
                    "transcription": meeting.capture.transcription,
                    "recording": meeting.capture.recording,
                }
            view.participants = [_participant(p) for p in participants]
        return view


def _participant(record: ParticipantRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "guest": record.identity.user_id is None,
        "role": record.role,
        "connection": "connected" if record.connected else "reconnecting",
    }


def _waiter(record: WaiterRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "guest": record.identity.user_id is None,
        "since": record.since,
    }


class Rooms(Protocol):
    async def policy_changed(self, room_id: str) -> None: ...

    async def end(self, room_id: str) -> None: ...

    async def view(self, room_id: str) -> MeetingView: ...


class LocalRooms:
    """Every room is held by this process (the embedded default)."""

    def __init__(self, meetings: Meetings) -> None:
        self.meetings = meetings

    async def policy_changed(self, room_id: str) -> None:
        await self.meetings.policy_changed(room_id)

    async def end(self, room_id: str) -> None:
        await self.meetings.end(room_id, by=None)

    async def view(self, room_id: str) -> MeetingView:
        return self.view_now(room_id)

    def view_now(self, room_id: str) -> MeetingView:
        meeting = self.meetings.running.get(room_id)
        lobby = self.meetings.lobbies.get(room_id)
        view = MeetingView(waiting=[w.public() for w in lobby.waiting.values()] if lobby else [])
        if meeting is not None:
            view.running, view.locked = True, meeting.locked
            view.capture = meeting.capture_state()
            view.participants = [p.public() for p in meeting.participants.values()]
        return view
