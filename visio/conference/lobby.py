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
from visio.conference.participant import Outbox
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
    outbox: Outbox
    on_admitted: Admitted
    id: str = field(default_factory=new_waiter_id)
    since_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    timer: asyncio.TimerHandle | None = None

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
        if waiter is not None and waiter.timer is not None:
            waiter.timer.cancel()
            waiter.timer = None
        return waiter

    def take_all(self) -> list[Waiter]:
        return [w for w in (self.take(i) for i in list(self.waiting)) if w is not None]

    def update_frame(self) -> dict[str, Any]:
        return {"type": "lobby_update", "waiting": [w.public() for w in self.waiting.values()]}
