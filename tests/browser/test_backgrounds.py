"""Camera backgrounds: a Chromium whose camera films a figure in front of a striped wall
publishes it with its own picture behind the figure, then blurred, then as it is; an aiortc
bot in the meeting checks each in the frames it receives (MediaPipe's model does not take
the drawn figure for a person, so the whole frame is background: the checks look at the wall
only). Firefox works or falls back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import CHROMIUM
from tests.browser.test_firefox import join_in_firefox
from visio.client import VisioClient
from visio.testing.camera import WALL, solid_png, wall_stats, write_y4m
from visio.testing.chromium import CHROMIUM_ARGS
from visio.testing.firefox import FirefoxPage

pytestmark = pytest.mark.browser

PICTURE = (230, 30, 200)  # one's own background: a magenta no camera pixel has
STRIPES_MEAN = np.mean(WALL, axis=0)
# The state of the page's background effect, and what the camera sender sends.
EFFECT = """() => {
    const m = window.visioMeeting;
    const sender = m.conn.publications.get('camera')?.transceivers?.video?.sender;
    return {
        choice: m.background.choice, unavailable: m.background.unavailable,
        processed: !!m.background.compositor, frames: m.background.framesDrawn,
        sending: sender?.track?.id === m.background.output?.id,
        encodings: sender?.getParameters().encodings.length ?? 0,
    };
}"""


@pytest.fixture
async def filming_browser(browser: Browser, tmp_path: Path) -> AsyncIterator[Browser]:
    """A second Chromium whose camera films the known pattern."""
    y4m = write_y4m(tmp_path / "figure.y4m")
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={y4m}"]
    filming = await browser.browser_type.launch(executable_path=CHROMIUM, args=args)
    yield filming
    await filming.close()


async def wall_becomes(
    bot: VisioClient, sender: str, check: Callable[[np.ndarray, float], bool], what: str
) -> tuple[np.ndarray, float]:
    """Wait until a frame received from `sender` has a wall that passes `check`."""
    deadline = time.monotonic() + 60
    seen = None
    while time.monotonic() < deadline:
        frames = bot.frames_from(sender)
        await bot.wait_frames(sender, count=frames + 1)
        image = bot.received[(sender, "camera", "video")].last_frame.to_ndarray(format="rgb24")
        seen = wall_stats(image)
        if check(*seen):
            return seen
    raise AssertionError(f"the wall never became {what}: last mean {seen[0]}, spread {seen[1]}")


def near(colour: np.ndarray, expected: tuple[int, int, int] | np.ndarray, tolerance: float) -> bool:
    return float(np.abs(colour - np.asarray(expected, np.float32)).max()) <= tolerance


async def effect_settles(page: Page, check: Callable[[dict], bool]) -> dict:
    deadline = time.monotonic() + 60
    while not check(state := await page.evaluate(EFFECT)):
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.25)
    return state


async def choose(page: Page, label: str) -> None:
    await page.locator("#toggle-background").click()
    await page.locator("#background-popover").get_by_label(label, exact=True).check()
    await page.keyboard.press("Escape")


async def test_background_is_replaced_blurred_and_restored(
    server, new_page, filming_browser: Browser
):
    room = server.create_room()
    context = await filming_browser.new_context(viewport={"width": 1280, "height": 720})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security" in m.text else None)

    # On the pre-join screen: one's own picture, chosen and shown in the preview.
    await page.goto(f"{server.base_url}/{room}")
    await expect(page.locator("#prejoin-background fieldset")).to_be_visible()
    await page.locator("#prejoin-background input[type=file]").set_input_files(
        {"name": "magenta.png", "mimeType": "image/png", "buffer": solid_png(PICTURE)}
    )
    await expect(page.get_by_label("Your image", exact=True)).to_be_checked()
    await page.fill("#display-name", "Ada")
    await page.click("#join-button")
    await expect(page.locator("#meeting")).to_be_visible(timeout=15_000)
    ada = await page.evaluate("window.visioMeeting.conn.you.id")

    bot = VisioClient(server.base_url, room, "Watcher", audio=False, video=False)
    try:
        await bot.connect()
        mean, spread = await wall_becomes(
            bot, ada, lambda mean, spread: near(mean, PICTURE, 40), "the picture"
        )
        print(f"own picture: wall mean {mean.round()}, spread {spread:.1f}")
        state = await page.evaluate(EFFECT)
        assert state["processed"] and state["sending"], state
        assert state["encodings"] == 3, state  # simulcast kept on the processed track
        assert await page.evaluate("localStorage.getItem('visio.background')") == "custom"

        # In the meeting: blur. The stripes melt into their average colour.
        await choose(page, "Blur the background")
        mean, spread = await wall_becomes(
            bot, ada, lambda mean, spread: spread < 25 and near(mean, STRIPES_MEAN, 45), "blurred"
        )
        print(f"blur: wall mean {mean.round()}, spread {spread:.1f}")
        # The camera off and on again: blurred again.
        await page.locator("#toggle-video").click()
        await expect(page.locator("#toggle-video")).to_have_attribute("aria-pressed", "false")
        await page.locator("#toggle-video").click()
        await expect(page.locator("#toggle-video")).to_have_attribute("aria-pressed", "true")
        await effect_settles(page, lambda state: state["processed"] and state["sending"])
        # Remembered for the next visit: a new page's effect starts with blur.
        remembered = (
            "() => import('/static/js/backgrounds.js').then((m) => new m.BackgroundEffect().choice)"
        )
        assert await page.evaluate(remembered) == "blur"

        # Back to none: the camera's stripes again, the raw camera track sent.
        await choose(page, "No effect")
        mean, spread = await wall_becomes(bot, ada, lambda mean, spread: spread > 45, "striped")
        print(f"none: wall mean {mean.round()}, spread {spread:.1f}")
        state = await page.evaluate(EFFECT)
        assert not state["processed"] and state["sending"], state
        camera = await page.evaluate("window.visioMeeting.tracks.video.id")
        sent = await page.evaluate(
            "window.visioMeeting.conn.publications.get('camera').transceivers.video.sender.track.id"
        )
        assert sent == camera
    finally:
        await bot.close()
        await context.close()
    assert not errors, errors


async def blur_settles(page: FirefoxPage) -> dict:
    """Ask for blur; wait until it runs or is found unavailable."""
    await page.evaluate("() => window.visioMeeting.background.choose('blur')")
    deadline = time.monotonic() + 60
    while True:
        state = await page.evaluate(EFFECT)
        if state["unavailable"] or (state["processed"] and state["frames"] > 5):
            return state
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.5)


async def test_firefox_blurs_with_webgl_and_falls_back_without(
    server, bots, new_firefox_page, new_screen_firefox_page
):
    """Firefox with a window (WebGL from Mesa) blurs: the canvas track is sent. Headless
    Firefox has no WebGL: the choice is disabled with the reason, the camera sent as it is."""
    room = server.create_room()
    watcher = await bots.join(room, "Watcher", publish=False)
    for make, name, works in (
        (new_screen_firefox_page, "Fox", True),
        (new_firefox_page, "Ghost", False),
    ):
        page = await make()
        fox = await join_in_firefox(page, f"{server.base_url}/{room}", name)
        await watcher.wait_frames(fox)
        state = await blur_settles(page)
        print(f"Firefox ({name}): {state}")
        assert state["sending"] and state["encodings"] == 3, state
        frames = watcher.frames_from(fox)
        await watcher.wait_frames(fox, count=frames + 10)  # video keeps flowing either way
        if works:
            assert state["processed"] and not state["unavailable"], state
            continue
        assert state["unavailable"] == "webgl" and not state["processed"], state
        await page.evaluate("() => document.querySelector('#toggle-background').click()")
        status = await page.evaluate(
            "() => document.querySelector('#background-popover .background-status').textContent"
        )
        assert "not available" in status and "WebGL" in status, status
        assert await page.evaluate(
            "() => document.querySelector('#background-popover input[value=blur]').disabled"
        )
