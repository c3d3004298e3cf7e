"""What a room's owner and admins may do to a running meeting, and nobody else."""

from __future__ import annotations

import math

from visio import audit
from visio import protocol as p
from visio.conference import rights
from visio.conference.lobby import Waiter
from visio.conference.meeting import Meeting
from visio.conference.meetings import Meetings
from visio.conference.participant import Participant

Moderation = p.Admit | p.Deny | p.Moderate | p.Lock | p.End | p.Capture


async def apply(
    meetings: Meetings, meeting: Meeting, me: Participant, message: Moderation, by: audit.Who
) -> None:
    """Carry out one moderator request; ProtocolError if it is not allowed or makes no sense.
    What was done goes to the audit trail, `by` the moderator."""
    if not me.moderator and not rights.may_mute(meeting, message):
        raise p.ProtocolError("forbidden", "only the room's owner and admins may do this")
    room = meeting.room_id
    match message:
        case p.Admit(id=waiter_id):
            for waiter in meetings.admit(meeting, waiter_id):
                audit.record("lobby_admitted", by, room=room, target=_waiting(waiter))
        case p.Deny(id=waiter_id):
            for waiter in meetings.deny(meeting, waiter_id):
                audit.record("lobby_denied", by, room=room, target=_waiting(waiter))
        case p.Lock(locked=locked):
            await meetings.set_locked(meeting, locked)
            audit.record("meeting_locked" if locked else "meeting_unlocked", by, room=room)
        case p.End():
            audit.record("meeting_ended", by, room=room)
            await meetings.end(room, me)
        case p.Capture(kind=kind, on=on):
            if meeting.capture_state()[kind] != on:
                _spend_capture_switch(meeting)
                await meetings.captures.switch(meeting, kind, on)
                event = "capture_started" if on else "capture_stopped"
                capture = meeting.capture.capture_id if meeting.capture else None
                audit.record(event, by, room=room, kind=kind, capture=capture)
        case p.Moderate(action=action, id=target_id):
            targets = _everyone_but_moderators(meeting) if target_id is None else []
            if target_id is not None:
                targets = [_target(meeting, me, target_id, action)]
            for target in targets:
                await _act_on(meeting, me, target, action)
                audit.record("moderated", by, room=room, action=action, target=_person(target))


def _person(participant: Participant) -> audit.Who:
    identity = participant.identity
    return audit.who(identity, identity.address, participant.id, participant.role)


def _waiting(waiter: Waiter) -> audit.Who:
    return audit.waiting(waiter.identity, waiter.id)


def _spend_capture_switch(meeting: Meeting) -> None:
    if not meeting.capture_switches.allow():
        wait = meeting.capture_switches.wait()
        raise p.ProtocolError(
            "rate_limited",
            f"transcription and recording switched too often; retry in {math.ceil(wait)} s",
            retry_in=wait,
        )


def _everyone_but_moderators(meeting: Meeting) -> list[Participant]:
    return [p for p in meeting.participants.values() if not p.moderator]


def _target(meeting: Meeting, me: Participant, target_id: str, action: str) -> Participant:
    target = meeting.participants.get(target_id)
    if target is None:
        raise p.ProtocolError("not_found", f"no participant {target_id!r} in this meeting")
    if target is me and action == "remove":
        raise p.ProtocolError("bad_message", "send leave to leave the meeting")
    if target.moderator and target is not me and me.role != "owner":
        raise p.ProtocolError("forbidden", "only the owner may act on another moderator")
    return target


async def _act_on(meeting: Meeting, me: Participant, target: Participant, action: str) -> None:
    by = {"id": me.id, "name": me.name}
    if action == "remove":
        meeting.banned.update(target.identity.keys)
        target.send({"type": "error", "code": "removed", "message": f"{me.name} removed you"})
        if target.outbox is not None:
            target.outbox.close(4003, "removed")
        await meeting.remove(target, "removed")
        return
    if action == "stop_screen":
        if "screen" not in target.publications:
            raise p.ProtocolError("not_published", f"{target.name} is not sharing a screen")
        await meeting.unpublish(target, "screen")
    else:
        await meeting.silence(target, "audio" if action == "mute" else "video")
    target.send({"type": "moderated", "action": action, "by": by})
