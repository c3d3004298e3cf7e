"""Who the client is behind reverse proxies: `trusted_proxies` decides whose
X-Forwarded-For (or RFC 7239 Forwarded) header counts.

A connection from a trusted proxy carries the addresses the request came through, each
hop appending the one it saw. Read from the right, every trusted proxy is skipped; the
first address that is not one is the client (the right-most untrusted rule): a client
can write anything on the left of the list, never on the right of what our own proxy
appended. A connection from anywhere else is its own client, whatever its headers say.
Nobody is trusted by default.

Only the header the operator names (`trusted_proxy_header`) is read: nginx, told to set
X-Forwarded-For, passes a client's own `Forwarded` header on untouched.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from visio.proxies.addresses import Address, Network, in_networks, parse_address


class TrustedProxies:
    def __init__(self, app: ASGIApp, networks: tuple[Network, ...], header: str) -> None:
        self.app = app
        self.networks = networks
        self.header = header.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.networks:
            self._rewrite(scope)
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope) -> None:
        peer = scope.get("client")
        if not peer or not in_networks(parse_address(peer[0]), self.networks):
            return
        values = [v.decode("latin-1") for k, v in scope["headers"] if k == self.header]
        if not values:
            return
        if self.header == b"forwarded":
            hops = forwarded_hops(values)
            proto = next((proto for _, proto in reversed(hops) if proto), None)
        else:
            hops = forwarded_for_hops(values)
            proto = _last_item(scope["headers"], b"x-forwarded-proto")
        client = right_most_untrusted([address for address, _ in hops], self.networks)
        if client is not None:
            scope["client"] = (str(client), 0)
        if proto in ("http", "https"):
            secure = proto == "https"
            if scope["type"] == "websocket":
                scope["scheme"] = "wss" if secure else "ws"
            else:
                scope["scheme"] = proto


def right_most_untrusted(hops: list[Address | None], trusted: Iterable[Network]) -> Address | None:
    """The client, from the hops a request came through (the proxy nearest us last).
    None when the first untrusted hop is not an address (`unknown`, an obfuscated name):
    the request is then counted under the proxy's own address."""
    networks = tuple(trusted)
    for hop in reversed(hops):
        if hop is None or not in_networks(hop, networks):
            return hop
    return hops[0] if hops else None  # every hop is a proxy of ours


def forwarded_for_hops(values: list[str]) -> list[tuple[Address | None, str | None]]:
    """X-Forwarded-For: `client, proxy1, proxy2` (several header lines read as one list)."""
    return [(_node(item), None) for value in values for item in value.split(",") if item.strip()]


def forwarded_hops(values: list[str]) -> list[tuple[Address | None, str | None]]:
    """Forwarded (RFC 7239): `for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"`."""
    hops: list[tuple[Address | None, str | None]] = []
    for value in values:
        for element in _split(value, ","):
            pairs = {}
            for pair in _split(element, ";"):
                name, _, raw = pair.partition("=")
                pairs[name.strip().lower()] = raw.strip().strip('"')
            if "for" in pairs:
                hops.append((_node(pairs["for"]), pairs.get("proto", "").lower() or None))
    return hops


def _split(value: str, separator: str) -> list[str]:
    """Split on `separator` outside double quotes."""
    parts, current, quoted = [], [], False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _node(value: str) -> Address | None:
    """An address out of `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`, `2001:db8::1`."""
    value = value.strip().strip('"')
    if value.startswith("["):
        return parse_address(value[1 : value.find("]")] if "]" in value else value)
    if value.count(":") == 1:
        value = value.split(":")[0]
    return parse_address(value)


def _last_item(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in headers if k == name]
    items = [item.strip().lower() for value in values for item in value.split(",")]
    return items[-1] if items and items[-1] else None
