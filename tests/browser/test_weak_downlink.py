"""A Chromium whose downlink is capped at 250 kbit/s steps its received video down, says
so, and steps back up once the cap is lifted (visio/web/js/downlink.js).

The capped Chromium runs in a namespace of its own, linked to the harness' by a shaped
link (netns.SideNamespace, visio.testing.link) whose downlink is capped.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.browser.conftest import CHROMIUM
from tests.browser.test_web_meeting import join_through_the_ui, wait_decoding
from tests.conftest import Bots, start_open_server, stop_server
from visio.testing import netns
from visio.testing.chromium import CHROMIUM_ARGS
from visio.testing.link import Conditions
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.browser

REMOTE_CAMERA = 'video[data-participant][data-target="camera"]'

# What the capped page shows and asks for: the notice, the layer asked for the one remote
# video, the width it decodes, the indicator on the remote tile and the step it is at.
STATE = """() => {
    const m = window.visioMeeting;
    const notice = document.getElementById('quality-notice');
    const sub = m?.conn?.subscriber;
    const mids = [...(sub?.active || [])].filter(([, s]) => s.media === 'video')
        .map(([mid]) => mid);
    const layer = mids.length ? m.conn.layers.get(mids[0]) || null : null;
    const track = mids.length ? m.quality?.last?.tracks.get(mids[0]) : null;
    const remote = [...document.querySelectorAll('.tile-camera')]
        .find(tile => !tile.dataset.tile.startsWith(m.self.id + ':'));
    return {
        notice: notice.hidden ? null : notice.dataset.key,
        noticeText: notice.hidden ? '' : notice.textContent,
        layer,
        width: track?.width || 0,
        level: remote?.querySelector('.tile-quality')?.dataset.level || null,
        step: m?.quality?.governor.step ?? null,
        paused: !!remote?.classList.contains('video-paused'),
        at: Date.now(),
    };
}"""

PEERS = """async () => {
    const conn = window.visioMeeting.conn;
    const pcs = { subscriber: conn.subscriber?.pc, camera: conn.publications.get('camera')?.pc };
    const out = {};
    for (const [name, pc] of Object.entries(pcs)) {
        if (!pc) { out[name] = null; continue; }
        const pairs = [];
        (await pc.getStats()).forEach(s => {
            if (s.type === 'local-candidate' || s.type === 'remote-candidate')
                pairs.push(`${s.type} ${s.address}:${s.port} ${s.candidateType}`);
        });
        out[name] = { state: pc.connectionState, ice: pc.iceConnectionState, pairs };
    }
    return out;
}"""


@pytest.fixture(scope="module")
def open_server(shaped_side: netns.SideNamespace) -> Iterator[ServerProcess]:
    """A server on every address of the namespace: the side one reaches it. Its Janus
    gathers on the side link too (Janus 1.1.2 answered no check from the side namespace
    through its address on the harness' veth alone)."""
    process, provider = start_open_server(janus_ice_interfaces=f"{netns.VETH},{netns.SIDE_VETH}")
    yield process
    stop_server(process, provider)


@pytest.fixture
async def side_browser(shaped_side: netns.SideNamespace, tmp_path: Path) -> AsyncIterator[Browser]:
    """Debian's Chromium started inside the side namespace."""
    launcher = shaped_side.wrap(CHROMIUM, tmp_path)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=launcher, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def watch(page: Page, until, timeout_s: float, seen: list[dict]) -> dict:
    """Polls STATE until `until(state)`; every state seen is kept in `seen`."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = await page.evaluate(STATE)
        seen.append(state)
        if until(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout_s} s: {state}; seen: {seen[-20:]}")
        await page.wait_for_timeout(500)


async def test_a_capped_downlink_steps_video_down_then_back_up(
    open_server, shaped_side, side_browser, new_page
):
    room = open_server.create_room()
    alice = await new_page()
    await join_through_the_ui(alice, f"{open_server.base_url}/{room}", "Alice")
    context = await side_browser.new_context(viewport={"width": 1280, "height": 720})
    bob = await context.new_page()
    errors: list[str] = []
    bob.on("pageerror", lambda error: errors.append(str(error)))
    await join_through_the_ui(bob, f"http://{netns.ADDRESS}:{open_server.port}/{room}", "Bob")
    try:
        await wait_decoding(bob, REMOTE_CAMERA, 20)
    except Exception:
        raise AssertionError(await bob.evaluate(PEERS)) from None

    seen: list[dict] = []
    await watch(bob, lambda s: s["level"] == "good" and s["layer"] and s["width"] > 0, 40, seen)
    await bob.wait_for_timeout(4000)  # the layer that fits the tile replaces the first one
    before = await bob.evaluate(STATE)
    assert before["step"] == 0 and before["notice"] is None

    capped_at = time.time() * 1000
    shaped_side.shape(downlink=Conditions(rate_kbit=250))
    try:
        capped = await watch(
            bob,
            lambda s: (
                s["step"] >= 2
                and s["notice"]
                and s["level"] == "good"
                and (0 < s["width"] < before["width"] or s["paused"])
            ),
            90,
            seen,
        )
    finally:
        shaped_side.clear()
        lifted_at = time.time() * 1000
    assert capped["notice"].startswith("quality.reduced")
    assert "weak" in capped["noticeText"]
    assert capped["layer"] in ("low", "off"), capped
    assert capped["width"] < before["width"] or capped["paused"], (before, capped)
    assert "poor" in {s["level"] for s in seen}, seen  # shown while the link was congested

    restored = await watch(
        bob, lambda s: s["step"] == 0 and s["layer"] == before["layer"], 120, seen
    )
    assert restored["notice"] == "quality.restored"
    print(  # the figures of this run (tests/browser/README or the report quote them)
        f"stepped to {capped['step']} in {(capped['at'] - capped_at) / 1000:.1f} s, "
        f"back to 0 in {(restored['at'] - lifted_at) / 1000:.1f} s after the cap was lifted; "
        f"steps seen: {sorted({s['step'] for s in seen})}"
    )
    bigger = (
        (lambda s: s["width"] > 0) if capped["paused"] else (lambda s: s["width"] > capped["width"])
    )
    await watch(bob, lambda s: bigger(s) and not s["paused"] and s["level"] == "good", 30, seen)
    await context.close()
    assert not errors, errors


# Audio packets received from each remote participant so far.
AUDIO_PACKETS = """async () => {
    const sub = window.visioMeeting.conn.subscriber;
    let packets = 0;
    for (const t of sub?.pc.getTransceivers() || []) {
        if (sub.active.get(t.mid)?.media !== 'audio') continue;
        for (const s of (await t.receiver.getStats()).values())
            if (s.type === 'inbound-rtp') packets += s.packetsReceived;
    }
    return packets;
}"""


async def test_video_that_does_not_fit_at_any_layer_gives_way_to_audio_only(
    open_server, shaped_side, side_browser
):
    """A bot sends one layer only (no simulcast, ~500 kbit/s): no layer fits 200 kbit/s,
    so video is paused, the sound goes on, and video comes back once the cap is lifted."""
    room = open_server.create_room()
    bots = Bots(open_server)
    try:
        await bots.join(room, "Bot")
        context = await side_browser.new_context(viewport={"width": 1280, "height": 720})
        bob = await context.new_page()
        await join_through_the_ui(bob, f"http://{netns.ADDRESS}:{open_server.port}/{room}", "Bob")
        await wait_decoding(bob, REMOTE_CAMERA, 20)
        seen: list[dict] = []
        await watch(bob, lambda s: s["level"] == "good", 40, seen)

        shaped_side.shape(downlink=Conditions(rate_kbit=200))
        try:
            paused = await watch(bob, lambda s: s["step"] == 4 and s["paused"], 90, seen)
            assert paused["notice"] == "quality.reduced.none", paused
            assert paused["layer"] == "off"
            heard = await bob.evaluate(AUDIO_PACKETS)
            await bob.wait_for_timeout(3000)
            assert await bob.evaluate(AUDIO_PACKETS) > heard + 100  # 50 packets a second
        finally:
            shaped_side.clear()

        # Video is back once the governor steps up from audio only (the steps above it are
        # tested step by step in the test before: no need to wait for all four here).
        back = await watch(bob, lambda s: s["step"] < 4 and not s["paused"], 120, seen)
        assert back["layer"] not in (None, "off")
        await watch(bob, lambda s: s["width"] > 0 and s["level"] == "good", 30, seen)
        await context.close()
    finally:
        await bots.close()
