"""The shapes of load: who joins which meeting, with which media.

- `small`: many small meetings, e.g. of 6: every microphone on with Opus DTX and one
  talker at a time (turns rotate), two cameras per meeting at the low simulcast layer,
  the others' cameras off. Everyone receives everyone else.
- `webinar`: one speaker (camera and microphone, always talking) and N viewers who
  publish nothing.
- `churn`: small meetings whose participants leave and are replaced at a steady rate
  (`visio.load.run`), which exercises joins, subscriptions and Janus handles.

`add(count)` creates the rooms it needs (HTTP API) and returns the seats in batches:
each batch is joined once the previous one is in.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from visio.load.client import Role
from visio.load.media import ALWAYS_TALKING, TalkSchedule
from visio.load.rooms import create_room
from visio.load.seats import Seat


@dataclass(frozen=True)
class MeetingShape:
    size: int = 6
    cameras: int = 2
    turn_s: float = 10.0  # how long each talker keeps the floor


class SmallMeetings:
    """Meetings of `shape.size`, filled one after the other (a meeting per server URL in
    turn: without a shared bus a meeting lives in one server process)."""

    def __init__(self, urls: list[str], shape: MeetingShape) -> None:
        self.urls, self.shape = urls, shape
        self.meetings = itertools.count()
        self.serial = itertools.count()
        self.seats: dict[str, Seat] = {}

    async def add(self, count: int) -> list[list[Seat]]:
        seats: list[Seat] = []
        for _ in range(-(-count // self.shape.size)):
            seats += await self._meeting(next(self.meetings))
        return [seats]

    async def _meeting(self, index: int) -> list[Seat]:
        url = self.urls[index % len(self.urls)]
        room = await create_room(url, f"load meeting {index}")
        seats = [self._seat(url, room, index, position) for position in range(self.shape.size)]
        self.seats.update((seat.key, seat) for seat in seats)
        return seats

    def _seat(self, url: str, room: str, meeting: int, position: int) -> Seat:
        shape = self.shape
        offset = (meeting * 1.37) % shape.turn_s  # turns of meetings change at different times
        role = Role(
            camera=position < shape.cameras,
            microphone=True,
            schedule=TalkSchedule(position, shape.size, shape.turn_s, offset),
        )
        return Seat(
            key=f"m{meeting}-{position}-{next(self.serial)}",
            url=url,
            room=room,
            name=f"Load {meeting}.{position}",
            role=role,
            group=f"m{meeting}",
            # The first to join has nobody to receive from yet.
            wait_for_media=position > 0,
            receives=shape.size > 1,
        )

    def replacement(self, key: str) -> Seat:
        """A newcomer for the seat that `key` leaves: same meeting, same role."""
        seat = self.seats.pop(key)
        newcomer = replace(
            seat,
            key=seat.key.rsplit("-", 1)[0] + f"-{next(self.serial)}",
            group=f"churn-{next(self.serial)}",
            wait_for_media=True,
        )
        self.seats[newcomer.key] = newcomer
        return newcomer


class Webinar:
    """One speaker and viewers; viewers go to the server URLs in turn."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.room: str | None = None
        self.viewers = itertools.count()

    async def add(self, count: int) -> list[list[Seat]]:
        batches: list[list[Seat]] = []
        if self.room is None:
            self.room = await create_room(self.urls[0], "load webinar")
            speaker = Seat(
                key="speaker",
                url=self.urls[0],
                room=self.room,
                name="Load speaker",
                role=Role(camera=True, microphone=True, schedule=ALWAYS_TALKING),
                group="speaker",
                wait_for_media=False,
                receives=False,
            )
            batches.append([speaker])
            count -= 1
        batches.append([self._viewer(self.room) for _ in range(count)])
        return batches

    def _viewer(self, room: str) -> Seat:
        number = next(self.viewers)
        silent = Role(camera=False, microphone=False, schedule=ALWAYS_TALKING)
        return Seat(
            key=f"viewer-{number}",
            url=self.urls[number % len(self.urls)],
            room=room,
            name=f"Load viewer {number}",
            role=silent,
            group=f"viewer-{number}",
            wait_for_media=True,
            receives=True,
        )
