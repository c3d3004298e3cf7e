"""HAProxy's PROXY protocol (v1 text, v2 binary), for `proxy_protocol = true`.

A proxy that speaks it (HAProxy's `send-proxy` / `send-proxy-v2`, or any TCP load
balancer) opens each connection with one header naming the client's address, before any
HTTP. uvicorn has no support for it, and no ASGI middleware can see bytes that come
before HTTP, so the header is read at the asyncio level: uvicorn is given, as its HTTP
protocol class, a small protocol that reads the header, then hands the connection to
uvicorn's own protocol with a transport whose peer address is the client's. Everything
after (HTTP, the WebSocket upgrade, TLS is not supported) is uvicorn's as usual.

Only connections from `trusted_proxies` may carry the header. One from them without it
is served as is (an operator's curl on the proxy host); a connection from anywhere else
goes to uvicorn at once, untouched, so that a header it sends is just an invalid HTTP
request (400).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from dataclasses import dataclass
from typing import Any

from visio.proxies.addresses import Network, in_networks, parse_address

log = logging.getLogger(__name__)
V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 header, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
HEADER_TIMEOUT_S = 5.0


class BadHeader(Exception):
    pass


@dataclass(frozen=True)
class Header:
    """A parsed header: `length` bytes long; `source` the client, or None when the proxy
    speaks for itself (v1 UNKNOWN, v2 LOCAL: its own health checks)."""

    length: int
    source: tuple[str, int] | None


NO_HEADER = Header(0, None)


def parse(data: bytes) -> Header | None:
    """The header at the start of `data`: NO_HEADER if there is none, None if more
    bytes are needed to tell; BadHeader if it is malformed."""
    if data.startswith(V2_SIGNATURE):
        return _parse_v2(data)
    if data.startswith(V1_PREFIX):
        return _parse_v1(data)
    if V2_SIGNATURE.startswith(data) or V1_PREFIX.startswith(data):
        return None
    return NO_HEADER


def _parse_v1(data: bytes) -> Header | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise BadHeader("PROXY v1 header without CRLF")
        return None
    fields = data[:end].decode("ascii", errors="replace").split(" ")
    if fields[1:2] == ["UNKNOWN"]:
        return Header(end + 2, None)
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise BadHeader(f"malformed PROXY v1 header {data[:end]!r}")
    address = parse_address(fields[2])
    if address is None or address.version != (4 if fields[1] == "TCP4" else 6):
        raise BadHeader(f"bad source address in PROXY v1 header {fields[2]!r}")
    if not fields[4].isdigit() or not 0 <= int(fields[4]) <= 65535:
        raise BadHeader(f"bad source port in PROXY v1 header {fields[4]!r}")
    return Header(end + 2, (str(address), int(fields[4])))


def _parse_v2(data: bytes) -> Header | None:
    if len(data) < 16:
        return None
    version_command, family, length = struct.unpack("!BBH", data[12:16])
    if version_command >> 4 != 2 or version_command & 0xF not in (0, 1):
        raise BadHeader(f"unsupported PROXY v2 version/command {version_command:#x}")
    if len(data) < 16 + length:
        return None
    total = 16 + length
    if version_command & 0xF == 0:  # LOCAL
        return Header(total, None)
    body = data[16:total]
    if family >> 4 == 1 and len(body) >= 12:  # AF_INET
        source = ipaddress.IPv4Address(body[0:4])
        (port,) = struct.unpack("!H", body[8:10])
    elif family >> 4 == 2 and len(body) >= 36:  # AF_INET6
        source = ipaddress.IPv6Address(body[0:16])
        (port,) = struct.unpack("!H", body[32:34])
    else:  # AF_UNSPEC, AF_UNIX: nothing to say about the client
        return Header(total, None)
    return Header(total, (str(parse_address(str(source))), port))


class PeerTransport:
    """The real transport, except that its peer is the client the proxy named."""

    def __init__(self, transport: asyncio.Transport, peer: tuple[str, int]) -> None:
        self._transport = transport
        self._peer = peer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peer
        if name == "socket":  # uvicorn asks the socket first; make it read peername
            return None
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def protocol_class(inner: type[asyncio.Protocol], trusted: tuple[Network, ...]) -> type:
    """A protocol class for uvicorn.Config(http=…) that reads the PROXY header, then
    hands the connection to `inner` (uvicorn's HTTP protocol)."""

    class ProxyProtocol(_ProxyProtocol):
        inner_class = inner
        networks = trusted

    return ProxyProtocol


class _ProxyProtocol(asyncio.Protocol):
    inner_class: type[asyncio.Protocol]
    networks: tuple[Network, ...]

    def __init__(self, **uvicorn_arguments: Any) -> None:
        self.arguments = uvicorn_arguments
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if not in_networks(parse_address(peer[0] if peer else None), self.networks):
            self._hand_over(self.transport, b"")
            return
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(HEADER_TIMEOUT_S, transport.close)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        try:
            header = parse(self.buffer)
        except BadHeader as exc:
            self._refuse(str(exc))
            return
        if header is None:
            return
        peer = PeerTransport(self.transport, header.source) if header.source else self.transport
        self._hand_over(peer, self.buffer[header.length :])

    def _hand_over(self, transport: asyncio.Transport | PeerTransport, rest: bytes) -> None:
        assert self.transport is not None
        if self.timer is not None:
            self.timer.cancel()
        protocol = self.inner_class(**self.arguments)
        self.transport.set_protocol(protocol)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        if rest:
            protocol.data_received(rest)  # type: ignore[attr-defined]

    def _refuse(self, why: str) -> None:
        assert self.transport is not None
        peer = self.transport.get_extra_info("peername")
        log.warning("connection refused", extra={"reason": why, "peer": str(peer)})
        if self.timer is not None:
            self.timer.cancel()
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
