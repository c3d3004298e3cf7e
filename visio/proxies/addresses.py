"""Client addresses: what they are, which networks they belong to, and the key a limit
counts them under (one IPv4 address; one IPv6 /64, what one subscriber usually gets)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "?"


def parse_address(host: str | None) -> Address | None:
    """The address in `host`, IPv4-mapped IPv6 (::ffff:192.0.2.1) as IPv4; None if not one."""
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_network(value: str) -> Network:
    """A CIDR network (`203.0.113.0/24`, `2001:db8::/32`) or one address; ValueError if not."""
    return ipaddress.ip_network(value.strip(), strict=False)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(parse_network(value) for value in values)


def in_networks(address: Address | None, networks: Iterable[Network]) -> bool:
    return address is not None and any(
        address.version == network.version and address in network for network in networks
    )


def address_key(host: str | None) -> str:
    """What per-address limits count: the IPv4 address, or the /64 of an IPv6 one, since
    one subscriber gets a whole /64 and could otherwise use a new address per request."""
    address = parse_address(host)
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
