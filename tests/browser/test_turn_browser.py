"""A Chromium allowed only relayed candidates (TURN over TCP) meets a bot through coturn.

The page's peer connections get `iceTransportPolicy: 'relay'`, what a browser policy for
a locked-down network does: every packet goes through coturn, over TCP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.browser.test_web_meeting import join_through_the_ui, wait_decoding
from tests.conftest import GENEROUS_LIMITS, Bots, start_server, stop_server
from visio.testing import netns
from visio.testing.coturn import TurnServer
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.browser

RELAY_ONLY = """(() => {
    const Native = window.RTCPeerConnection;
    window.peers = [];
    window.RTCPeerConnection = function (config) {
        const pc = new Native({ ...(config || {}), iceTransportPolicy: 'relay' });
        window.peers.push(pc);
        return pc;
    };
    window.RTCPeerConnection.prototype = Native.prototype;
})();"""

# The local candidates of the pairs that carry the media: "type/relay protocol".
USED_CANDIDATES = """async () => {
    const used = [];
    for (const pc of window.peers) {
        const stats = await pc.getStats();
        stats.forEach((s) => {
            if (s.type !== 'candidate-pair' || !s.nominated) return;
            const local = stats.get(s.localCandidateId);
            used.push(`${local.candidateType}/${local.relayProtocol}`);
        });
    }
    return used;
}"""


@pytest.fixture(scope="module")
def tcp_turn() -> Iterator[TurnServer]:
    # Listens on the peer end of the harness' veth, relays from the address Janus uses.
    server = TurnServer(listen=netns.PEER_ADDRESS, relay=netns.ADDRESS)
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="module")
def relay_server(tcp_turn: TurnServer) -> Iterator[ServerProcess]:
    process, provider = start_server(
        idp=False,
        guests_create_rooms=True,
        turn_urls=json.dumps([tcp_turn.tcp_url]),
        turn_secret=tcp_turn.secret,
        **GENEROUS_LIMITS,
    )
    yield process
    stop_server(process, provider)


@pytest.fixture
async def relay_bots(relay_server: ServerProcess) -> AsyncIterator[Bots]:
    pool = Bots(relay_server)
    yield pool
    await pool.close()


async def test_relay_only_chromium_meets_a_bot_through_turn_over_tcp(
    relay_server, relay_bots, new_page
):
    room = relay_server.create_room()
    bot = await relay_bots.join(room, "Bot")
    page = await new_page()
    await page.add_init_script(RELAY_ONLY)

    await join_through_the_ui(page, f"{relay_server.base_url}/{room}", "Relayed")

    await wait_decoding(page, 'video[data-participant][data-target="camera"]', 10)
    await bot.wait_until(lambda: len(bot.participants) == 1)
    [browser_id] = bot.participants
    await bot.wait_frames(browser_id, "video", count=10, timeout=20)
    used = await page.evaluate(USED_CANDIDATES)
    assert used and set(used) == {"relay/tcp"}, used
