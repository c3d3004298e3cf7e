"""The waiting room: people who asked to enter a room and wait for a moderator.

A waiter holds their WebSocket open and receives nothing from the meeting. A moderator
admits them (they enter without reloading), denies them, or nobody answers and the
request expires.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from visio.access import Identity, LobbyReason
from visio.conference.participant import Outbox, holds_token, new_resume_token, token_digest
from visio.conference.records import IdentityRecord, WaiterRecord
from visio.protocol import Join

if TYPE_CHECKING:
    from visio.conference.meeting import Meeting
    from visio.conference.participant import Participant

Admitted = Callable[["Meeting", "Participant"], None]


def new_waiter_id() -> str:
    return f"w-{secrets.token_hex(4)}"


@dataclass(eq=False)
class Waiter:
    room_id: str
    name: str
    identity: Identity
    request: Join
    reason: LobbyReason
    outbox: Outbox | None  # None: their connection dropped; they may come back in time
    on_admitted: Admitted | None
    id: str = field(default_factory=new_waiter_id)
    since_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    timer: asyncio.TimerHandle | None = None  # the request expires
    expires_at: float = 0.0  # loop time
    grace_timer: asyncio.TimerHandle | None = None  # their connection dropped: they may return
    # Given in the `lobby` frame: a client that reconnects keeps its place with it, and
    # keeps it as its participant's resume token once admitted.
    resume_token: str | None = field(default_factory=new_resume_token)
    resume_digest: str = ""

    def __post_init__(self) -> None:
        if not self.resume_digest and self.resume_token:
            self.resume_digest = token_digest(self.resume_token)

    def holds(self, token: str) -> bool:
        return holds_token(self.resume_digest, token)

    def record(self) -> WaiterRecord:
        return WaiterRecord(
            id=self.id,
            room=self.room_id,
            name=self.name,
            identity=IdentityRecord.of(self.identity),
            request=self.request.model_dump(exclude={"resume", "ref"}),
            reason=self.reason,
            since=self.since_ms,
            resume=self.resume_digest,
        )

    @classmethod
    def restore(cls, data: WaiterRecord) -> Waiter:
        return cls(
            room_id=data.room,
            name=data.name,
            identity=data.identity.identity(),
            request=Join.model_validate(data.request),
            reason=data.reason,
            outbox=None,
            on_admitted=None,
            id=data.id,
            since_ms=data.since,
            resume_token=None,
            resume_digest=data.resume,
        )

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "guest": not self.identity.signed_in,
            "since": self.since_ms,
        }

    def dismiss(self, frame: dict[str, Any], code: int, reason: str) -> None:
        """Tell them how their request ended and close their connection."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.outbox is not None:
            self.outbox.send(frame)
            self.outbox.close(code, reason)


class Lobby:
    """The people waiting for one room, in arrival order."""

    def __init__(self) -> None:
        self.waiting: dict[str, Waiter] = {}

    def __len__(self) -> int:
        return len(self.waiting)

    def add(self, waiter: Waiter) -> None:
        self.waiting[waiter.id] = waiter

    def take(self, waiter_id: str) -> Waiter | None:
        waiter = self.waiting.pop(waiter_id, None)
        if waiter is not None:
            for timer in (waiter.timer, waiter.grace_timer):
                if timer is not None:
                    timer.cancel()
            waiter.timer = waiter.grace_timer = None
        return waiter

    def find_by_token(self, token: str) -> Waiter | None:
        return next((w for w in self.waiting.values() if w.holds(token)), None)

    def take_all(self) -> list[Waiter]:
        return [w for w in (self.take(i) for i in list(self.waiting)) if w is not None]

    def update_frame(self) -> dict[str, Any]:
        return {"type": "lobby_update", "waiting": [w.public() for w in self.waiting.values()]}
