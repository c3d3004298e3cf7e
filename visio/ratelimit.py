"""Limits: frames per connection, and costly requests (room creations, joins, lobby
requests) per client."""

from __future__ import annotations

import time
from collections import defaultdict, deque

FORGET_AFTER_CLIENTS = 10_000


class SlidingWindowLimiter:
    """At most `per_minute` accepted requests per client over any 60-second window.

    Refused requests are not counted, so a client that keeps trying gets in again as soon
    as its oldest accepted request is a minute old.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.seen: defaultdict[str, deque[float]] = defaultdict(deque)

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        if len(self.seen) > FORGET_AFTER_CLIENTS:
            self._forget_idle(now)
        stamps = self.seen[client]
        while stamps and now - stamps[0] > 60:
            stamps.popleft()
        if len(stamps) >= self.per_minute:
            return False
        stamps.append(now)
        return True

    def _forget_idle(self, now: float) -> None:
        idle = [key for key, stamps in self.seen.items() if not stamps or now - stamps[-1] > 60]
        for key in idle:
            del self.seen[key]


class RateLimiter:
    """A token bucket: `rate` frames per second, bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
