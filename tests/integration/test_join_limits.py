"""Limits that stop abuse, not agents, on real servers: per person, per address, the
busy valve of a process, and the HTTP body limit (audit H1, M2).

Every client here comes from loopback, as agents behind one NAT would."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import start_server, stop_server
from tests.integration.joining import guest_cookie, join_once, outcome
from visio.client import VisioClient, VisioError
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.integration


def own_server(**settings: object) -> Iterator[ServerProcess]:
    pair = start_server(idp=False, **settings)
    yield pair[0]
    stop_server(*pair)


@pytest.fixture(scope="module")
def defaults() -> Iterator[ServerProcess]:
    """A server with the default limits."""
    yield from own_server()


@pytest.fixture(scope="module")
def strict() -> Iterator[ServerProcess]:
    yield from own_server(joins_per_minute=3, address_joins_per_minute=5)


@pytest.fixture(scope="module")
def small() -> Iterator[ServerProcess]:
    """A process that takes one new join a second."""
    yield from own_server(max_joins_per_second=1)


@pytest.fixture(scope="module")
def crowded() -> Iterator[ServerProcess]:
    """A process that takes three new joins a second: a crowd told to come back gets in
    within a few seconds (at one a second, six agents took 8 to 12 s)."""
    yield from own_server(max_joins_per_second=3)


def refusals_logged(server: ServerProcess) -> list[dict]:
    records = [json.loads(line) for line in server.log_path.read_text().splitlines() if line]
    return [r for r in records if r.get("msg") == "joins refused"]


async def test_many_guests_behind_one_address_join_while_a_looping_client_is_refused(defaults):
    rooms = [defaults.create_room() for _ in range(3)]
    agents = [
        VisioClient(defaults.base_url, rooms[n % 3], f"Agent {n}", headers=guest_cookie(n))
        for n in range(60)
    ]

    async def looping() -> list[dict]:
        return [
            await join_once(defaults.base_url, rooms[0], headers=guest_cookie(999))
            for _ in range(40)
        ]

    started = time.monotonic()
    try:
        *entered, loops = await asyncio.gather(*(a.connect(30) for a in agents), looping())
        assert time.monotonic() - started < 60
        assert [frame["type"] for frame in entered] == ["joined"] * 60
    finally:
        await asyncio.gather(*(agent.close() for agent in agents))
    assert [outcome(a) for a in loops] == ["joined"] * 30 + ["rate_limited"] * 10
    refused = loops[-1]
    assert refused["message"].startswith("too many joins; retry in ")
    assert 0 < refused["retry_in"] <= 2  # 30 a minute: one more every 2 s
    # Ten refusals, one line in the log, naming the guest by a digest of their key.
    lines = [r for r in refusals_logged(defaults) if r["limit"] == "person"]
    assert len(lines) == 1 and lines[0]["who"].startswith("guest:")
    assert "test-guest-key" not in lines[0]["who"]


async def test_an_x_forwarded_for_from_a_client_is_not_believed(strict):
    """Audit H1: uvicorn believed X-Forwarded-For from 127.0.0.1 by default, so a client
    there (or behind the documented proxy) chose a new address for every request."""
    room = strict.create_room()
    forged = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(7)]
    got = [outcome(await join_once(strict.base_url, room, headers=h)) for h in forged]
    assert got == ["joined"] * 5 + ["rate_limited"] * 2


async def test_joins_to_no_room_do_not_count(strict):
    """Audit H1: a join answered room_not_found spent the budget of the whole address."""
    room = strict.create_room()
    me = {"source": "127.0.1.1", "headers": guest_cookie(1)}
    missing = [outcome(await join_once(strict.base_url, "zzz-zzzz-zzz", **me)) for _ in range(10)]
    assert missing == ["room_not_found"] * 10
    got = [outcome(await join_once(strict.base_url, room, **me)) for _ in range(4)]
    assert got == ["joined"] * 3 + ["rate_limited"]


async def test_taking_ones_place_back_does_not_count(strict):
    """After a proxy reload, everyone resumes at once: none of it may be refused."""
    room = strict.create_room()
    me = {"source": "127.0.1.2", "headers": guest_cookie(2)}
    joined = await join_once(strict.base_url, room, leave=False, **me)
    for _ in range(4):
        joined = await join_once(strict.base_url, room, resume=joined["resume"], leave=False, **me)
        assert joined["type"] == "joined" and joined["resumed"] is True
    got = [outcome(await join_once(strict.base_url, room, **me)) for _ in range(3)]
    assert got == ["joined"] * 2 + ["rate_limited"]


async def test_a_busy_process_tells_joins_when_to_come_back_and_they_do(crowded):
    rooms = [crowded.create_room() for _ in range(3)]
    agents = [
        VisioClient(crowded.base_url, rooms[n % 3], f"Agent {n}", headers=guest_cookie(100 + n))
        for n in range(9)
    ]
    try:
        entered = await asyncio.gather(*(agent.connect(60) for agent in agents))
        assert [frame["type"] for frame in entered] == ["joined"] * 9
    finally:
        await asyncio.gather(*(agent.close() for agent in agents))
    assert sum(agent.busy_waits for agent in agents) >= 3  # 9 at once, 3 a second
    busy = [e for agent in agents for e in agent.errors if e["code"] == "busy"]
    assert busy and all(1.0 <= e["retry_in"] <= 30 for e in busy)
    assert busy[0]["message"].startswith("the server is busy; retry in ")
    _, health = crowded.get("/healthz")
    assert health["limits"]["joins"]["refused"]["busy"] == len(busy)
    assert health["limits"]["joins"]["accepted"] == 9
    _, metrics = crowded.get("/metrics")
    assert f'visio_limited_total{{kind="joins",limit="busy"}} {len(busy)}.0' in metrics


async def test_a_client_that_does_not_wait_is_refused_again(small):
    room = small.create_room()
    client = VisioClient(small.base_url, room, "Impatient", auto_reconnect=False)
    await asyncio.sleep(1.5)  # the valve holds one join again
    first = await join_once(small.base_url, room)  # the valve's one join of this second
    assert first["type"] == "joined"
    with pytest.raises(VisioError, match="busy"):
        await client.connect(timeout=0.5)  # cannot wait the retry_in it is told
    await client.close()


# -- HTTP bodies (audit M2) ---------------------------------------------------------------


def raw_request(server: ServerProcess, head: bytes, body: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_huge_body_is_refused_before_it_is_read(defaults):
    head = (
        b"POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4000000000\r\n\r\n"
    )
    started = time.monotonic()
    answer = raw_request(defaults, head, b'{"name": "')  # and 4 GB more, never sent
    assert time.monotonic() - started < 5
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"request body too large: at most 16 KiB" in answer


def test_a_chunked_body_is_cut_at_the_limit(defaults):
    head = (
        b"POST /api/rooms HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunk = b"x" * 4096
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8)) + b"0\r\n\r\n"
    answer = raw_request(defaults, head, body)
    assert answer.startswith(b"HTTP/1.1 413")


def test_small_bodies_still_work(defaults):
    status, room, _ = defaults.request("POST", "/api/rooms", {"name": "x" * 100})
    assert status == 201 and room["name"] == "x" * 100
