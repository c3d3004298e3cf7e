"""The per-person and per-address budgets of visio.limits, shared by every server process
through Redis.

Each budget is one Redis string, its GCRA theoretical arrival time (visio.limits.budgets),
expiring when its bucket is full again. One Lua script checks every budget of a request
and spends them all or none, atomically: two processes cannot both take the last join of
a minute. The time comes from the calling process (processes are assumed to keep their
clocks in sync with NTP; a skew of a second moves a budget by a second).

When Redis does not answer, the process falls back to its own budgets, and says so
once a minute: limits per process are better than refusing every join.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from visio.limits.budgets import PERIOD_S, Budgets, Charge, Verdict

log = logging.getLogger(__name__)
PREFIX = "visio:limit:"

# KEYS: the budgets. ARGV[1]: now (s). ARGV[2i], ARGV[2i + 1]: seconds per request of
# KEYS[i], and the seconds' worth it may spend at once. Returns "wait index" (index from
# 0), or "0 -1" when every budget was spent.
GCRA = """
local now = tonumber(ARGV[1])
local wait, limit = 0, -1
local new = {}
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  new[i] = tat + tonumber(ARGV[2 * i])
  local late = new[i] - tonumber(ARGV[2 * i + 1]) - now
  if late > wait and late > 1e-6 then wait, limit = late, i - 1 end
end
if limit >= 0 then return string.format('%.17g %d', wait, limit) end
for i, key in ipairs(KEYS) do
  local ms = math.ceil((new[i] - now) * 1000)
  redis.call('SET', key, string.format('%.17g', new[i]), 'PX', ms)
end
return '0 -1'
"""


class RedisBudgets:
    def __init__(self, redis: aioredis.Redis, fallback: Budgets) -> None:
        self.script = redis.register_script(GCRA)
        self.fallback = fallback
        self._warned_at = -PERIOD_S

    async def take(self, charges: Sequence[Charge], now: float) -> Verdict:
        keys = [PREFIX + charge.key for charge in charges]
        args = [repr(now)]
        for charge in charges:
            args += [repr(charge.interval), repr(charge.burst_s)]
        try:
            answer = await self.script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            self._warn(exc)
            return self.fallback.take(charges, now)
        text = answer.decode() if isinstance(answer, bytes) else str(answer)
        wait, limit = text.split()
        return Verdict(float(wait), int(limit))

    def _warn(self, exc: Exception) -> None:
        if time.monotonic() - self._warned_at >= PERIOD_S:
            self._warned_at = time.monotonic()
            log.warning("redis unavailable: limits are per process", extra={"error": repr(exc)})
