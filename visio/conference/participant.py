"""A person in a meeting: their state, their Janus handles and their current connection."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from visio.access import GUEST, Identity, Role
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


@dataclass
class Participant:
    name: str
    audio: bool = True
    video: bool = True
    hand: bool = False
    id: str = field(default_factory=new_participant_id)
    resume_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    outbox: Outbox | None = None
    publications: dict[str, Publication] = field(default_factory=dict)
    subscription: Subscription = field(default_factory=Subscription)
    grace_timer: asyncio.TimerHandle | None = None
    identity: Identity = GUEST
    role: Role = "participant"
    silenced: set[str] = field(default_factory=set)  # media a moderator stopped at Janus

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
        }

    def send(self, frame: dict[str, Any]) -> None:
        if self.outbox is not None:
            self.outbox.send(frame)
