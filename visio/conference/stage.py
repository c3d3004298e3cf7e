"""What a large meeting or webinar adds to a meeting's state: the room's rules for
publishing and muting, the person in the spotlight, and the queue of raised hands.

The rules come from the room's settings (visio.db); the rest changes during the meeting
and is written down with it (visio.conference.records), so that a takeover keeps it. What
people may do with it is decided in visio.conference.rights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from visio.conference.records import StageRecord

if TYPE_CHECKING:
    from visio.conference.participant import Participant
    from visio.db import RoomPolicy

RIGHT_OF_TARGET = {"camera": "speak", "screen": "present"}


@dataclass
class Stage:
    attendees_publish: bool = True  # False: a webinar, only the allowed publish
    mute_on_entry_above: int = 10  # people enter muted when this many are in; 0: never
    everyone_can_mute: bool = False
    spotlight: str | None = None  # the participant shown large to everyone

    def follow(self, policy: RoomPolicy) -> bool:
        """Take the room's rules; whether they changed."""
        rules = (policy.attendees_publish, policy.mute_on_entry_above, policy.everyone_can_mute)
        if rules == (self.attendees_publish, self.mute_on_entry_above, self.everyone_can_mute):
            return False
        self.attendees_publish, self.mute_on_entry_above, self.everyone_can_mute = rules
        return True

    def public(self, people: dict[str, Participant]) -> dict[str, Any]:
        return {
            "attendees_publish": self.attendees_publish,
            "mute_on_entry_above": self.mute_on_entry_above,
            "everyone_can_mute": self.everyone_can_mute,
            "spotlight": self.spotlight if self.spotlight in people else None,
            "hands": hand_queue(people),
        }

    def record(self) -> StageRecord:
        return StageRecord(
            attendees_publish=self.attendees_publish,
            mute_on_entry_above=self.mute_on_entry_above,
            everyone_can_mute=self.everyone_can_mute,
            spotlight=self.spotlight,
        )

    @classmethod
    def restore(cls, record: StageRecord) -> Stage:
        return cls(**record.model_dump())


def may_publish(stage: Stage, participant: Participant, target: str) -> bool:
    """Moderators always; others when the room lets attendees publish, or a moderator let
    them (`speak` for the camera and microphone, `present` for the screen)."""
    if stage.attendees_publish or participant.moderator:
        return True
    return RIGHT_OF_TARGET.get(target) in participant.granted


def hand_queue(people: dict[str, Participant]) -> list[str]:
    """The raised hands, first raised first."""
    raised = [p for p in people.values() if p.hand]
    return [p.id for p in sorted(raised, key=lambda p: (p.hand_at, p.id))]


def note_hand(participant: Participant, people: dict[str, Participant]) -> None:
    """When the hand went up: its place in the queue (a hand raised again goes last).

    Always after every hand already up, even within the same millisecond: two hands
    raised that close would otherwise be ordered by id."""
    if not participant.hand:
        participant.hand_at = 0
        return
    latest = max((p.hand_at for p in people.values() if p is not participant), default=0)
    participant.hand_at = max(int(time.time() * 1000), latest + 1)
