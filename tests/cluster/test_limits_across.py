"""With several server processes, a person's and an address's budgets are theirs on
every process (Redis), and a join relayed from the process that holds the socket to the
one that holds the room is counted for the right person and address."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.joining import guest_cookie, join_once, outcome
from visio.client import VisioClient
from visio.testing.cluster import Deployment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def limited() -> Iterator[Deployment]:
    deployment = Deployment(
        servers=2,
        nodes=1,
        sign_in=False,
        guests_create_rooms="true",
        joins_per_minute=3,
        address_joins_per_minute=5,
    )
    deployment.start()
    yield deployment
    deployment.stop()


async def test_a_persons_joins_count_on_every_process(limited):
    a, b = limited.servers
    first, second = limited.create_room(), limited.create_room()
    sitters = [VisioClient(a.base_url, first, "Sits"), VisioClient(b.base_url, second, "Sits")]
    try:
        for sitter in sitters:  # a holds the first room, b the second
            await sitter.connect()
        assert [server.get("/healthz")[1]["meetings"] for server in (a, b)] == [1, 1]
        me = {"headers": guest_cookie(1), "source": "127.0.0.2"}
        got = [  # each join is counted where its room is: twice on a, twice on b
            outcome(await join_once(server.base_url, room, **me))
            for server, room in ((b, first), (a, second), (a, first), (b, second))
        ]
        assert got == ["joined"] * 3 + ["rate_limited"]
    finally:
        for sitter in sitters:
            await sitter.close()


async def test_each_client_behind_haproxy_counts_on_its_own_address(limited):
    """HAProxy's X-Forwarded-For reaches the process holding the room, through the relay."""
    a, b = limited.servers
    rooms = [limited.create_room() for _ in range(3)]
    first = [
        outcome(await join_once(limited.base_url, rooms[n % 3], source="127.0.0.3"))
        for n in range(6)
    ]
    assert first == ["joined"] * 5 + ["rate_limited"]
    second = [
        outcome(await join_once(limited.base_url, rooms[n % 3], source="127.0.0.4"))
        for n in range(5)
    ]
    assert second == ["joined"] * 5
    refused = sum(
        server.get("/healthz")[1]["limits"]["joins"]["refused"]["address"] for server in (a, b)
    )
    assert refused == 1
