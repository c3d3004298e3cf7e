"""Connections a client holds open: capped per address, and timed out before they say
anything (audit L2).

- **Per address** (`max_connections_per_address`, times the `limit_networks` factor of
  the address, like the other per-address limits): sized for an administration's NAT,
  where every agent holds one WebSocket. Counted twice, where the client is known:
  - at the TCP level (`gate`, around uvicorn's protocol), for every connection whose
    peer is not a trusted proxy: half-open HTTP connections and idle sockets included;
  - for WebSockets, at the ASGI level, on the client address that `trusted_proxies`
    resolved (`ConnectionCounts.hold`): behind a proxy, the TCP peer is the proxy itself.
- **Headers in time**: a connection whose first request's headers are not complete
  within `http_header_timeout_s` is closed (uvicorn has no such timeout; later requests
  on a kept-alive connection are uvicorn's, `timeout_keep_alive`).
- uvicorn's own `limit_concurrency` (`max_connections`) answers 503 past the process's
  total.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from visio import metrics
from visio.proxies.addresses import Network, address_key, in_networks, parse_address

log = logging.getLogger(__name__)
HEADERS_END = b"\r\n\r\n"
LOG_EVERY_S = 60.0


class ConnectionCounts:
    """Connections held per address key, against a cap (a factor per address: 0 = none)."""

    def __init__(self, cap: int, factor: Callable[[str], float], kind: str) -> None:
        self.cap = cap
        self.factor = factor
        self.kind = kind  # "tcp" or "websocket", for metrics and logs
        self.held: Counter[str] = Counter()
        self.refused = 0
        self._logged: dict[str, float] = {}

    def take(self, key: str) -> bool:
        factor = self.factor(key)
        if factor > 0 and self.held[key] >= self.cap * factor:
            self.refused += 1
            metrics.LIMITED.labels(f"{self.kind}_connection", "address").inc()
            now = time.monotonic()
            if now - self._logged.get(key, -LOG_EVERY_S) >= LOG_EVERY_S:
                self._logged[key] = now
                log.warning("connections refused", extra={"who": key, "kind": self.kind})
            return False
        self.held[key] += 1
        return True

    def give_back(self, key: str) -> None:
        self.held[key] -= 1
        if self.held[key] <= 0:
            del self.held[key]

    @contextlib.contextmanager
    def hold(self, host: str | None) -> Iterator[bool]:
        """`with counts.hold(host) as allowed:` a slot for the connection's lifetime."""
        key = address_key(host)
        allowed = self.take(key)
        try:
            yield allowed
        finally:
            if allowed:
                self.give_back(key)


def gate(
    inner: type[asyncio.Protocol],
    counts: ConnectionCounts,
    trusted: tuple[Network, ...],
    header_timeout_s: float,
) -> type:
    """A protocol class for uvicorn.Config(http=…): counts and times the connection, and
    passes everything to `inner` (uvicorn's protocol, or the PROXY protocol reader)."""

    class Gate(_Gate):
        inner_class = inner

    Gate.counts = counts
    Gate.trusted = trusted
    Gate.header_timeout_s = header_timeout_s
    return Gate


class _GatedTransport:
    """The real transport, except that a protocol switch (uvicorn's WebSocket upgrade, the
    PROXY reader's hand-over) keeps the gate in front of the new protocol."""

    def __init__(self, transport: asyncio.Transport, owner: _Gate) -> None:
        self._transport = transport
        self._owner = owner

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._owner.inner = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._owner.inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Gate(asyncio.Protocol):
    inner_class: type[asyncio.Protocol]
    counts: ConnectionCounts
    trusted: tuple[Network, ...]
    header_timeout_s: float

    def __init__(self, **uvicorn_arguments: Any) -> None:
        self.inner: asyncio.Protocol = self.inner_class(**uvicorn_arguments)
        self.key: str | None = None
        self.started = False
        self.timer: asyncio.TimerHandle | None = None
        self.tail = b""  # the last bytes seen, until the first headers end

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else None
        if not in_networks(parse_address(host), self.trusted):
            key = address_key(host)
            if not self.counts.take(key):
                transport.abort()  # type: ignore[attr-defined]
                return
            self.key = key
        self.started = True
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.header_timeout_s, transport.abort)  # type: ignore[attr-defined]
        self.inner.connection_made(_GatedTransport(transport, self))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self.timer is not None:
            seen = self.tail + data
            if HEADERS_END in seen:
                self.timer.cancel()
                self.timer = None
                self.tail = b""
            else:
                self.tail = seen[-3:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.key is not None:
            self.counts.give_back(self.key)
            self.key = None
        if self.started:
            self.inner.connection_lost(exc)
