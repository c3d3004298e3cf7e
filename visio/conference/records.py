"""Meetings, participants and waiters as plain records, and back.

The owner of a room writes these records (visio.cluster.state) as the room changes, so
that another process can take the room over: after a crash, or when this one drains. A
record holds what the new owner needs to go on without anyone noticing: the Janus session
and handles (claimed, not re-created: the media keep flowing), each participant's place,
who waits, the lock and the bans. Resume tokens are kept as digests only.

Records read back are validated: one that does not fit is skipped (and logged), never
half-used.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from visio.access import Identity, LobbyReason, Role


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class IdentityRecord(Record):
    user_id: str | None = None
    email: str | None = None
    name: str | None = None
    guest_key: str | None = None
    address: str | None = None

    @classmethod
    def of(cls, identity: Identity) -> IdentityRecord:
        return cls(
            user_id=identity.user_id,
            email=identity.email,
            name=identity.name,
            guest_key=identity.guest_key,
            address=identity.address,
        )

    def identity(self) -> Identity:
        return Identity(self.user_id, self.email, self.name, self.guest_key, self.address)


class CaptureRecord(Record):
    id: str
    title: str
    language: str
    started_at: float
    transcription: bool
    recording: bool


class MediaRoomRecord(Record):
    node: str  # the Janus node's URL
    janus_room: int
    session: int  # the Janus session that holds the handles of the people placed there


class MirrorRecord(Record):
    """A feed of one node's room published again in another node's room."""

    source: str  # node URLs
    target: str
    source_room: int
    source_feed: int
    remote_id: str
    target_room: int
    target_feed: int
    port: int
    rtcp_port: int
    mids: dict[str, str] = {}


class BreakoutRecord(Record):
    """The meeting's breakout rooms (visio.conference.breakout) while they are open."""

    opening: int  # how many times rooms were opened: tells apart the chats of each time
    names: list[str]
    where: dict[str, int] = {}  # participant id -> room (1..N); absent: the main room
    choose: bool = False
    ends_at: int | None = None  # epoch ms when everyone is called back


class StageRecord(Record):
    """The rules of a large meeting and who is in the spotlight (visio.conference.stage)."""

    attendees_publish: bool = True
    mute_on_entry_above: int = 10
    everyone_can_mute: bool = False
    spotlight: str | None = None


class MeetingRecord(Record):
    room: str
    name: str
    access: str
    max_participants: int | None = None
    locked: bool = False
    banned: list[str] = []
    rooms: list[MediaRoomRecord]  # the first is where the meeting started
    mirrors: list[MirrorRecord] = []
    chat_seq: int = 0
    capture: CaptureRecord | None = None
    breakout: BreakoutRecord | None = None
    stage: StageRecord = StageRecord()
    publish_key: str = ""  # the key of Janus' publish tokens (visio.conference.gate)


class PublicationRecord(Record):
    handle: int
    feed: int
    live: bool
    mids: dict[str, list[str]] = {}
    streams: list[dict[str, Any]] = []  # Janus' description, for mirroring the feed
    audiolevel: int | None = None  # the audio level extension's id in the offer


class SubscriptionRecord(Record):
    handle: int | None = None
    feeds: list[int] = []
    pending: dict[str, Any] | None = None  # the offer frame waiting for the client's answer
    broken: bool = False


class ParticipantRecord(Record):
    id: str
    name: str
    audio: bool
    video: bool
    hand: bool
    resume: str  # digest of the resume token
    identity: IdentityRecord
    role: Role
    node: str | None = None  # the node of the room they are placed in
    silenced: list[str] = []
    admitted: bool = False  # let in from the lobby by a moderator
    joined_at: int = 0  # epoch ms: history before it is not theirs
    connected: bool = False  # their connection is up (or they are within the grace)
    hand_at: int = 0  # epoch ms when their hand went up: their place in the queue
    granted: list[str] = []  # what a moderator let them publish: speak, present
    promoted: bool = False  # made a moderator during the meeting
    publications: dict[str, PublicationRecord] = {}
    subscription: SubscriptionRecord = SubscriptionRecord()


class WaiterRecord(Record):
    id: str
    room: str
    name: str
    identity: IdentityRecord
    request: dict[str, Any]  # their join frame, for when they are admitted
    reason: LobbyReason
    since: int
    resume: str
