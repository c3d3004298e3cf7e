"""A seat: one participant to bring into a meeting, as the coordinator hands it to a worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from visio.load.client import Role


@dataclass(frozen=True)
class Seat:
    key: str  # unique in a run
    url: str  # the server's base URL
    room: str
    name: str
    role: Role
    group: str  # seats of one group join one after the other; groups join at once
    wait_for_media: bool  # the join is complete only once a packet came in
    receives: bool  # in steady state this seat receives media (a lone speaker does not)


@dataclass(frozen=True)
class JoinResult:
    key: str
    seconds: float | None  # WebSocket opening -> first media packet, when waited for
    error: str | None = None
    # WebSocket opening -> open, joined, offer (subscriber), published (camera up), media
    phases: dict[str, float] = field(default_factory=dict)
