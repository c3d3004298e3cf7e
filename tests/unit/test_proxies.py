"""Whose word on the client's address counts: forwarded headers from trusted proxies only
(visio.proxies), and HAProxy's PROXY protocol read in front of uvicorn
(visio.proxies.proxy_protocol), on a real uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import struct
from collections.abc import AsyncIterator

import pytest
import uvicorn
import websockets
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from visio.proxies import proxy_protocol
from visio.proxies.addresses import parse_address, parse_networks
from visio.proxies.proxy_protocol import NO_HEADER, BadHeader, Header, parse
from visio.proxies.trusted import TrustedProxies, forwarded_hops, right_most_untrusted

PROXY = parse_networks(["10.0.0.0/24", "2001:db8:ffff::/48"])


async def client_of(
    headers: list[tuple[str, str]],
    peer: str = "10.0.0.5",
    header: str = "x-forwarded-for",
    kind: str = "http",
) -> tuple[str, str]:
    """What the app behind TrustedProxies sees: the client's host and the scheme."""
    seen = {}

    async def app(scope, receive, send):
        seen.update(client=scope["client"][0], scheme=scope["scheme"])

    scope = {
        "type": kind,
        "client": (peer, 40000),
        "scheme": "ws" if kind == "websocket" else "http",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }
    await TrustedProxies(app, PROXY, header)(scope, None, None)
    return seen["client"], seen["scheme"]


async def test_an_untrusted_client_cannot_choose_its_address():
    """Audit H1: uvicorn trusted X-Forwarded-For from 127.0.0.1, which the documented
    nginx passed on from the client unchanged: a new address for every request."""
    assert await client_of([("X-Forwarded-For", "203.0.113.7")], peer="198.51.100.1") == (
        "198.51.100.1",
        "http",
    )
    assert await client_of([("X-Forwarded-For", "203.0.113.7")], peer="127.0.0.1") == (
        "127.0.0.1",
        "http",
    )


async def test_a_trusted_proxy_names_the_client():
    assert await client_of([("X-Forwarded-For", "203.0.113.7")]) == ("203.0.113.7", "http")
    headers = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")]
    assert await client_of(headers) == ("203.0.113.7", "https")
    assert await client_of(headers, kind="websocket") == ("203.0.113.7", "wss")


async def test_what_a_client_writes_left_of_our_proxy_is_ignored():
    """HAProxy's `option forwardfor` appends a header line: the right-most untrusted wins."""
    forged = [("X-Forwarded-For", "192.0.2.66, 10.0.0.9"), ("X-Forwarded-For", "203.0.113.7")]
    assert (await client_of(forged))[0] == "203.0.113.7"
    chained = [("X-Forwarded-For", "192.0.2.66, 203.0.113.7, 10.0.0.9")]
    assert (await client_of(chained))[0] == "203.0.113.7"  # 10.0.0.9: a proxy of ours


async def test_only_the_header_the_proxies_write_counts():
    """nginx set to write X-Forwarded-For passes a client's own Forwarded on untouched."""
    headers = [("Forwarded", "for=192.0.2.66"), ("X-Forwarded-For", "203.0.113.7")]
    assert (await client_of(headers))[0] == "203.0.113.7"
    assert (await client_of(headers, header="forwarded"))[0] == "192.0.2.66"


async def test_rfc7239_forwarded():
    value = 'for=192.0.2.66;proto=http, for="[2001:db8:cafe::17]:4711";proto=https;by=x'
    assert await client_of([("Forwarded", value)], header="forwarded") == (
        "2001:db8:cafe::17",
        "https",
    )
    hops = forwarded_hops(['for="_hidden", for=unknown;proto=https, For="10.0.0.3:80"'])
    assert hops == [
        (None, None),
        (None, "https"),
        (ipaddress.ip_address("10.0.0.3"), None),
    ]


def test_right_most_untrusted():
    a = parse_address
    assert right_most_untrusted([a("192.0.2.1"), a("10.0.0.2")], PROXY) == a("192.0.2.1")
    assert right_most_untrusted([a("10.0.0.3"), a("10.0.0.2")], PROXY) == a("10.0.0.3")
    assert right_most_untrusted([a("192.0.2.1"), None, a("10.0.0.2")], PROXY) is None
    assert right_most_untrusted([], PROXY) is None


async def test_nobody_is_trusted_by_default():
    seen = {}

    async def app(scope, receive, send):
        seen["client"] = scope["client"][0]

    forged = [(b"x-forwarded-for", b"1.2.3.4")]
    scope = {"type": "http", "client": ("127.0.0.1", 1), "headers": forged}
    await TrustedProxies(app, (), "x-forwarded-for")(scope, None, None)
    assert seen["client"] == "127.0.0.1"


# -- the PROXY protocol ----------------------------------------------------------------


def v2(source: str, port: int, command: int = 0x21, tlv: bytes = b"") -> bytes:
    address = ipaddress.ip_address(source)
    if address.version == 4:
        family, body = 0x11, address.packed + bytes(4) + struct.pack("!HH", port, 80)
    else:
        family, body = 0x21, address.packed + bytes(16) + struct.pack("!HH", port, 80)
    body += tlv
    return proxy_protocol.V2_SIGNATURE + struct.pack("!BBH", command, family, len(body)) + body


def test_parse_v1():
    line = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 8080\r\n"
    assert parse(line + b"GET / HTTP/1.1\r\n") == Header(len(line), ("203.0.113.7", 51234))
    line6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 51234 8080\r\n"
    assert parse(line6) == Header(len(line6), ("2001:db8::7", 51234))
    assert parse(b"PROXY UNKNOWN\r\n") == Header(15, None)
    for partial in (b"P", b"PROX", b"PROXY TCP4 203.0.113.7"):
        assert parse(partial) is None
    for bad in (
        b"PROXY TCP4 203.0.113.7 10.0.0.1 51234\r\n",
        b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 203.0.113.7 10.0.0.1 99999 2\r\n",
        b"PROXY TCP4 " + b"9" * 120,
    ):
        with pytest.raises(BadHeader):
            parse(bad)


def test_parse_v2():
    header = v2("203.0.113.7", 51234, tlv=b"\x03\x00\x04abcd")
    assert parse(header + b"GET /") == Header(len(header), ("203.0.113.7", 51234))
    assert parse(v2("2001:db8::7", 4711)).source == ("2001:db8::7", 4711)
    assert parse(v2("203.0.113.7", 1, command=0x20)).source is None  # LOCAL: a health check
    assert parse(header[:10]) is None and parse(header[:20]) is None
    with pytest.raises(BadHeader):
        parse(v2("203.0.113.7", 1, command=0x31))


def test_plain_http_is_no_header():
    assert parse(b"GET / HTTP/1.1\r\n") is NO_HEADER
    assert parse(b"POST /api/rooms HTTP/1.1\r\n") is NO_HEADER


async def echo_app(scope, receive, send):
    """Answers with the client address uvicorn gives the app."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            pass
        return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": scope["client"][0]})
        await send({"type": "websocket.close"})
        return
    while (await receive()).get("more_body"):
        pass
    body = json.dumps({"client": scope["client"][0]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def proxied_server() -> AsyncIterator[int]:
    """uvicorn with the PROXY protocol reader, trusting 127.0.0.1 only."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    protocol = proxy_protocol.protocol_class(AutoHTTPProtocol, parse_networks(["127.0.0.1"]))
    config = uvicorn.Config(echo_app, http=protocol, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):  # uvicorn says it started with a flag only
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield port
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    sock.close()


async def exchange(port: int, data: bytes, source: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


GET = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


async def test_the_proxy_names_the_client_through_uvicorn(proxied_server):
    v1 = b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n"
    assert b'"client": "203.0.113.7"' in await exchange(proxied_server, v1 + GET)
    binary = v2("2001:db8::7", 4711)
    assert b'"client": "2001:db8::7"' in await exchange(proxied_server, binary + GET)
    local = v2("203.0.113.7", 1, command=0x20)
    assert b'"client": "127.0.0.1"' in await exchange(proxied_server, local + GET)


async def test_header_and_request_may_arrive_in_pieces(proxied_server):
    reader, writer = await asyncio.open_connection("127.0.0.1", proxied_server)
    for piece in (b"PRO", b"XY TCP4 203.0.113.7 127.0.0.1 5 80\r\nGET / HT", GET[8:]):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.05)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert b'"client": "203.0.113.7"' in answer


async def test_the_websocket_upgrade_keeps_the_client(proxied_server):
    """uvicorn's WebSocket protocol reads the peer again from the transport it is given."""
    async with websockets.connect(f"ws://127.0.0.1:{proxied_server}/") as plain:
        assert await plain.recv() == "127.0.0.1"  # no header: the peer itself
    raw = socket.create_connection(("127.0.0.1", proxied_server))
    raw.sendall(b"PROXY TCP4 203.0.113.9 127.0.0.1 51234 80\r\n")
    async with websockets.connect(f"ws://127.0.0.1:{proxied_server}/", sock=raw) as proxied:
        assert await proxied.recv() == "203.0.113.9"


async def test_an_untrusted_peer_cannot_send_a_header(proxied_server):
    forged = b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\n" + GET
    answer = await exchange(proxied_server, forged, source="127.0.0.2")
    assert answer.startswith(b"HTTP/1.1 400")
    assert b'"client": "127.0.0.2"' in await exchange(proxied_server, GET, source="127.0.0.2")


async def test_a_malformed_header_from_the_proxy_closes_the_connection(proxied_server):
    assert await exchange(proxied_server, b"PROXY TCP4 nonsense\r\n" + GET) == b""
