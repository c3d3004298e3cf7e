"""Clients behind a real reverse proxy are limited one by one (audit H1): nginx with the
configuration docs/OPERATIONS.md shows (X-Forwarded-For), and HAProxy speaking the PROXY
protocol. A client's forged X-Forwarded-For counts for nothing.

Clients come from addresses of their own on loopback (127.0.0.2, 127.0.0.3…), the proxies
from 127.0.0.1, the only trusted proxy. Each address may join 3 times a minute; the
clients send no cookie, so only their address counts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.conftest import start_server, stop_server
from tests.integration.joining import join_once, outcome
from visio.testing.haproxy import HAProxyServer
from visio.testing.nginx import NginxServer
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.integration

LIMITED = {
    "trusted_proxies": '["127.0.0.1"]',
    "address_joins_per_minute": 3,
    "idp": False,
}


@pytest.fixture(scope="module")
def behind_nginx() -> Iterator[tuple[ServerProcess, NginxServer]]:
    pair = start_server(**LIMITED)
    nginx = NginxServer(f"127.0.0.1:{pair[0].port}")
    try:
        nginx.start()
        yield pair[0], nginx
    finally:
        nginx.stop()
        stop_server(*pair)


@pytest.fixture(scope="module")
def behind_haproxy() -> Iterator[tuple[ServerProcess, HAProxyServer]]:
    pair = start_server(proxy_protocol="true", **LIMITED)
    haproxy = HAProxyServer([("127.0.0.1", pair[0].port)], proxy_protocol=True)
    try:
        haproxy.start()
        yield pair[0], haproxy
    finally:
        haproxy.stop()
        stop_server(*pair)


async def answers(base_url: str, room: str, source: str, times: int) -> list[str]:
    return [outcome(await join_once(base_url, room, source=source)) for _ in range(times)]


async def test_two_clients_behind_nginx_are_limited_separately(behind_nginx):
    server, nginx = behind_nginx
    room = server.create_room()
    assert await answers(nginx.base_url, room, "127.0.0.2", 4) == ["joined"] * 3 + ["rate_limited"]
    assert await answers(nginx.base_url, room, "127.0.0.3", 3) == ["joined"] * 3
    refused = await join_once(nginx.base_url, room, source="127.0.0.2")
    assert refused["message"].startswith("too many joins from your network; retry in ")
    assert refused["retry_in"] > 0


async def test_a_forged_x_forwarded_for_is_ignored(behind_nginx):
    server, nginx = behind_nginx
    room = server.create_room()
    forged = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(5)]
    # Straight to the server from an untrusted address: its header is not believed.
    got = [
        outcome(await join_once(server.base_url, room, source="127.0.0.4", headers=h))
        for h in forged
    ]
    assert got == ["joined"] * 3 + ["rate_limited"] * 2
    # Through nginx, which replaces the header with the address it sees.
    got = [
        outcome(await join_once(nginx.base_url, room, source="127.0.0.5", headers=h))
        for h in forged
    ]
    assert got == ["joined"] * 3 + ["rate_limited"] * 2
    _, health = server.get("/healthz")
    assert health["limits"]["joins"]["refused"]["address"] >= 4


async def test_two_clients_behind_haproxy_with_the_proxy_protocol(behind_haproxy):
    server, haproxy = behind_haproxy
    room = server.create_room()  # straight from 127.0.0.1, trusted, with no header: served
    assert await answers(haproxy.base_url, room, "127.0.0.6", 4) == ["joined"] * 3 + [
        "rate_limited"
    ]
    assert await answers(haproxy.base_url, room, "127.0.0.7", 3) == ["joined"] * 3


async def test_a_proxy_header_from_an_untrusted_address_is_refused(behind_haproxy):
    server, _ = behind_haproxy
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, local_addr=("127.0.0.8", 0)
    )
    writer.write(
        b"PROXY TCP4 203.0.113.1 127.0.0.1 1234 80\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400")


async def test_the_audit_trail_names_the_client_behind_the_proxy(behind_nginx):
    """The audit trail's `address` is the client's as nginx saw it: not the proxy's, not
    what the client wrote in its own X-Forwarded-For."""
    import httpx

    server, nginx = behind_nginx
    token = "c" * 32
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.5")
    async with httpx.AsyncClient(base_url=nginx.base_url, transport=transport) as http:
        response = await http.post(
            "/api/rooms",
            json={},
            headers={
                "X-CSRF-Token": token,
                "Cookie": f"visio_csrf={token}",
                "X-Forwarded-For": "203.0.113.9",
            },
        )
    assert response.status_code == 201, response.text
    (created,) = server.audit_events(event="room_created", room=response.json()["id"])
    assert created["by"]["address"] == "127.0.0.5"
