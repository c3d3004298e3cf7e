"""Limits, with a fake clock: the token bucket of a connection's frames
(ratelimit.RateLimiter), per-key budgets (ratelimit.Budgets, GCRA), and the limits of
joins, lobby requests and room creations per person, per address and per process
(visio.limits)."""

from __future__ import annotations

import logging
import time

import pytest

from visio.access import Identity
from visio.config import load_settings
from visio.limits.budgets import Budgets, Charge, RateLimiter
from visio.limits.callers import Caller, JoinValve, Limits, Refused
from visio.proxies.addresses import address_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


# -- the token bucket of one connection's frames ---------------------------------------


def test_burst_then_refusal(clock):
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.allow() for _ in range(4)] == [True, True, True, False]


def test_tokens_refill_at_the_rate(clock):
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        limiter.allow()
    clock.now += 0.25  # half a token
    assert not limiter.allow()
    clock.now += 0.25  # one token
    assert limiter.allow()
    assert not limiter.allow()


def test_refusals_do_not_consume_tokens(clock):
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    limiter.allow()
    for _ in range(10):
        assert not limiter.allow()
    clock.now += 1.0
    assert limiter.allow()


def test_a_long_pause_refills_only_up_to_the_burst(clock):
    limiter = RateLimiter(rate=10.0, burst=5, clock=clock)
    for _ in range(5):
        limiter.allow()
    clock.now += 3600
    assert sum(limiter.allow() for _ in range(20)) == 5


def test_steady_rate_is_allowed(clock):
    limiter = RateLimiter(rate=16.0, burst=1, clock=clock)
    allowed = 0
    for _ in range(100):
        clock.now += 1 / 16  # exact in binary: no rounding below a whole token
        allowed += limiter.allow()
    assert allowed == 100


# -- per-key budgets (GCRA) ---------------------------------------------------------------


def test_a_minutes_worth_at_once_then_one_per_interval(clock):
    budgets = Budgets()
    charge = [Charge("a", per_minute=3)]
    assert [budgets.take(charge, clock()).allowed for _ in range(4)] == [True] * 3 + [False]
    assert budgets.take(charge, clock()).wait == pytest.approx(20.0)  # 60 s / 3
    clock.now += 19.9
    assert not budgets.take(charge, clock()).allowed
    clock.now += 0.1
    assert budgets.take(charge, clock()).allowed
    assert not budgets.take(charge, clock()).allowed


def test_budgets_are_per_key(clock):
    budgets = Budgets()
    assert budgets.take([Charge("a", 1)], clock()).allowed
    assert not budgets.take([Charge("a", 1)], clock()).allowed
    assert budgets.take([Charge("b", 1)], clock()).allowed


def test_refused_requests_spend_nothing(clock):
    budgets = Budgets()
    budgets.take([Charge("a", 1)], clock())
    for _ in range(5):
        clock.now += 10
        assert not budgets.take([Charge("a", 1)], clock()).allowed
    clock.now += 10  # 60 s after the only accepted request
    assert budgets.take([Charge("a", 1)], clock()).allowed


def test_all_charges_or_none_and_the_verdict_names_the_one_that_refused(clock):
    budgets = Budgets()
    person, address = Charge("person", 2), Charge("address", 100)
    budgets.take([person, address], clock())
    budgets.take([person, address], clock())
    verdict = budgets.take([person, address], clock())
    assert (verdict.allowed, verdict.limit) == (False, 0)
    assert verdict.wait == pytest.approx(30.0)
    # The address budget was not spent by the refused request: 98 more fit.
    assert sum(budgets.take([address], clock()).allowed for _ in range(100)) == 98


def test_idle_keys_are_forgotten(clock):
    budgets = Budgets()
    for n in range(1000):
        budgets.take([Charge(f"10.0.{n // 256}.{n % 256}", 30)], clock())
    assert len(budgets) == 1000
    clock.now += 2.0  # one request of 30 a minute: each bucket is full again after 2 s
    budgets.take([Charge("fresh", 30)], clock())
    assert set(budgets.tats) == {"fresh"}


def test_many_clients_cost_each_request_the_same(clock):
    """Audit H1: past 10 000 clients, every request scanned them all (quadratic).

    50 000 distinct clients in one minute, none of them idle yet: the old limiter did
    about 40 000 x 30 000 dict visits here (minutes); forgetting from the oldest end
    makes it a fraction of a second."""
    budgets = Budgets()
    started = time.perf_counter()
    for n in range(50_000):
        clock.now += 0.001
        assert budgets.take([Charge(f"guest:{n}", 1)], clock()).allowed
    assert time.perf_counter() - started < 5.0
    assert len(budgets) == 50_000  # all charged within the last minute: kept


# -- who is calling ----------------------------------------------------------------------


def test_a_signed_in_user_is_their_account_wherever_they_are():
    alice = Identity(user_id="u1", guest_key="k" * 20)
    here, there = Caller.of(alice, "192.0.2.1"), Caller.of(alice, "198.51.100.9")
    assert here.person == there.person and here.person.startswith("user:")
    assert here.address != there.address


def test_a_guest_is_their_browsers_key_and_a_script_its_address():
    guest = Caller.of(Identity(guest_key="g" * 20), "192.0.2.1")
    assert guest.person.startswith("guest:") and "g" * 20 not in guest.person
    script = Caller.of(Identity(), "192.0.2.1")
    assert (script.person, script.address) == (None, "192.0.2.1")


def test_ipv6_addresses_count_per_64():
    """Audit H1: one subscriber's /64 gave unlimited buckets."""
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("203.0.113.5") == "203.0.113.5"
    assert address_key("not an address") == address_key(None) == "?"


# -- the limits of joins, lobby requests and room creations ------------------------------


def limits(clock: Clock, **settings: object) -> Limits:
    values = {
        "joins_per_minute": 3,
        "address_joins_per_minute": 10,
        "lobby_requests_per_minute": 2,
        "address_lobby_requests_per_minute": 4,
        "room_creations_per_minute": 2,
        "address_room_creations_per_minute": 5,
        "max_joins_per_second": 1000,
        **settings,
    }
    return Limits(load_settings(**values), clock=clock, valve_clock=clock, rng=lambda: 0.5)


def guest(n: int, address: str = "192.0.2.1") -> Caller:
    return Caller.of(Identity(guest_key=f"guest-key-{n:010d}"), address)


async def joins_allowed(limits: Limits, caller: Caller, attempts: int, lobby=False) -> int:
    allowed = 0
    for _ in range(attempts):
        try:
            await limits.join(caller, lobby=lobby)
            allowed += 1
        except Refused:
            pass
    return allowed


async def test_a_person_looping_joins_is_refused_and_told_when_to_retry(clock):
    limited = limits(clock)
    assert await joins_allowed(limited, guest(1), 3) == 3
    with pytest.raises(Refused) as refused:
        await limited.join(guest(1), lobby=False)
    assert refused.value.code == "rate_limited"
    assert refused.value.message == "too many joins; retry in 20 s"
    assert refused.value.retry_in == pytest.approx(20.0)
    assert await joins_allowed(limited, guest(2), 1) == 1  # someone else, same address


async def test_a_connection_test_counts_as_a_join(clock):
    """It hands out TURN credentials as a join does: looping it does not mint more."""
    limited = limits(clock)
    for _ in range(2):
        await limited.connection_test(guest(1))
    assert await joins_allowed(limited, guest(1), 3) == 1
    with pytest.raises(Refused, match="too many joins; retry in"):
        await limited.connection_test(guest(1))


async def test_people_sharing_an_address_share_its_larger_budget(clock):
    limited = limits(clock)
    allowed = sum([await joins_allowed(limited, guest(n), 1) for n in range(12)])
    assert allowed == 10
    with pytest.raises(Refused, match="too many joins from your network; retry in 6 s"):
        await limited.join(guest(99), lobby=False)
    assert await joins_allowed(limited, guest(99, "192.0.2.2"), 1) == 1


async def test_a_new_guest_key_each_time_gains_nothing_over_the_address(clock):
    limited = limits(clock)
    allowed = sum([await joins_allowed(limited, guest(n), 1) for n in range(50)])
    assert allowed == 10


async def test_cookie_less_clients_count_on_their_address(clock):
    limited = limits(clock)
    script = Caller.of(Identity(), "192.0.2.1")
    assert await joins_allowed(limited, script, 20) == 10


async def test_an_administrations_network_gets_a_multiple_or_no_address_limit(clock):
    limited = limits(
        clock, limit_networks={"198.51.100.0/24": 50, "198.51.100.7/32": 0, "2001:db8::/48": 20}
    )
    nat = [guest(n, "198.51.100.1") for n in range(60)]  # 500 a minute, 50 at once
    assert sum([await joins_allowed(limited, g, 1) for g in nat]) == 50
    allow_listed = [guest(n, "198.51.100.7") for n in range(200)]
    assert sum([await joins_allowed(limited, g, 1) for g in allow_listed]) == 200
    # The person's own limit still holds on an allow-listed address.
    assert await joins_allowed(limited, guest(1000, "198.51.100.7"), 5) == 3
    ipv6 = [guest(2000 + n, f"2001:db8:0:{n}::1") for n in range(25)]  # 25 /64s of a /48
    assert sum([await joins_allowed(limited, g, 1) for g in ipv6]) == 25
    same_64 = [guest(3000 + n, f"2001:db8:0:1::{n + 100:x}") for n in range(30)]
    assert sum([await joins_allowed(limited, g, 1) for g in same_64]) == 19  # 20 at once


async def test_an_address_spends_a_tenth_of_its_minute_at_once(clock):
    """So that one script with made-up guest keys cannot take a whole process's joins (the
    valve) for seconds: a NAT's agents arrive over minutes, not in one second."""
    limited = limits(clock, address_joins_per_minute=1000)
    crowd = [guest(n) for n in range(150)]
    assert sum([await joins_allowed(limited, g, 1) for g in crowd]) == 100
    with pytest.raises(Refused, match="from your network; retry in 1 s") as refused:
        await limited.join(guest(1000), lobby=False)
    assert refused.value.retry_in == pytest.approx(0.06)  # 1000 a minute
    clock.now += 6.0
    assert sum([await joins_allowed(limited, guest(2000 + n), 1) for n in range(150)]) == 100


async def test_budgets_come_back_with_time(clock):
    limited = limits(clock)
    await joins_allowed(limited, guest(1), 3)
    clock.now += 20
    assert await joins_allowed(limited, guest(1), 3) == 1


async def test_a_lobby_request_is_a_join_and_a_lobby_request(clock):
    limited = limits(clock, joins_per_minute=100)
    assert await joins_allowed(limited, guest(1), 5, lobby=True) == 2
    with pytest.raises(Refused, match="too many lobby requests; retry in 30 s"):
        await limited.join(guest(1), lobby=True)
    assert await joins_allowed(limited, guest(1), 1) == 1  # entering a public room still works
    assert limited.stats()["joins"]["accepted"] == 3
    assert limited.stats()["lobby_requests"]["refused"] == {"person": 4, "address": 0}


async def test_room_creations_per_person_and_per_address(clock):
    limited = limits(clock)
    await limited.room_creation(guest(1))
    await limited.room_creation(guest(1))
    with pytest.raises(Refused, match="too many rooms created; retry in 30 s"):
        await limited.room_creation(guest(1))
    for n in (2, 3, 4):
        await limited.room_creation(guest(n))
    with pytest.raises(Refused, match="too many rooms created from your network"):
        await limited.room_creation(guest(5))


# -- the safety valve --------------------------------------------------------------------


async def test_beyond_the_process_capacity_joins_are_told_busy_with_a_retry_time(clock):
    limited = limits(clock, max_joins_per_second=5, address_joins_per_minute=1000)
    assert sum([await joins_allowed(limited, guest(n), 1) for n in range(5)]) == 5
    with pytest.raises(Refused) as refused:
        await limited.join(guest(6), lobby=False)
    assert refused.value.code == "busy"
    assert refused.value.message.startswith("the server is busy; retry in ")
    assert 1.0 <= refused.value.retry_in <= 30.0
    clock.now += 0.2  # one more join a fifth of a second later
    assert await joins_allowed(limited, guest(7), 2) == 1
    assert limited.stats()["joins"]["refused"]["busy"] == 2


async def test_a_join_refused_by_its_budget_leaves_the_valve_to_others(clock):
    limited = limits(clock, max_joins_per_second=3, address_joins_per_minute=1000)
    await joins_allowed(limited, guest(1), 3)  # spends the valve's three tokens
    clock.now += 1.0
    assert await joins_allowed(limited, guest(1), 10) == 0  # its own limit: no token taken
    assert sum([await joins_allowed(limited, guest(n), 1) for n in range(2, 6)]) == 3


def test_the_crowd_told_busy_is_spread_over_a_span_that_grows_with_it(clock):
    draws = iter([0.0, 1.0] * 1000)
    valve = JoinValve(per_second=10, clock=clock, rng=lambda: next(draws))
    for _ in range(10):
        assert valve.take() is None
    waits = [valve.take() for _ in range(200)]
    assert min(waits) == 1.0  # never sooner than a second
    assert waits[1] == pytest.approx(1.0 + 1.0 + 2 / 10)  # span = 1 + backlog / rate
    assert waits[-1] == pytest.approx(min(30.0, 1.0 + 1.0 + 200 / 10))
    clock.now += 100  # the backlog has drained
    valve.take()  # a token again
    for _ in range(10):
        valve.take()
    assert valve.take() <= 1.0 + 1.0 + 2 / 10


async def test_refusals_are_logged_once_per_client_and_minute(clock, caplog):
    limited = limits(clock, max_joins_per_second=5)
    caplog.set_level(logging.WARNING, logger="visio.limits.callers")
    await joins_allowed(limited, guest(1), 20)
    await joins_allowed(limited, guest(2), 20)
    clock.now += 0.5
    await joins_allowed(limited, guest(3), 20)
    lines = [(r.getMessage(), r.who, r.limit) for r in caplog.records]
    assert lines == [
        ("joins refused", guest(1).label, "person"),
        ("joins refused", "*", "busy"),  # a crowd is one line, whoever is in it
    ]
    clock.now += 60
    await joins_allowed(limited, guest(1), 5)
    assert len(caplog.records) == 3
