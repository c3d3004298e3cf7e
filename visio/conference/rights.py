"""Large meetings and webinars: who may publish, raised hands, the spotlight, and
moderators named during the meeting.

A room whose attendees may not publish (`attendees_publish` off: a webinar) lets only its
moderators speak and present, and those a moderator lets: a `publish` from anyone else is
refused here, so Janus never sees them join as a publisher; and Janus would refuse them
too (visio.conference.gate). A right taken back stops what it allowed at once. Everything
happens in the room's owner process, as moderation does, and is written down with the
meeting (visio.conference.stage).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from visio import audit
from visio import protocol as p
from visio.access import Role
from visio.conference.stage import RIGHT_OF_TARGET, hand_queue, may_publish, note_hand

if TYPE_CHECKING:
    from visio.conference.meeting import Meeting
    from visio.conference.meetings import Meetings
    from visio.conference.participant import Participant
    from visio.db import RoomPolicy

StageMessage = p.Grant | p.LowerHand | p.Spotlight | p.Promote | p.Demote


def check_publish(meeting: Meeting, me: Participant, target: str) -> None:
    """ProtocolError unless the participant may publish this target now."""
    if not may_publish(meeting.stage, me, target):
        right = RIGHT_OF_TARGET[target]
        raise p.ProtocolError(
            "forbidden",
            f"only moderators, and those they let {right}, may publish a {target} in this "
            "room: raise your hand",
        )


async def still_allowed(meeting: Meeting, me: Participant, target: str) -> None:
    """After Janus accepted a publication: the right may have gone meanwhile."""
    if not may_publish(meeting.stage, me, target):
        if target in me.publications:
            await meeting.unpublish(me, target)
        check_publish(meeting, me, target)


def allowed_state(
    meeting: Meeting, me: Participant, audio: bool | None, video: bool | None
) -> tuple[bool | None, bool | None]:
    """Someone who may not speak cannot claim a live microphone or camera either."""
    if may_publish(meeting.stage, me, "camera"):
        return audio, video
    return (False if audio else audio), (False if video else video)


def on_entry(meeting: Meeting, participant: Participant) -> None:
    """Before the joined frame: a newcomer to a big meeting enters muted, one who may not
    speak enters with neither microphone nor camera."""
    stage = meeting.stage
    if not may_publish(stage, participant, "camera"):
        participant.audio = participant.video = False
    elif stage.mute_on_entry_above and not participant.moderator:
        if len(meeting.participants) >= stage.mute_on_entry_above:
            participant.audio = False


def may_mute(meeting: Meeting, message: p.Message) -> bool:
    """With `everyone_can_mute`, anyone may mute another person (one at a time)."""
    return (
        meeting.stage.everyone_can_mute
        and isinstance(message, p.Moderate)
        and message.action == "mute"
        and message.id is not None
    )


def hand_moved(meeting: Meeting, me: Participant) -> None:
    """The participant raised or lowered their own hand."""
    note_hand(me, meeting.participants)
    meeting.journal.participant(meeting, me)
    _tell_hands(meeting)


async def follow_policy(meeting: Meeting, policy: RoomPolicy) -> None:
    """The room's settings changed: a webinar now stops what attendees publish unasked."""
    if not meeting.stage.follow(policy):
        return
    meeting.journal.meeting(meeting)
    for participant in list(meeting.participants.values()):
        await _withdraw(meeting, participant)
    await meeting.guard_publishing()


def role_kept(participant: Participant, role: Role) -> Role:
    """The role the room's policy gives, but a moderator named in the meeting stays one."""
    if role != "participant":
        participant.promoted = False
    elif participant.promoted:
        return "admin"
    return role


async def apply(
    meetings: Meetings, meeting: Meeting, me: Participant, message: StageMessage, by: audit.Who
) -> None:
    """Carry out one moderator request of a large meeting; ProtocolError if not allowed."""
    if not me.moderator:
        raise p.ProtocolError("forbidden", "only the room's moderators may do this")
    room = meeting.room_id
    match message:
        case p.Grant(id=target_id, right=right, on=on):
            target = _someone(meeting, target_id)
            await _grant(meeting, me, target, right, on)
            event = "right_granted" if on else "right_revoked"
            audit.record(event, by, room=room, right=right, target=_person(target))
        case p.LowerHand(id=target_id):
            targets = list(meeting.participants.values())
            if target_id is not None:
                targets = [_someone(meeting, target_id)]
            _lower_hands(meeting, me, [t for t in targets if t.hand])
        case p.Spotlight(id=target_id):
            target = _someone(meeting, target_id) if target_id is not None else None
            _spotlight(meeting, me, target)
            audit.record("spotlight", by, room=room, target=_person(target) if target else None)
        case p.Promote(id=target_id):
            target = _someone(meeting, target_id)
            _promote(meetings, meeting, target)
            audit.record("promoted", by, room=room, target=_person(target))
        case p.Demote(id=target_id):
            target = _someone(meeting, target_id)
            await _demote(meeting, me, target)
            audit.record("demoted", by, room=room, target=_person(target))
    await meeting.guard_publishing()  # Janus' list follows: a right taken back is gone there too


def _someone(meeting: Meeting, target_id: str) -> Participant:
    target = meeting.participants.get(target_id)
    if target is None:
        raise p.ProtocolError("not_found", f"no participant {target_id!r} in this meeting")
    return target


def _by(me: Participant) -> dict[str, str]:
    return {"id": me.id, "name": me.name}


def _person(participant: Participant) -> audit.Who:
    identity = participant.identity
    return audit.who(identity, identity.address, participant.id, participant.role)


async def _grant(
    meeting: Meeting, me: Participant, target: Participant, right: str, on: bool
) -> None:
    if target.moderator:
        raise p.ProtocolError("bad_message", f"{target.name} moderates: they may publish already")
    if on:
        target.granted.add(right)
        if target.hand:
            target.hand = False
            note_hand(target, meeting.participants)
            _tell_hands(meeting)
    else:
        target.granted.discard(right)
    target.send({"type": "granted", "right": right, "on": on, "by": _by(me)})
    meeting.updated(target)
    if not on:
        await _withdraw(meeting, target)


async def _withdraw(meeting: Meeting, participant: Participant) -> None:
    """Stop what the participant publishes and may no longer publish."""
    for target in list(participant.publications):
        if not may_publish(meeting.stage, participant, target):
            await meeting.unpublish(participant, target)
    if not may_publish(meeting.stage, participant, "camera") and (
        participant.audio or participant.video
    ):
        participant.audio = participant.video = False
        meeting.updated(participant)


def _lower_hands(meeting: Meeting, me: Participant, targets: list[Participant]) -> None:
    for target in targets:
        target.hand = False
        note_hand(target, meeting.participants)
        target.send({"type": "hand_lowered", "by": _by(me)})
        meeting.updated(target)
    if targets:
        _tell_hands(meeting)


def _tell_hands(meeting: Meeting) -> None:
    meeting.broadcast({"type": "hands", "queue": hand_queue(meeting.participants)})


def _spotlight(meeting: Meeting, me: Participant, target: Participant | None) -> None:
    meeting.stage.spotlight = target.id if target is not None else None
    meeting.journal.meeting(meeting)
    meeting.broadcast({"type": "spotlight", "id": meeting.stage.spotlight, "by": _by(me)})


def _promote(meetings: Meetings, meeting: Meeting, target: Participant) -> None:
    if target.moderator:
        raise p.ProtocolError("bad_message", f"{target.name} moderates already")
    target.role, target.promoted = "admin", True
    _role_changed(meeting, target)
    meetings.show_lobby(meeting, target)


async def _demote(meeting: Meeting, me: Participant, target: Participant) -> None:
    if not target.promoted:
        what = "owns the room" if target.role == "owner" else "is an admin of the room"
        if not target.moderator:
            what = "does not moderate"
        raise p.ProtocolError(
            "bad_message", f"{target.name} {what}: only those made moderators in the meeting"
        )
    target.role, target.promoted = "participant", False
    _role_changed(meeting, target)
    await _withdraw(meeting, target)


def _role_changed(meeting: Meeting, target: Participant) -> None:
    target.send({"type": "participant_updated", "participant": target.public()})
    meeting.updated(target)
