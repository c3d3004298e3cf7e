"""Rate limits: ratelimit.RateLimiter (frames), ratelimit.SlidingWindowLimiter (requests)."""

from __future__ import annotations

import time

import pytest

from visio import ratelimit
from visio.ratelimit import RateLimiter
from visio.ratelimit import SlidingWindowLimiter as CreationLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ratelimit.time, "monotonic", fake)
    assert ratelimit.time is time
    return fake


def test_burst_then_refusal(clock):
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.allow() for _ in range(4)] == [True, True, True, False]


def test_tokens_refill_at_the_rate(clock):
    limiter = RateLimiter(rate=2.0, burst=3)
    for _ in range(3):
        limiter.allow()
    clock.now += 0.25  # half a token
    assert not limiter.allow()
    clock.now += 0.25  # one token
    assert limiter.allow()
    assert not limiter.allow()


def test_refusals_do_not_consume_tokens(clock):
    limiter = RateLimiter(rate=1.0, burst=1)
    limiter.allow()
    for _ in range(10):
        assert not limiter.allow()
    clock.now += 1.0
    assert limiter.allow()


def test_a_long_pause_refills_only_up_to_the_burst(clock):
    limiter = RateLimiter(rate=10.0, burst=5)
    for _ in range(5):
        limiter.allow()
    clock.now += 3600
    assert sum(limiter.allow() for _ in range(20)) == 5


def test_steady_rate_is_allowed(clock):
    limiter = RateLimiter(rate=16.0, burst=1)
    allowed = 0
    for _ in range(100):
        clock.now += 1 / 16  # exact in binary: no rounding below a whole token
        allowed += limiter.allow()
    assert allowed == 100


def test_creation_limiter_per_client_per_minute(clock):
    limiter = CreationLimiter(per_minute=2)
    assert [limiter.allow("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert limiter.allow("10.0.0.2")


def test_creation_limiter_allows_again_after_a_minute(clock):
    limiter = CreationLimiter(per_minute=2)
    limiter.allow("a")
    clock.now += 30
    limiter.allow("a")
    clock.now += 30
    assert not limiter.allow("a")  # the first one is exactly 60 s old: still counted
    clock.now += 0.1
    assert limiter.allow("a")  # the first one has expired
    assert not limiter.allow("a")


def test_creation_refusals_are_not_counted(clock):
    limiter = CreationLimiter(per_minute=1)
    limiter.allow("a")
    for _ in range(5):
        clock.now += 10
        limiter.allow("a")
    clock.now += 11  # 61 s after the only accepted creation
    assert limiter.allow("a")


def test_creation_limiter_forgets_idle_clients(clock):
    limiter = CreationLimiter(per_minute=1)
    for n in range(10_001):
        limiter.allow(f"10.0.{n // 256}.{n % 256}")
    clock.now += 61
    limiter.allow("fresh")
    assert set(limiter.seen) == {"fresh"}
