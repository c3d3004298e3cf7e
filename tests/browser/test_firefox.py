"""Firefox ESR in meetings: with an aiortc bot, and with Chromium (both ways)."""

from __future__ import annotations

import asyncio

import jiwer
import pytest
from playwright.async_api import Page

from tests.browser.test_lobby import owner_opens_a_trusted_meeting
from tests.browser.test_web_meeting import join_through_the_ui, sent_layers
from tests.integration.speaking import normalise, say, sentence, speaking_bot
from visio.testing.firefox import FirefoxPage
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.browser

JOINED = "() => window.visioMeeting?.conn?.joined && window.visioMeeting.conn.you.id"

# What the subscriber connection decoded and heard from each participant's camera (or
# screen): {participant id: {video: frames decoded, audio: packets received}}. Firefox's
# getVideoPlaybackQuality() counts no frame of a MediaStream, so these come from getStats.
RECEIVED = """async (target) => {
    const sub = window.visioMeeting.conn.subscriber;
    const found = {};
    for (const transceiver of sub?.pc.getTransceivers() || []) {
        const stream = sub.active.get(transceiver.mid);
        if (!stream || stream.target !== target) continue;
        const mine = found[stream.participant] ||= { video: 0, audio: 0 };
        for (const s of (await transceiver.receiver.getStats()).values()) {
            if (s.type !== 'inbound-rtp') continue;
            if (s.kind === 'video') mine.video += s.framesDecoded || 0;
            else mine.audio += s.packetsReceived || 0;
        }
    }
    return found;
}"""

# The screen share is on screen: its <video> plays at the stream's size.
SHOWN = """(participant) => [...document.querySelectorAll(
        `video[data-participant="${participant}"][data-target="screen"]`)]
    .some(v => v.videoWidth > 0 && v.currentTime > 0 && !v.paused)"""

# The width of the one remote camera video decoded; 0 before there is one.
RECEIVED_WIDTH = """async () => {
    const pc = window.visioMeeting?.conn?.subscriber?.pc;
    const stats = pc ? [...(await pc.getStats()).values()] : [];
    const video = stats.find(s => s.type === 'inbound-rtp' && s.kind === 'video');
    return video?.frameWidth || 0;
}"""


async def join_in_firefox(page: FirefoxPage, url: str, name: str) -> str:
    """Joins through the pre-join screen as a user would; the participant id."""
    await page.goto(url)
    await page.wait_for("() => !!document.querySelector('#prejoin:not([hidden])')")
    await page.type("#display-name", name)
    await page.click("#join-button")
    return str(await page.wait_for(JOINED, timeout=15))


async def meet_in_chromium_and_firefox(
    server: ServerProcess, chromium: Page, fox: FirefoxPage
) -> tuple[str, str]:
    """Chromium, then Firefox, join a new room through the UI: their participant ids."""
    url = f"{server.base_url}/{server.create_room()}"
    await join_through_the_ui(chromium, url, "Chromium user")
    fox_id = await join_in_firefox(fox, url, "Firefox user")
    return str(await chromium.evaluate(JOINED)), fox_id


def receives_from(
    participant: str, target: str = "camera", frames: int = 10, packets: int = 25
) -> str:
    """A JS check: the page decoded `frames` and heard `packets` from `participant`."""
    return f"""async () => {{
        const got = (await ({RECEIVED})({target!r}))[{participant!r}];
        return got && got.video >= {frames} && got.audio >= {packets} ? got : null;
    }}"""


async def test_firefox_and_a_bot_see_and_hear_each_other(server, bots, new_firefox_page):
    room = server.create_room()
    page = await new_firefox_page()
    bot = await bots.join(room, "Bot")
    me = await join_in_firefox(page, f"{server.base_url}/{room}", "Fox")

    await bot.wait_frames(me, "video", count=10)
    await bot.wait_frames(me, "audio", count=25)
    await page.wait_for(receives_from(bot.id), timeout=20)


async def chromium_waits_for(page: Page, function: str, timeout_s: float = 20) -> object:
    """Polls an async JS function in a Chromium page until it returns something truthy."""
    for _ in range(int(timeout_s * 4)):
        if result := await page.evaluate(function):
            return result
        await page.wait_for_timeout(250)
    raise AssertionError(f"still nothing after {timeout_s} s: {function}")


async def test_chromium_and_firefox_see_and_hear_each_other(server, new_page, new_firefox_page):
    chromium = await new_page()
    fox = await new_firefox_page()
    chromium_id, fox_id = await meet_in_chromium_and_firefox(server, chromium, fox)

    await chromium_waits_for(chromium, receives_from(fox_id))
    await fox.wait_for(receives_from(chromium_id))

    # Simulcast from each side: three VP8 layers encoded, which Janus forwards by rid.
    assert await sent_layers(chromium.evaluate) == ["h", "l", "m"]
    assert await sent_layers(fox.evaluate) == ["h", "l", "m"]
    # Picture-in-picture of the speaker: offered where the page API exists (Chromium;
    # Firefox ESR 153 has it too, older Firefox had only its own video overlay button).
    offered = "() => !document.getElementById('toggle-pip').hidden"
    exists = "() => !!document.pictureInPictureEnabled"
    assert await chromium.evaluate(offered)
    assert await fox.evaluate(offered) == await fox.evaluate(exists)


# The label of the screen this page shares (its capture device), or null.
SHARED_SCREEN = "() => window.visioMeeting.screen?.getVideoTracks()[0]?.label ?? null"


async def test_screen_shares_both_ways_between_chromium_and_firefox(
    server, new_page, new_screen_firefox_page
):
    """Firefox shares its (virtual, Xvfb) screen through its real getDisplayMedia path,
    Chromium its fake one; each sees the other's share, then both at once."""
    chromium = await new_page()
    fox = await new_screen_firefox_page()
    chromium_id, fox_id = await meet_in_chromium_and_firefox(server, chromium, fox)

    await fox.click("#toggle-screen")
    assert await fox.wait_for(SHARED_SCREEN) == "Primary Monitor"  # the X screen, captured
    await chromium_waits_for(chromium, receives_from(fox_id, "screen", packets=0))
    assert await chromium.evaluate(SHOWN, fox_id)

    await chromium.click("#toggle-screen")
    await fox.wait_for(receives_from(chromium_id, "screen", packets=0))
    assert await fox.evaluate(SHOWN, chromium_id)
    assert await chromium.evaluate(SHOWN, fox_id)  # still there: two shares on stage

    await fox.click("#toggle-screen")  # Firefox stops sharing: its share leaves the stage
    await chromium.wait_for_function(
        "(id) => !document.querySelector(`video[data-participant='${id}'][data-target='screen']`)",
        arg=fox_id,
    )


async def width_settles(evaluate, check, timeout_s: float = 20) -> int:
    """Polls the decoded width of the one remote camera until `check(width)` holds."""
    width = 0
    for _ in range(int(timeout_s * 4)):
        width = await evaluate(RECEIVED_WIDTH)
        if check(width):
            return width
        await asyncio.sleep(0.25)
    raise AssertionError(f"received width stayed at {width}")


async def test_simulcast_layers_follow_the_tile_size_between_chromium_and_firefox(
    server, new_page, new_firefox_page
):
    chromium = await new_page()
    fox = await new_firefox_page()
    await meet_in_chromium_and_firefox(server, chromium, fox)
    # With only the low layer sent yet, the big tile would get it, and no smaller one
    # would be left to step down to.
    assert await sent_layers(chromium.evaluate) == ["h", "l", "m"]
    assert await sent_layers(fox.evaluate) == ["h", "l", "m"]

    # Each side shrinks its window: tiles under 320 px ask Janus for the low layer of
    # the other's simulcast, which it picks by rid from that browser's SDP.
    shrinks = {
        chromium.evaluate: lambda: chromium.set_viewport_size({"width": 420, "height": 320}),
        fox.evaluate: lambda: fox.set_viewport(420, 320),
    }
    for evaluate, shrink in shrinks.items():
        big = await width_settles(evaluate, lambda width: width >= 320)
        await shrink()
        low = min(320, big // 2)  # the middle layer may come first on the way down
        await width_settles(evaluate, lambda width, low=low: 0 < width <= low)


# The pre-join screen of a room that takes only signed-in people, seen by a guest.
ASKS_TO_JOIN = "() => document.querySelector('#join-button')?.textContent.trim() === 'Ask to join'"

CHAT_SHOWS = """(text) => [...document.querySelectorAll('#chat-messages li')]
    .some(li => li.textContent.includes(text))"""


async def test_chat_from_firefox(server, bots, new_firefox_page):
    room = server.create_room()
    page = await new_firefox_page()
    bot = await bots.join(room, "Bot", publish=False)
    await join_in_firefox(page, f"{server.base_url}/{room}", "Fox")

    await page.click("#toggle-chat")
    await page.type("#chat-input", "Bonjour depuis Firefox")
    await page.click("#chat-send")
    await bot.wait_until(lambda: any(m["text"] == "Bonjour depuis Firefox" for m in bot.chat))
    await bot.chat_send("Hello Firefox")
    await page.wait_for(CHAT_SHOWS, "Hello Firefox")


async def test_firefox_guest_waits_in_the_lobby_and_is_let_in(server, new_page, new_firefox_page):
    owner = await new_page()
    url = await owner_opens_a_trusted_meeting(owner, server.base_url)
    owner_id = await owner.evaluate(JOINED)
    guest = await new_firefox_page()
    await guest.goto(url)
    await guest.wait_for(ASKS_TO_JOIN)
    await guest.type("#display-name", "Fox")
    await guest.click("#join-button")
    await guest.wait_for("() => document.body.dataset.screen === 'lobby'", timeout=15)

    await owner.click("#toggle-lobby")
    await owner.locator("#lobby-panel li", has_text="Fox").locator("button[data-admit]").click()
    await guest.wait_for(JOINED, timeout=15)
    await guest.wait_for(receives_from(owner_id))


CAPTIONS_READY = """() => !document.querySelector('#captions').hidden
    && document.querySelector('#toggle-captions').getAttribute('aria-pressed') === 'true'
    && document.querySelector('#captions-hint').dataset.i18n === 'captions.waiting'"""

# What screen readers are told (the polite log of final captions), once there is some.
CAPTIONS_READ_OUT = "() => document.querySelector('#captions-live').textContent.trim()"

CAPTION_LINES = """() => [...document.querySelectorAll('#captions-lines .caption-line')]
    .map((line) => ({ text: line.textContent, final: line.classList.contains('final') }))"""

SPOKEN = "The new library opens on Monday morning and everyone in the town is welcome to visit it."


async def test_firefox_shows_live_captions_of_a_speaker(server, bots, new_firefox_page, tmp_path):
    """The captions UI in Firefox, end to end: a bot speaks (espeak-ng), the server's
    recogniser captions it, Firefox shows the line and reads the final one out."""
    room = server.create_room()
    _, mic = await speaking_bot(bots, room, "Ada")
    page = await new_firefox_page()
    await join_in_firefox(page, f"{server.base_url}/{room}", "Fox")

    await page.click("#toggle-captions")
    await page.wait_for(CAPTIONS_READY, timeout=60)  # the speech model may load first
    await asyncio.sleep(1.0)  # the server forwards the speaker's audio once captions are on
    await say(mic, sentence(SPOKEN, tmp_path))

    read_out = await page.wait_for(CAPTIONS_READ_OUT, timeout=30)
    speaker, _, text = read_out.partition(": ")
    assert speaker == "Ada (guest)", read_out  # a bot joins as a guest
    error = jiwer.wer(normalise(SPOKEN), normalise(text))
    assert error < 0.3, read_out
    lines = await page.evaluate(CAPTION_LINES)
    assert {"text": read_out, "final": True} in lines, lines
    assert await page.evaluate("() => !document.querySelector('#captions-download').disabled")

    await page.click("#toggle-captions")  # off again: the area goes
    await page.wait_for("() => document.querySelector('#captions').hidden")
