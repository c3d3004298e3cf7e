"""Breakout rooms in the web app: the owner (Chromium) opens two rooms with the panel's
controls, puts a guest (a second Chromium) and a bot in different rooms, visits the
guest's room, broadcasts, and calls everyone back; pages never reload, and media and chat
stay in each room."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.test_lobby import ROOM_PATH, sign_in
from tests.browser.test_web_meeting import join_through_the_ui, wait_decoding

pytestmark = pytest.mark.browser
SLOW = 15_000  # ms: a loaded 2-core machine
IN_ROOM_1 = "You are in: Room 1"


AXE = Path(__file__).parents[1] / "firefox" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = """async (selector) => (await axe.run(document.querySelector(selector)))
    .violations.filter(v => ['serious', 'critical'].includes(v.impact))
    .map(v => `${v.id}: ${v.nodes.map(n => n.target).join(' ')}`)"""


async def serious_violations(page: Page, selector: str) -> list[str]:
    """axe-core's serious and critical findings in one part of the page."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(AXE.read_text())  # evaluated by the driver: the CSP allows it
    return list(await page.evaluate(SERIOUS, selector))


def camera_of(participant_id: str) -> str:
    return f'video[data-participant="{participant_id}"][data-target="camera"]'


def tile_of(participant_id: str) -> str:
    return f'[data-tile="{participant_id}:camera"]'


async def self_id(page: Page) -> str:
    return str(await page.evaluate("window.visioMeeting.self.id"))


async def test_two_browsers_move_to_rooms_and_back(server, new_page, bots):
    owner, guest = await new_page(), await new_page()
    await sign_in(owner, server.base_url, "alice")
    await owner.get_by_role("button", name="New meeting").click()
    await owner.wait_for_url(ROOM_PATH)
    url = owner.url
    await owner.click("#join-button")
    await expect(owner.locator("#meeting")).to_be_visible(timeout=SLOW)
    await join_through_the_ui(guest, url, "Bob")
    cleo = await bots.join(url.rsplit("/", 1)[-1], "Cleo")
    alice, bob = await self_id(owner), await self_id(guest)
    await wait_decoding(guest, camera_of(cleo.id))
    await wait_decoding(guest, camera_of(alice))
    for page in (owner, guest):
        await page.evaluate("window.notReloaded = true")

    # The owner opens two rooms, people assigned by hand, with the panel's controls.
    await expect(guest.locator("#toggle-breakout")).to_be_hidden()
    await owner.click("#toggle-breakout")
    panel = owner.locator("#breakout-panel")
    await expect(panel).to_be_visible()
    assert await serious_violations(owner, "#breakout-panel") == []  # the form
    await panel.get_by_label("Number of rooms").fill("2")
    await panel.get_by_label("Who goes where").select_option("manual")
    await panel.get_by_role("button", name="Open rooms").click()
    await panel.get_by_label("Move Bob to").select_option(label="Room 1")
    await expect(guest.locator("#breakout-notice")).to_have_text(IN_ROOM_1, timeout=SLOW)
    await panel.get_by_label("Move Cleo to").select_option(label="Room 2")
    await cleo.wait_in_room(2)
    assert await serious_violations(owner, "#breakout-panel") == []
    await panel.get_by_role("button", name="Go to Room 1").click()
    await expect(owner.locator("#breakout-notice")).to_have_text(IN_ROOM_1, timeout=SLOW)

    # Bob sees and hears Alice in room 1, and no longer Cleo (room 2).
    await wait_decoding(guest, camera_of(alice))
    await expect(guest.locator(tile_of(cleo.id))).to_have_count(0, timeout=SLOW)
    await expect(owner.locator(tile_of(cleo.id))).to_have_count(0, timeout=SLOW)
    await expect(guest.locator("#toggle-breakout")).to_be_visible()  # the rooms, for him too
    await guest.click("#toggle-breakout")
    await expect(guest.locator("#breakout-panel")).to_contain_text("A host assigns the rooms")
    for part in ("#breakout-panel", "#breakout-notice", "#toggle-breakout"):
        assert await serious_violations(guest, part) == []
    before = cleo.frames_from(bob)
    await guest.wait_for_timeout(1500)
    assert cleo.frames_from(bob) <= before + 2  # at most what was already on its way

    # Chat stays in room 1; a broadcast reaches room 2 as well.
    await guest.click("#toggle-chat")
    await guest.fill("#chat-input", "hello room one")
    await guest.click("#chat-send")
    await owner.click("#toggle-chat")
    await expect(owner.locator("#chat-messages")).to_contain_text("hello room one", timeout=SLOW)
    await owner.click("#toggle-breakout")
    await panel.get_by_label("Message to every room").fill("Two minutes left")
    await panel.get_by_role("button", name="Send to all rooms").click()
    await expect(guest.locator("#chat-messages")).to_contain_text("Two minutes left", timeout=SLOW)
    await cleo.wait_until(lambda: any(m["text"] == "Two minutes left" for m in cleo.chat))
    assert all(m["text"] != "hello room one" for m in cleo.chat)

    # Everyone back: Bob sees Cleo again; no page was reloaded.
    await panel.get_by_role("button", name="Call everyone back").click()
    await expect(guest.locator("#breakout-notice")).to_be_hidden(timeout=SLOW)
    await cleo.wait_in_room(None)
    await wait_decoding(guest, camera_of(cleo.id))
    await wait_decoding(owner, camera_of(bob))
    await cleo.wait_frames(bob, "video", count=cleo.frames_from(bob) + 5)

    # Rooms people choose: Bob picks room 2 with a button, then comes back by himself.
    await expect(panel.get_by_label("Number of rooms")).to_be_visible(timeout=SLOW)
    await panel.get_by_label("Who goes where").select_option("choose")
    await panel.get_by_role("button", name="Open rooms").click()
    await guest.click("#toggle-breakout")
    choices = guest.locator("#breakout-panel")
    await choices.get_by_role("button", name="Join Room 2").click(timeout=SLOW)
    await expect(guest.locator("#breakout-notice")).to_have_text("You are in: Room 2", timeout=SLOW)
    await choices.get_by_role("button", name="Back to the main room").click()
    await expect(guest.locator("#breakout-notice")).to_have_text("You are in: Main room")
    for page in (owner, guest):
        assert await page.evaluate("window.notReloaded === true")
