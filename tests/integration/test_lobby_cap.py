"""Audit L3: a room's lobby holds `lobby_max_waiting` people; more are told to come back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Bots, People, start_server, stop_server
from visio.client import VisioClient, VisioError
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def small_lobby() -> Iterator[ServerProcess]:
    pair = start_server(lobby_max_waiting=2)
    yield pair[0]
    stop_server(*pair)


async def test_a_full_lobby_turns_newcomers_away_until_someone_leaves_it(small_lobby):
    people, bots = People(small_lobby), Bots(small_lobby)
    try:
        alice = await people.signed_in("alice")
        room = await alice.new_room(access="trusted")  # guests wait
        await bots.join(room, "Alice", publish=False, cookies=alice.cookies)
        first = await bots.join(room, "Guest 1", publish=False)
        await bots.join(room, "Guest 2", publish=False)
        third = VisioClient(small_lobby.base_url, room, "Guest 3", auto_reconnect=False)
        with pytest.raises(VisioError) as refused:
            await third.connect()
        await third.close()
        assert refused.value.code == "lobby_full"
        assert refused.value.frame["retry_in"] > 0
        await first.leave()
        again = await bots.join(room, "Guest 3", publish=False)
        assert again.frames[-1]["type"] == "lobby"
    finally:
        await bots.close()
        await people.close()
