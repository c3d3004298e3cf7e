"""A person in a meeting: their state, their Janus handles and their current connection."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from visio.access import GUEST, Identity, Role
from visio.conference.quality import CallQuality
from visio.conference.records import (
    IdentityRecord,
    ParticipantRecord,
    PublicationRecord,
    SubscriptionRecord,
)
from visio.janus.videoroom import PublisherHandle, SubscriberHandle, SubscriberOffer


class Outbox(Protocol):
    """Where frames for one client go (its current WebSocket)."""

    def send(self, frame: dict[str, Any]) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


@dataclass
class Publication:
    target: str  # "camera" | "screen"
    handle: PublisherHandle
    live: bool = False  # Janus said the peer connection is up: others may subscribe
    mids: dict[str, list[str]] = field(default_factory=dict)  # media -> mids of the offer
    streams: list[dict[str, Any]] = field(default_factory=list)  # as Janus describes them
    audiolevel: int | None = None  # the offer's audio level extension id
    node: str = ""  # the node of the room it is published in

    @property
    def feed_id(self) -> int:
        return self.handle.feed_id


@dataclass
class Subscription:
    """The participant's one subscriber connection and its negotiation state."""

    handle: SubscriberHandle | None = None
    feeds: set[int] = field(default_factory=set)
    pending_offer: SubscriberOffer | None = None
    pending_frame: dict[str, Any] | None = None
    needs_sync: bool = False  # changes arrived while an offer was pending
    broken: bool = False  # Janus hung it up: wait for the client's `resubscribe`
    failures: int = 0  # consecutive failed renegotiations
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def new_participant_id() -> str:
    return f"p-{secrets.token_hex(4)}"


def new_resume_token() -> str:
    return secrets.token_urlsafe(24)


def token_digest(token: str) -> str:
    """What is kept of a resume token outside this process's memory."""
    return hashlib.sha256(token.encode()).hexdigest()


def holds_token(digest: str, token: str) -> bool:
    return secrets.compare_digest(digest, token_digest(token))


@dataclass
class Participant:
    name: str
    audio: bool = True
    video: bool = True
    hand: bool = False
    id: str = field(default_factory=new_participant_id)
    # The token a client resumes with: known here until a takeover, which keeps the digest.
    resume_token: str | None = field(default_factory=new_resume_token)
    resume_digest: str = ""
    outbox: Outbox | None = None
    publications: dict[str, Publication] = field(default_factory=dict)
    subscription: Subscription = field(default_factory=Subscription)
    grace_timer: asyncio.TimerHandle | None = None
    identity: Identity = GUEST
    role: Role = "participant"
    silenced: set[str] = field(default_factory=set)  # media a moderator stopped at Janus
    node: str | None = None  # the node of the meeting's room they are placed in
    media_reset: bool = False  # the media server lost their connections: start them anew
    # What their client measured of the call (in this process: a takeover starts afresh).
    quality: CallQuality = field(default_factory=CallQuality)
    # A moderator let them in from the lobby: a later change of the room's access does
    # not move them out (those who entered by right lose it with the right).
    admitted: bool = False
    joined_at: int = field(default_factory=lambda: int(time.time() * 1000))  # epoch ms
    # Large meetings (visio.conference.rights): when the hand went up, what a moderator
    # let them publish ("speak", "present"), and whether one made them a moderator.
    hand_at: int = 0
    granted: set[str] = field(default_factory=set)
    promoted: bool = False

    def __post_init__(self) -> None:
        if not self.resume_digest and self.resume_token:
            self.resume_digest = token_digest(self.resume_token)

    def holds(self, token: str) -> bool:
        return holds_token(self.resume_digest, token)

    def record(self) -> ParticipantRecord:
        subscription = self.subscription
        return ParticipantRecord(
            id=self.id,
            name=self.name,
            audio=self.audio,
            video=self.video,
            hand=self.hand,
            resume=self.resume_digest,
            identity=IdentityRecord.of(self.identity),
            role=self.role,
            node=self.node,
            silenced=sorted(self.silenced),
            admitted=self.admitted,
            joined_at=self.joined_at,
            connected=self.connected,
            hand_at=self.hand_at,
            granted=sorted(self.granted),
            promoted=self.promoted,
            publications={
                target: PublicationRecord(
                    handle=p.handle.handle.id,
                    feed=p.feed_id,
                    live=p.live,
                    mids=p.mids,
                    streams=p.streams,
                    audiolevel=p.audiolevel,
                )
                for target, p in self.publications.items()
            },
            subscription=SubscriptionRecord(
                handle=subscription.handle.handle.id if subscription.handle else None,
                feeds=sorted(subscription.feeds),
                pending=subscription.pending_frame,
                broken=subscription.broken,
            ),
        )

    @property
    def guest(self) -> bool:
        return not self.identity.signed_in

    @property
    def moderator(self) -> bool:
        return self.role in ("owner", "admin")

    @property
    def connected(self) -> bool:
        return self.outbox is not None

    @property
    def sharing_screen(self) -> bool:
        return "screen" in self.publications

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "audio": self.audio,
            "video": self.video,
            "screen": self.sharing_screen,
            "hand": self.hand,
            "connection": "connected" if self.connected else "reconnecting",
            "guest": self.guest,
            "role": self.role,
            "granted": sorted(self.granted),
        }

    def send(self, frame: dict[str, Any]) -> None:
        if self.outbox is not None:
            self.outbox.send(frame)
