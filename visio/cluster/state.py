"""The state of the rooms this process owns, kept in Redis so that it outlives the process.

The owner of a room writes every change of its meeting and lobby here as it happens; the
process that takes the room over after a crash or a drain reads it back
(`visio.conference.records` turns it into meetings, participants and waiters again).

    visio:room:<id>:meeting  hash  "meta" → the meeting (Janus node, room, session, lock,
                                   bans, capture), "p:<participant id>" → one participant
    visio:room:<id>:chat     list  the chat history, oldest first, capped
    visio:room:<id>:lobby    hash  waiter id → who waits
    visio:rooms              set   rooms that have any of the above

Writes are queued and sent in one pipeline per turn of the event loop, in order: a burst
of changes (everyone's subscription updated at once) costs one round trip, and the
callers never wait for Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
ROOMS = "visio:rooms"
Write = Callable[[Pipeline], None]


def meeting_key(room_id: str) -> str:
    return f"visio:room:{room_id}:meeting"


def chat_key(room_id: str) -> str:
    return f"visio:room:{room_id}:chat"


def lobby_key(room_id: str) -> str:
    return f"visio:room:{room_id}:lobby"


@dataclass
class RoomSnapshot:
    """What Redis holds of one room."""

    meeting: dict[str, Any] | None = None
    participants: list[dict[str, Any]] = field(default_factory=list)
    chat: list[dict[str, Any]] = field(default_factory=list)
    waiters: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.meeting is None and not self.waiters


class RoomState:
    """Writes and reads the rooms' state in Redis."""

    def __init__(self, redis: aioredis.Redis, chat_max: int) -> None:
        self.redis = redis
        self.chat_max = chat_max
        self._queue: list[Write] = []
        self._flush: asyncio.Task[None] | None = None
        self.failed = False  # a write was lost: everything must be written again

    # -- writes (queued) ----------------------------------------------------------------

    def meeting(self, room_id: str, meta: dict[str, Any] | None) -> None:
        def write(pipe: Pipeline) -> None:
            if meta is None:
                pipe.delete(meeting_key(room_id), chat_key(room_id))
            else:
                pipe.hset(meeting_key(room_id), "meta", _dump(meta))
                pipe.sadd(ROOMS, room_id)

        self._enqueue(write)

    def participant(self, room_id: str, participant_id: str, data: dict[str, Any] | None) -> None:
        def write(pipe: Pipeline) -> None:
            if data is None:
                pipe.hdel(meeting_key(room_id), f"p:{participant_id}")
            else:
                pipe.hset(meeting_key(room_id), f"p:{participant_id}", _dump(data))

        self._enqueue(write)

    def chat(self, room_id: str, message: dict[str, Any]) -> None:
        def write(pipe: Pipeline) -> None:
            pipe.rpush(chat_key(room_id), _dump(message))
            pipe.ltrim(chat_key(room_id), -self.chat_max, -1)

        if self.chat_max > 0:
            self._enqueue(write)

    def whole_chat(self, room_id: str, messages: list[dict[str, Any]]) -> None:
        def write(pipe: Pipeline) -> None:
            pipe.delete(chat_key(room_id))
            if messages:
                pipe.rpush(chat_key(room_id), *(_dump(m) for m in messages))

        self._enqueue(write)

    def waiter(self, room_id: str, waiter_id: str, data: dict[str, Any] | None) -> None:
        def write(pipe: Pipeline) -> None:
            if data is None:
                pipe.hdel(lobby_key(room_id), waiter_id)
            else:
                pipe.hset(lobby_key(room_id), waiter_id, _dump(data))
                pipe.sadd(ROOMS, room_id)

        self._enqueue(write)

    def forget(self, room_id: str) -> None:
        """The room has no meeting and nobody waits: nothing of it is kept."""

        def write(pipe: Pipeline) -> None:
            pipe.delete(meeting_key(room_id), chat_key(room_id), lobby_key(room_id))
            pipe.srem(ROOMS, room_id)

        self._enqueue(write)

    def _enqueue(self, write: Write) -> None:
        self._queue.append(write)
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        await asyncio.sleep(0)  # let the rest of this turn's changes join the batch
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for write in batch:
                        write(pipe)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                self.failed = True
                log.warning("room state not saved", extra={"error": str(exc)})

    async def flushed(self) -> None:
        """Wait until every queued write has been sent."""
        while self._flush is not None and not self._flush.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flush)

    # -- reads --------------------------------------------------------------------------

    async def load(self, room_id: str, chat: bool = True) -> RoomSnapshot:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(meeting_key(room_id))
            pipe.lrange(chat_key(room_id), 0, -1) if chat else pipe.lrange(chat_key(room_id), 1, 0)
            pipe.hgetall(lobby_key(room_id))
            meeting, chat_lines, lobby = await pipe.execute()
        snapshot = RoomSnapshot()
        for name, raw in meeting.items():
            value = _load(raw)
            if value is None:
                continue
            if name == "meta":
                snapshot.meeting = value
            elif name.startswith("p:"):
                snapshot.participants.append(value)
        snapshot.chat = [m for m in (_load(raw) for raw in chat_lines) if m is not None]
        snapshot.waiters = [w for w in (_load(raw) for raw in lobby.values()) if w is not None]
        return snapshot

    async def rooms(self) -> list[str]:
        return sorted(await self.redis.smembers(ROOMS))


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _load(raw: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        log.warning("unreadable room state in Redis: ignored")
        return None
    return value if isinstance(value, dict) else None
