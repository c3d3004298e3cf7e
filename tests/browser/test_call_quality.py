"""What a participant sees of the call's quality: the indicator on each tile and on one's
own, measured from getStats in the page (visio/web/js/quality.js)."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Page, expect

from tests.browser.test_firefox import meet_in_chromium_and_firefox
from tests.browser.test_web_meeting import join_through_the_ui, wait_decoding
from tests.integration.test_metrics import scrape, value

pytestmark = pytest.mark.browser

REMOTE_CAMERA = 'video[data-participant][data-target="camera"]'

# {participant id: level shown} for every camera tile with an indicator.
INDICATORS = """() => Object.fromEntries([...document.querySelectorAll('.tile-camera')]
    .map(tile => [tile.dataset.tile.split(':')[0], tile.querySelector('.tile-quality')])
    .filter(([, q]) => q && !q.hidden).map(([id, q]) => [id, q.dataset.level]))"""

# The last sample's summary of what the page receives, and of each track.
LAST_SAMPLE = """() => {
    const s = window.visioMeeting?.quality?.last;
    if (!s) return null;
    return { level: s.level, down: s.down, up: s.up, tracks: [...s.tracks.values()] };
}"""


async def indicators(
    page: Page, count: int, levels: set[str], timeout_s: float = 30
) -> dict[str, str]:
    """Waits until `count` tiles show an indicator, each at one of `levels`."""
    shown: dict[str, str] = {}
    for _ in range(int(timeout_s * 2)):
        shown = await page.evaluate(INDICATORS)
        if len(shown) >= count and set(shown.values()) <= levels:
            return shown
        await page.wait_for_timeout(500)
    sample = await page.evaluate(LAST_SAMPLE)
    raise AssertionError(f"indicators shown: {shown}; last sample: {sample}")


async def test_each_tile_and_oneself_show_a_good_connection_with_a_text_alternative(
    server, new_page
):
    room = server.create_room()
    url = f"{server.base_url}/{room}"
    alice = await new_page()
    bob = await new_page(locale="fr-FR")
    await join_through_the_ui(alice, url, "Alice")
    await join_through_the_ui(bob, url, "Bob")
    await wait_decoding(alice, REMOTE_CAMERA)
    await wait_decoding(bob, REMOTE_CAMERA)

    await indicators(alice, 2, {"good"})
    own = alice.locator(".tile-camera").first.locator(".tile-quality")
    await expect(own).to_have_attribute("role", "img")
    await expect(own).to_have_attribute("aria-label", "Connection: good")
    # An indicator is not a live region: its changes are not read out as they come.
    assert await own.evaluate("q => q.closest('[aria-live]')") is None
    await expect(bob.locator(".tile-quality[data-level=good]").first).to_have_attribute(
        "aria-label", "Connexion\u00a0: bonne"
    )

    sample = await alice.evaluate(LAST_SAMPLE)
    video = next(t for t in sample["tracks"] if t["kind"] == "video")
    audio = next(t for t in sample["tracks"] if t["kind"] == "audio")
    assert video["fps"] > 5 and video["width"] > 0, video
    assert video["freezes"] is not None
    assert audio["concealedPct"] is not None and audio["jitterMs"] is not None, audio
    assert sample["down"]["rttMs"] is not None and sample["down"]["lossPct"] < 2, sample["down"]
    assert sample["up"]["outKbps"] > 0, sample["up"]  # Chromium's send estimate


async def test_firefox_shows_the_indicator_without_the_fields_it_lacks(
    server, new_page, new_firefox_page
):
    """Firefox has no outgoing estimate (availableOutgoingBitrate): the rest classifies."""
    chromium = await new_page()
    fox = await new_firefox_page()
    await meet_in_chromium_and_firefox(server, chromium, fox)

    shown = await fox.wait_for(
        f"""() => {{
            const shown = ({INDICATORS})();
            const levels = Object.values(shown);
            return levels.length === 2 && levels.every(l => l === 'good') ? shown : null;
        }}""",
        timeout=40,
    )
    assert len(shown) == 2
    sample = await fox.evaluate(LAST_SAMPLE)
    video = next(t for t in sample["tracks"] if t["kind"] == "video")
    audio = next(t for t in sample["tracks"] if t["kind"] == "audio")
    assert video["fps"] > 5 and video["width"] > 0, video
    assert audio["jitterMs"] is not None, audio
    assert sample["level"] == "good", sample
    assert video["freezes"] is not None and sample["down"]["rttMs"] is not None  # ESR 153
    assert sample["up"]["outKbps"] is None
    label = await fox.evaluate(
        "() => document.querySelector('.tile-quality[data-level=good]').getAttribute('aria-label')"
    )
    assert label == "Connection: good"


async def test_a_browsers_reports_reach_the_metrics_and_its_end_of_call_line(server, new_page):
    room = server.create_room()
    url = f"{server.base_url}/{room}"
    _, before = scrape(server)
    alice = await new_page()
    bob = await new_page()
    await join_through_the_ui(alice, url, "Alice Reporter")
    await join_through_the_ui(bob, url, "Bob")
    await wait_decoding(alice, REMOTE_CAMERA)
    alice_id = await alice.evaluate("() => window.visioMeeting.self.id")

    # The first report comes 10 s after joining, with freezes.
    freezes = "visio_call_freezes_per_minute_count"
    for _ in range(60):
        _, text = scrape(server)
        if value(text, freezes) >= value(before, freezes) + 2:
            break
        await alice.wait_for_timeout(500)
    else:
        raise AssertionError("no report with freezes from the two browsers")
    reports = sum(value(text, f'visio_call_quality_reports_total{{level="{level}"}}')
                  for level in ("good", "fair", "poor"))  # fmt: skip
    assert reports >= 2 + sum(
        value(before, f'visio_call_quality_reports_total{{level="{level}"}}')
        for level in ("good", "fair", "poor")
    )

    await alice.click("#leave-button")
    for _ in range(20):
        lines = [line for line in server.log_tail(2000).splitlines() if "call quality" in line]
        mine = [json.loads(line) for line in lines if alice_id in line]
        if mine:
            break
        await bob.wait_for_timeout(250)
    [line] = mine
    assert line["participant"] == alice_id and line["reason"] == "left"
    assert line["reports"] >= 1 and line["fps"] > 5 and line["rtt_ms"] is not None, line
    assert line["freezes_per_min"] is not None and line["video_step_max"] == 0, line
    assert "Alice" not in json.dumps(line)
