"""The limits shared by several server processes (visio.cluster.limits), on a real Redis
(Debian's redis-server, started here), with a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from visio.access import Identity
from visio.cluster.limits import RedisBudgets
from visio.config import load_settings
from visio.limits.budgets import Budgets, Charge
from visio.limits.callers import Caller, Limits, Refused
from visio.testing.redis import RedisServer


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0  # wall-clock time: processes share it

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await client.flushdb()
    yield client
    await client.aclose()


def process(redis: aioredis.Redis, clock: Clock, **settings: object) -> Limits:
    """One server process's limits, sharing their budgets through Redis."""
    values = {"joins_per_minute": 3, "address_joins_per_minute": 5, **settings}
    limits = Limits(load_settings(**values), clock=clock, valve_clock=clock)
    limits.share(RedisBudgets(redis, limits.local))
    return limits


def guest(n: int) -> Caller:
    return Caller.of(Identity(guest_key=f"guest-key-{n:010d}"), "192.0.2.1")


async def test_the_same_gcra_as_in_memory(redis):
    """The Lua script and visio.limits.budgets agree on every verdict of a busy sequence."""
    shared, local = RedisBudgets(redis, Budgets()), Budgets()
    now = 1_700_000_000.0
    verdicts = []
    for step in range(300):
        now += (step % 7) * 0.37
        charges = [Charge(f"p{step % 3}", 8), Charge("address", 40, burst_s=8.0)]
        expected = local.take(charges, now)
        got = await shared.take(charges, now)
        assert (got.allowed, got.limit) == (expected.allowed, expected.limit), step
        assert got.wait == pytest.approx(expected.wait, abs=1e-6), step
        verdicts.append(got.limit)
    assert {-1, 0, 1} <= set(verdicts)  # taken, refused by the person, by the address


async def test_two_processes_share_one_persons_budget(redis):
    clock = Clock()
    first, second = process(redis, clock), process(redis, clock)
    await first.join(guest(1), lobby=False)
    await second.join(guest(1), lobby=False)
    await first.join(guest(1), lobby=False)
    with pytest.raises(Refused, match="too many joins; retry in 20 s"):
        await second.join(guest(1), lobby=False)
    await second.join(guest(2), lobby=False)
    await first.join(guest(3), lobby=False)  # the address's fifth
    with pytest.raises(Refused, match="from your network"):
        await second.join(guest(4), lobby=False)
    assert second.stats()["joins"]["refused"] == {"person": 1, "address": 1, "busy": 0}


async def test_budgets_expire_in_redis_once_full_again(redis):
    clock = Clock()
    limits = process(redis, clock)
    await limits.join(guest(1), lobby=False)
    ttls = [await redis.pttl(key) for key in await redis.keys("visio:limit:*")]
    assert len(ttls) == 2  # the person's and the address's
    assert all(0 < ttl <= 20_000 for ttl in ttls)  # one join: full again in 20 s, 12 s


async def test_without_redis_each_process_keeps_limiting_on_its_own(redis_server, caplog):
    clock = Clock()
    client = aioredis.Redis.from_url(
        redis_server.url, decode_responses=True, socket_connect_timeout=0.5
    )
    limits = process(client, clock)
    redis_server.stop()
    try:
        for _ in range(3):
            await limits.join(guest(1), lobby=False)
        with pytest.raises(Refused, match="too many joins"):
            await limits.join(guest(1), lobby=False)
        warnings = [r for r in caplog.records if r.getMessage().startswith("redis unavailable")]
        assert len(warnings) == 1  # said once, not per join
    finally:
        await client.aclose()
        redis_server.start()
