"""Which server process holds which room, and which processes are alive.

A room's running state (its meeting and its lobby) is held by exactly one process, its
owner: `visio:room:<id>:owner` names it. Any process may receive a client of any room; it
asks the directory who the owner is and relays the client's frames there (visio.cluster
.relay). When nobody owns the room, or its owner is dead, the first process that asks takes
it, atomically (a compare-and-set in Lua): two processes can never both own a room.

A process is alive while its heartbeat key `visio:proc:<id>` exists (renewed every third
of `process_ttl_s`) *and* it is subscribed to its bus channel. The second test answers at
once when a process is killed: Redis drops the dead process's connection, and with it the
subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from visio.cluster.bus import Bus

log = logging.getLogger(__name__)

# KEYS: the owner key, the epoch. ARGV: the caller, an owner the caller found dead ("" if
# none), the time, "1" when the caller holds the room already (writing its keys again).
# Returns {owner, previous owner when taken from a dead one}, or {"", "recovering"}: Redis
# lost its keys lately, and a free room may still be held by a process that has not yet
# written them again.
CLAIM = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then return {current, ''} end
if current and current ~= ARGV[2] then return {current, ''} end
if ARGV[4] ~= '1' then
  local recovered_at = redis.call('HGET', KEYS[2], 'recovered_at')
  if (not recovered_at) or tonumber(recovered_at) > tonumber(ARGV[3]) then
    return {'', 'recovering'}
  end
end
redis.call('SET', KEYS[1], ARGV[1])
if current then return {ARGV[1], current} end
return {ARGV[1], ''}
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Renews the heartbeat; 1 when it had expired (or never existed): Redis lost our keys.
HEARTBEAT = """
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1 - existed
"""


EPOCH = "visio:epoch"  # hash: id, recovered_at (epoch seconds)


class Recovering(Exception):
    """Redis restarted empty moments ago: rooms cannot be claimed until their owners have
    written their keys again (twice the process TTL)."""


def owner_key(room_id: str) -> str:
    return f"visio:room:{room_id}:owner"


def process_key(process_id: str) -> str:
    return f"visio:proc:{process_id}"


@dataclass(frozen=True)
class Claim:
    owner: str  # the process that owns the room now
    taken_from: str | None = None  # a dead owner we just took it from


class Directory:
    def __init__(self, redis: aioredis.Redis, bus: Bus, process_ttl_s: float) -> None:
        self.redis = redis
        self.bus = bus
        self.process_id = bus.process_id
        self.ttl_ms = int(process_ttl_s * 1000)
        self.draining = False
        self._claim = redis.register_script(CLAIM)
        self._release = redis.register_script(RELEASE)
        self._heartbeat = redis.register_script(HEARTBEAT)
        self._lost: list[Callable[[], Awaitable[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._epoch: str | None = None  # the Redis data this process has known
        self.recovered_at = 0.0

    def on_keys_lost(self, listener: Callable[[], Awaitable[None]]) -> None:
        """Called when our heartbeat had expired: Redis restarted, or we were cut off."""
        self._lost.append(listener)

    async def start(self) -> None:
        await self.check_epoch()
        await self.beat()
        self._task = asyncio.create_task(self._beat_forever(), name="heartbeat")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(process_key(self.process_id))

    async def beat(self) -> bool:
        """Renew our heartbeat; True when Redis had lost it."""
        value = json.dumps({"since": time.time(), "draining": self.draining})
        return bool(
            await self._heartbeat(keys=[process_key(self.process_id)], args=[value, self.ttl_ms])
        )

    async def _beat_forever(self) -> None:
        interval = self.ttl_ms / 3000
        first = True
        while True:
            try:
                await self.check_epoch()
                lost = await self.beat()
            except (RedisError, OSError) as exc:
                log.warning("heartbeat failed", extra={"error": str(exc)})
            else:
                if lost and not first:
                    log.warning("our keys were lost by Redis: writing them again")
                    await self._tell_lost()
                first = False
            await asyncio.sleep(interval)

    async def check_epoch(self) -> None:
        """Notice when Redis lost everything (restarted without persistence): a new epoch
        begins, and nobody claims a free room before its owner could write its keys again."""
        epoch = await self.redis.hgetall(EPOCH)
        if not epoch:
            recovered_at = time.time() + 2 * self.ttl_ms / 1000 if self._epoch else 0.0
            fresh = {"id": secrets.token_hex(8), "recovered_at": recovered_at}
            if await self.redis.hsetnx(EPOCH, "id", fresh["id"]):
                await self.redis.hset(EPOCH, "recovered_at", recovered_at)
            epoch = await self.redis.hgetall(EPOCH)
        if self._epoch is not None and epoch.get("id") != self._epoch:
            log.warning("Redis lost its data: rooms are written again before anyone claims")
        self._epoch = epoch.get("id")
        self.recovered_at = float(epoch.get("recovered_at") or time.time() + 1)

    @property
    def recovering(self) -> bool:
        return time.time() < self.recovered_at

    async def _tell_lost(self) -> None:
        for listener in self._lost:
            try:
                await listener()
            except Exception as exc:  # the heartbeat must go on whatever happens
                log.warning("keys not written again", extra={"error": repr(exc)})

    async def alive(self, process_ids: set[str]) -> set[str]:
        """The processes among these with a heartbeat and a bus subscription."""
        process_ids = set(process_ids)
        if not process_ids:
            return set()
        ordered = sorted(process_ids)
        async with self.redis.pipeline(transaction=False) as pipe:
            for pid in ordered:
                pipe.exists(process_key(pid))
            found = await pipe.execute()
        has_heartbeat = {pid for pid, exists in zip(ordered, found, strict=True) if exists}
        return has_heartbeat & await self.bus.listening(has_heartbeat)

    async def owner(self, room_id: str) -> str | None:
        """The live owner of a room, or None."""
        owner = await self.redis.get(owner_key(room_id))
        if owner is None:
            return None
        if owner == self.process_id:
            return owner
        return owner if await self.alive({owner}) else None

    async def claim(self, room_id: str, held: bool = False) -> Claim:
        """Own the room unless a live process does; who owns it now. `held`: we hold it
        already and write our keys again. Recovering while Redis is recovering."""
        current = await self.redis.get(owner_key(room_id))
        dead = ""
        if current and current != self.process_id and not await self.alive({current}):
            dead = current
        owner, previous = await self._claim(
            keys=[owner_key(room_id), EPOCH],
            args=[self.process_id, dead, time.time(), "1" if held else "0"],
        )
        if not owner:
            raise Recovering(room_id)
        return Claim(owner, previous or None)

    async def release(self, room_id: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._release(keys=[owner_key(room_id)], args=[self.process_id])

    async def still_owned(self, room_ids: list[str]) -> set[str]:
        """Which of these rooms we still own (another process may have taken one while we
        were cut off from Redis)."""
        if not room_ids:
            return set()
        owners = await self.redis.mget([owner_key(r) for r in room_ids])
        return {r for r, o in zip(room_ids, owners, strict=True) if o == self.process_id}
