"""Who may join, knock at a lobby or create a room, and how often: limits that stop
abuse, not agents.

- **Per person.** A signed-in user, else the browser's guest key, has a small budget
  (`joins_per_minute`…): one script looping joins is refused, whoever else shares its
  address.
- **Per address** (one IPv4 address, one IPv6 /64): a budget sized for an
  administration's NAT, where thousands of agents share one address at 9:00
  (`address_joins_per_minute`…). Every request counts there too, so that a client
  making up a new guest key each time gains nothing. An address spends at most a tenth
  of its minute's budget at once (10 requests at least): one script cannot take all the
  joins of a process (the valve below) for seconds, while a NAT's flow at 9:00 goes
  through.
  `limit_networks` gives an administration's egress networks a multiple of it, or no
  address limit at all (0).
- **Per process**, a safety valve: beyond `max_joins_per_second` new joins, the server
  answers "busy, retry in N s", N drawn at random over a span that grows with the crowd,
  so that the crowd comes back spread out rather than all at once.

Only joins that reach an existing room count (a mistyped link costs nothing), and taking
one's place back with a resume token never does. With several server processes the
budgets live in Redis (visio.cluster.limits), shared by every process; the valve stays
per process, since it protects this process and its share of the media servers.

Refusals are counted (`stats()`) and logged once per client and minute, not per attempt.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from visio import metrics
from visio.access import Identity
from visio.config import Settings
from visio.limits.budgets import PERIOD_S, Budgets, Charge, RateLimiter, Verdict
from visio.proxies.addresses import Network, address_key, parse_address, parse_network

log = logging.getLogger(__name__)
MAX_RETRY_S = 30.0
ADDRESS_BURST = 0.1  # of an address's budget for a minute, at once
ADDRESS_BURST_MIN = 10  # requests (or the whole budget if smaller)


@dataclass(frozen=True)
class Caller:
    """Who makes a request, as the limits see them."""

    person: str | None  # "user:…" or "guest:…" (a digest), None for a cookie-less client
    address: str  # visio.proxies.addresses.address_key
    label: str  # for logs: the user id, a guest key's digest, or the address

    @classmethod
    def of(cls, identity: Identity, host: str | None) -> Caller:
        address = address_key(host)
        if identity.user_id:
            return cls(f"user:{_digest(identity.user_id)}", address, f"user:{identity.user_id}")
        if identity.guest_key:
            person = f"guest:{_digest(identity.guest_key)}"
            return cls(person, address, person)
        return cls(None, address, f"address:{address}")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


class Refused(Exception):
    def __init__(self, code: Literal["rate_limited", "busy"], message: str, retry_in: float):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_in = retry_in


@dataclass(frozen=True)
class Rule:
    name: str  # "joins", "lobby_requests", "room_creations"
    per_person: int
    per_address: int
    too_many: str  # "too many joins"


class SharedBudgets(Protocol):
    async def take(self, charges: Sequence[Charge], now: float) -> Verdict: ...


class Limits:
    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        valve_clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.clock = clock
        self.joins = Rule(
            "joins", settings.joins_per_minute, settings.address_joins_per_minute, "too many joins"
        )
        self.lobby = Rule(
            "lobby_requests",
            settings.lobby_requests_per_minute,
            settings.address_lobby_requests_per_minute,
            "too many lobby requests",
        )
        self.creations = Rule(
            "room_creations",
            settings.room_creations_per_minute,
            settings.address_room_creations_per_minute,
            "too many rooms created",
        )
        # The most specific network wins: an allow-listed /32 inside a bigger network.
        self.networks: list[tuple[Network, float]] = sorted(
            ((parse_network(cidr), factor) for cidr, factor in settings.limit_networks.items()),
            key=lambda item: item[0].prefixlen,
            reverse=True,
        )
        self.valve = JoinValve(settings.max_joins_per_second, valve_clock, rng)
        self.local = Budgets()
        self.shared: SharedBudgets | None = None
        self.counts: Counter[tuple[str, str]] = Counter()
        self.refusals = RefusalLog()

    def share(self, budgets: SharedBudgets) -> None:
        """Several server processes: the budgets are theirs together (Redis)."""
        self.shared = budgets

    async def join(self, caller: Caller, *, lobby: bool) -> None:
        """A join that reached an existing room and takes nobody's place back; Refused if
        it must not go on. `lobby`: it will wait in the lobby, a lobby request as well."""
        retry_in = self.valve.take()
        if retry_in is not None:
            self._refused(self.joins, "busy", caller, retry_in)
            raise Refused("busy", f"the server is busy; retry in {math.ceil(retry_in)} s", retry_in)
        rules = [self.joins, self.lobby] if lobby else [self.joins]
        try:
            await self._spend(rules, caller)
        except Refused:
            self.valve.give_back()
            raise

    async def room_creation(self, caller: Caller) -> None:
        await self._spend([self.creations], caller)

    async def connection_test(self, caller: Caller) -> None:
        """A connection test hands out TURN credentials as a join does: it counts as one."""
        await self._spend([self.joins], caller)

    async def _spend(self, rules: list[Rule], caller: Caller) -> None:
        charged: list[tuple[Rule, str]] = []
        charges: list[Charge] = []
        factor = self.address_factor(caller.address)
        for rule in rules:
            if caller.person is not None:
                charged.append((rule, "person"))
                charges.append(Charge(f"{rule.name}:{caller.person}", rule.per_person))
            if factor > 0:
                charged.append((rule, "address"))
                per_minute = rule.per_address * factor
                key = f"{rule.name}:{caller.address}"
                charges.append(Charge(key, per_minute, address_burst_s(per_minute)))
        verdict = await self._take(charges)
        if verdict.allowed:
            for rule in rules:
                self.counts[(rule.name, "accepted")] += 1
            return
        rule, scope = charged[verdict.limit]
        self._refused(rule, scope, caller, verdict.wait)
        where = " from your network" if scope == "address" else ""
        message = f"{rule.too_many}{where}; retry in {math.ceil(verdict.wait)} s"
        raise Refused("rate_limited", message, verdict.wait)

    async def _take(self, charges: list[Charge]) -> Verdict:
        if not charges:
            return Verdict()
        if self.shared is not None:
            return await self.shared.take(charges, self.clock())
        return self.local.take(charges, self.clock())

    def address_factor(self, address: str) -> float:
        """How many times the per-address budgets this address gets (0: unlimited)."""
        found = parse_address(address.split("/")[0])
        for network, factor in self.networks:
            if found is not None and found.version == network.version and found in network:
                return factor
        return 1.0

    def _refused(self, rule: Rule, scope: str, caller: Caller, retry_in: float) -> None:
        self.counts[(rule.name, scope)] += 1
        metrics.LIMITED.labels(rule.name, scope).inc()
        # A crowd is one line, not one each; an address, whatever keys its clients make up.
        who = {"busy": "*", "address": f"address:{caller.address}"}.get(scope, caller.label)
        if self.refusals.first_in_window(f"{who} {rule.name} {scope}", self.clock()):
            log.warning(
                f"{rule.name} refused",
                extra={"who": who, "limit": scope, "retry_in": round(retry_in, 1)},
            )

    def stats(self) -> dict[str, Any]:
        """Accepted and refused requests since start, by kind and by limit."""
        out: dict[str, Any] = {}
        for rule in (self.joins, self.lobby, self.creations):
            out[rule.name] = {
                "accepted": self.counts[(rule.name, "accepted")],
                "refused": {
                    scope: self.counts[(rule.name, scope)]
                    for scope in ("person", "address", "busy")
                    if scope != "busy" or rule is self.joins
                },
            }
        return out


def address_burst_s(per_minute: float) -> float:
    """How many seconds' worth of its budget an address may spend at once."""
    burst = max(per_minute * ADDRESS_BURST, min(per_minute, ADDRESS_BURST_MIN))
    return burst * PERIOD_S / per_minute


class JoinValve:
    """At most `per_second` new joins a second in this process, in bursts of a second's
    worth; beyond that, how long to wait. The wait is drawn at random between 1 s and a
    span that grows with the joins refused lately (their backlog drains at `per_second`),
    so that a crowd told to come back returns at about the rate that can be taken."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.per_second = per_second
        self.bucket = RateLimiter(per_second, max(1, round(per_second)), clock)
        self.clock = clock
        self.rng = rng
        self.backlog = 0.0
        self.stamp = clock()

    def take(self) -> float | None:
        """None: go on. Otherwise the seconds to wait before trying again."""
        if self.bucket.allow():
            return None
        now = self.clock()
        self.backlog = max(0.0, self.backlog - (now - self.stamp) * self.per_second) + 1
        self.stamp = now
        span = 1.0 + self.backlog / self.per_second
        return min(MAX_RETRY_S, 1.0 + self.rng() * span)

    def give_back(self) -> None:
        self.bucket.give_back()


class RefusalLog:
    """Whether a refusal is a client's first in the current minute (the one worth logging).
    Entries are in the order their windows started, so old ones are forgotten from the
    front as in visio.limits.budgets.Budgets."""

    def __init__(self) -> None:
        self.windows: OrderedDict[str, float] = OrderedDict()

    def first_in_window(self, who: str, now: float) -> bool:
        while self.windows:
            oldest, started = next(iter(self.windows.items()))
            if now - started < PERIOD_S:
                break
            del self.windows[oldest]
        if who in self.windows:
            return False
        self.windows[who] = now
        return True
