"""A webinar in the web app (issue 11 part 4): an attendee who may not speak raises a
hand, the host lets them speak from the participants panel, their camera then reaches the
host, and the host puts them in the spotlight, shown large in both browsers."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.test_lobby import REMOTE_CAMERA, ROOM_PATH, room_access, sign_in
from tests.browser.test_web_meeting import join_through_the_ui, wait_decoding

pytestmark = pytest.mark.browser


async def attendees_publish(page, room: str) -> bool:
    return bool(
        await page.evaluate(
            "async (id) => (await (await fetch(`/api/rooms/${id}`)).json()).attendees_publish",
            room,
        )
    )


async def test_raise_hand_allow_publish_and_spotlight(server, new_page):
    host = await new_page()
    bob = await new_page()
    await sign_in(host, server.base_url, "alice")
    await host.get_by_role("button", name="New meeting").click()
    await host.wait_for_url(ROOM_PATH)
    url, room = host.url, host.url.rsplit("/", 1)[-1]
    await host.click("#join-button")
    await expect(host.locator("#meeting")).to_be_visible(timeout=15_000)
    await host.click("#toggle-participants")
    rule = host.get_by_label("Everyone may speak and present without asking")
    await expect(rule).to_be_checked()
    await rule.uncheck()
    await host.wait_for_function(
        "async (id) => !(await (await fetch(`/api/rooms/${id}`)).json()).attendees_publish",
        arg=room,
    )
    assert await room_access(host, room) == "public" and not await attendees_publish(host, room)

    # Bob listens: his microphone, camera and screen buttons wait for a host's word.
    await join_through_the_ui(bob, url, "Bob")
    await expect(bob.locator("#toggle-audio")).to_be_disabled()
    await expect(bob.locator("#toggle-screen")).to_be_disabled()
    await expect(bob.locator("#toggle-hand")).to_be_enabled()
    assert await bob.locator("#toggle-pip").is_visible()  # Chromium has picture-in-picture
    await bob.get_by_role("button", name="Raise hand").click()

    row = host.locator("#participants-list li", has_text="Bob")
    await expect(row.locator(".hand-rank")).to_have_text("1")
    assert await host.locator(REMOTE_CAMERA).count() == 0  # nothing of Bob's was sent
    await row.get_by_role("button", name="Let Bob speak").click()

    # Let speak, Bob's page publishes his camera by itself; his hand went down.
    await wait_decoding(host, REMOTE_CAMERA)
    await expect(bob.locator("#toggle-audio")).to_be_enabled()
    await expect(bob.locator("#toggle-hand")).to_have_attribute("aria-pressed", "false")
    await expect(row.get_by_role("button", name="Stop Bob speaking")).to_be_visible()

    await row.get_by_role("button", name="Spotlight Bob for everyone").click()
    bob_id = await bob.evaluate("window.visioMeeting.self.id")
    for page in (host, bob):
        spotlight = page.locator("#presentation .tile.spotlight")
        await expect(spotlight).to_be_visible()
        await expect(spotlight).to_have_attribute("data-tile", f"{bob_id}:camera")
