"""Limits per person and per address, and a restart that loses nothing, on a server of
their own."""

from __future__ import annotations

import pytest

from tests.conftest import People, start_server, stop_server
from visio.client import VisioClient, VisioError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def strict_server():
    pair = start_server(
        room_creations_per_minute=3,
        address_joins_per_minute=3,
        address_lobby_requests_per_minute=2,
    )
    yield pair[0]
    stop_server(*pair)


async def join(server, room: str, name: str, **options) -> VisioClient:
    client = VisioClient(server.base_url, room, name, auto_reconnect=False, **options)
    try:
        await client.connect()
    finally:
        await client.close()
    return client


async def test_rate_limits_give_clear_errors_then_restart_keeps_everything(strict_server):
    people = People(strict_server)
    try:
        alice = await people.signed_in("alice")
        room = await alice.new_room(name="Weekly", access="restricted")
        await alice.api("PUT", f"/api/rooms/{room}/members/bob@visio.test", {"role": "admin"})
        public = await alice.new_room()
        await alice.new_room()
        refused = await alice.api("POST", "/api/rooms", {})
        assert refused.status_code == 429 and "too many rooms" in refused.json()["detail"]
        assert 0 < int(refused.headers["retry-after"]) <= 20

        # Cookie-less guests count on their address: two lobby requests, then none; a
        # third join (to a public room), then none.
        for n in range(2):
            client = await join(strict_server, room, f"Guest {n}")
            assert client.frames[0]["type"] == "lobby"
        with pytest.raises(VisioError, match="too many lobby requests from your network"):
            await join(strict_server, room, "Guest 3")
        await join(strict_server, public, "Guest 4")
        with pytest.raises(VisioError, match="too many joins from your network"):
            await join(strict_server, public, "Guest 5")

        strict_server.stop()
        strict_server.start()
        info = (await alice.api("GET", f"/api/rooms/{room}")).json()  # still signed in
        assert (info["name"], info["access"], info["your_role"]) == (
            "Weekly",
            "restricted",
            "owner",
        )
        members = (await alice.api("GET", f"/api/rooms/{room}/members")).json()
        assert members == [{"email": "bob@visio.test", "role": "admin"}]
    finally:
        await people.close()
