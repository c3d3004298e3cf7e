"""Two headless Chromium pages meet through the web UI, then one shares its screen."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Page, expect

pytestmark = pytest.mark.browser

SOME_VIDEO_DECODED = """([selector, frames]) => [...document.querySelectorAll(selector)]
    .some(v => v.getVideoPlaybackQuality().totalVideoFrames >= frames)"""


async def join_through_the_ui(page: Page, url: str, name: str) -> None:
    await page.goto(url)
    await expect(page.locator("#prejoin")).to_be_visible()
    await page.fill("#display-name", name)
    await page.click("#join-button")
    await expect(page.locator("#meeting")).to_be_visible(timeout=15_000)


async def wait_decoding(page: Page, selector: str, frames: int = 5) -> None:
    """Wait until one remote <video> matching the selector has decoded frames."""
    await page.wait_for_function(SOME_VIDEO_DECODED, arg=[selector, frames], timeout=20_000)


async def test_two_browsers_see_each_other_then_a_screen_share(server, new_page):
    room = server.create_room()
    url = f"{server.base_url}/{room}"
    alice = await new_page()
    bob = await new_page()

    await join_through_the_ui(alice, url, "Alice")
    await join_through_the_ui(bob, url, "Bob")

    await wait_decoding(alice, 'video[data-participant][data-target="camera"]')
    await wait_decoding(bob, 'video[data-participant][data-target="camera"]')
    await expect(alice.get_by_text("Bob").first).to_be_visible()
    await expect(bob.get_by_text("Alice").first).to_be_visible()

    await alice.click("#toggle-screen")
    await wait_decoding(bob, 'video[data-participant][data-target="screen"]')
    await expect(alice.locator("#toggle-screen")).to_have_attribute("aria-pressed", "true")


async def test_home_page_creates_a_meeting_in_one_click(server, new_page):
    page = await new_page()
    await page.goto(server.base_url + "/")
    await page.get_by_role("button", name="New meeting").click()
    await page.wait_for_url(re.compile(r"/[a-z]{3}-[a-z]{4}-[a-z]{3}$"))
    await expect(page.locator("#prejoin")).to_be_visible()


async def test_interface_follows_a_french_browser(server, new_page):
    page = await new_page(locale="fr-FR")
    await page.goto(server.base_url + "/")
    await expect(page.get_by_role("button", name="Nouvelle réunion")).to_be_visible()
    assert await page.evaluate("document.documentElement.lang") == "fr"


async def test_unknown_room_says_so(server, new_page):
    page = await new_page()
    await page.goto(server.base_url + "/nop-nope-nop")
    await expect(page.get_by_text("does not exist", exact=False)).to_be_visible()


SENT_LAYERS = """async () => {
    const pc = window.visioMeeting.conn.publications.get('camera')?.pc;
    if (!pc) return [];
    const stats = [...(await pc.getStats()).values()];
    return stats.filter(s => s.type === 'outbound-rtp' && s.kind === 'video' && s.framesEncoded > 0)
        .map(s => s.rid).sort();
}"""

RECEIVED_WIDTH = """async () => {
    const pc = window.visioMeeting.conn.subscriber.pc;
    const stats = [...(await pc.getStats()).values()];
    const video = stats.find(s => s.type === 'inbound-rtp' && s.kind === 'video');
    return video ? video.frameWidth || 0 : 0;
}"""


async def sent_layers(evaluate) -> list[str]:
    """The simulcast layers a page encodes (`evaluate`: its page's, Chromium or Firefox),
    once all three have started or after 30 s: a browser starts its upper layers as its
    bandwidth estimate grows, slower when loaded."""
    layers: list[str] = []
    for _ in range(120):
        layers = await evaluate(SENT_LAYERS)
        if len(layers) == 3:
            break
        await asyncio.sleep(0.25)
    return layers


async def received_width_settles(page: Page, check, timeout_s: float = 20) -> int:
    """Poll the subscriber's decoded width until `check(width)` holds."""
    width = 0
    for _ in range(int(timeout_s * 4)):
        width = await page.evaluate(RECEIVED_WIDTH)
        if check(width):
            return width
        await page.wait_for_timeout(250)
    raise AssertionError(f"received width stayed at {width}")


async def test_simulcast_is_sent_and_the_layer_follows_the_tile_size(server, new_page):
    room = server.create_room()
    url = f"{server.base_url}/{room}"
    alice = await new_page()
    bob = await new_page()
    await join_through_the_ui(alice, url, "Alice")
    await join_through_the_ui(bob, url, "Bob")
    await wait_decoding(bob, 'video[data-participant][data-target="camera"]')

    assert await sent_layers(alice.evaluate) == ["h", "l", "m"]

    big = await received_width_settles(bob, lambda width: width >= 320)
    await bob.set_viewport_size({"width": 420, "height": 320})  # tiles under 320 px: low
    small = await received_width_settles(bob, lambda width: 0 < width <= big // 2)
    assert small <= 320, (big, small)
