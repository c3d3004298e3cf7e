"""Rate limiting primitives: a token bucket (frames of one connection) and per-key budgets
(requests per minute of many clients, visio.limits).

Budgets use GCRA, the generic cell rate algorithm: a key that is `per_minute` requests a
minute may spend `burst_s` seconds' worth at once (by default a whole minute's), then one
every 60/per_minute seconds. Each key is one number, its theoretical arrival time (TAT):
when the key's bucket would be full again. So a refusal can say exactly when to retry,
the same state fits in Redis (visio.cluster.limits), and a key whose TAT has passed holds
nothing worth keeping.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PERIOD_S = 60.0
EPSILON_S = 1e-6  # float noise: a request due "now" is on time


@dataclass(frozen=True)
class Charge:
    """One request against the budget `key`, which allows `per_minute` a minute, and
    `burst_s` seconds' worth of them at once."""

    key: str
    per_minute: float
    burst_s: float = PERIOD_S

    @property
    def interval(self) -> float:
        return PERIOD_S / self.per_minute


@dataclass(frozen=True)
class Verdict:
    """`wait` 0: every charge was taken. Otherwise none was, and charge number `limit`
    is the one that allows another request only in `wait` seconds."""

    wait: float = 0.0
    limit: int = -1

    @property
    def allowed(self) -> bool:
        return self.wait <= 0


def gcra(
    tats: Sequence[float | None], charges: Sequence[Charge], now: float
) -> tuple[Verdict, list[float]]:
    """All charges or none: the verdict, and the new TAT of each key if they are taken."""
    verdict = Verdict()
    new_tats = []
    for index, (tat, charge) in enumerate(zip(tats, charges, strict=True)):
        new_tat = max(tat or now, now) + charge.interval
        wait = new_tat - charge.burst_s - now
        if wait > max(verdict.wait, EPSILON_S):
            verdict = Verdict(wait, index)
        new_tats.append(new_tat)
    return verdict, new_tats


class Budgets:
    """Per-key budgets in this process.

    Keys are kept in the order they were last charged. A key charged more than a minute
    ago has its bucket full again (its TAT is past: TAT <= last charge + burst_s <= a
    minute), so forgetting starts from the oldest
    and stops at the first key still in use: each call does O(1) work on average however
    many clients there are, and memory holds only the keys charged in the last minute.
    """

    def __init__(self) -> None:
        self.tats: OrderedDict[str, float] = OrderedDict()

    def take(self, charges: Sequence[Charge], now: float) -> Verdict:
        self._forget_idle(now)
        verdict, new_tats = gcra([self.tats.get(c.key) for c in charges], charges, now)
        if verdict.allowed:
            for charge, tat in zip(charges, new_tats, strict=True):
                self.tats[charge.key] = tat
                self.tats.move_to_end(charge.key)
        return verdict

    def _forget_idle(self, now: float) -> None:
        while self.tats:
            key, tat = next(iter(self.tats.items()))
            if tat > now:
                return
            del self.tats[key]

    def __len__(self) -> int:
        return len(self.tats)


class RateLimiter:
    """A token bucket: `rate` frames per second, bursts of `burst`."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.stamp = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def give_back(self) -> None:
        """An allowed request that did not happen after all."""
        self.tokens = min(self.burst, self.tokens + 1)

    def wait(self) -> float:
        """Seconds until the next request would be allowed (0: now)."""
        now = self.clock()
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        return max(0.0, (1 - tokens) / self.rate)
