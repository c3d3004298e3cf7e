"""The web app tells people how to join by phone when the SIP gateway is on."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import expect

from tests.conftest import start_server, stop_server
from visio.testing.netns import ADDRESS
from visio.testing.server import ServerProcess, free_port

pytestmark = pytest.mark.browser

NUMBER = "+33 1 23 45 67 89"


@pytest.fixture(scope="module")
def sip_server() -> Iterator[ServerProcess]:
    process, provider = start_server(
        idp=False,
        sip_enabled=True,
        sip_host=ADDRESS,
        sip_port=free_port(),
        sip_domain="visio.example.org",
        sip_phone_number=NUMBER,
        sip_rtp_ports="42000-42099",
    )
    yield process
    stop_server(process, provider)


async def test_the_participants_panel_shows_the_dial_in_and_copies_an_invitation(
    sip_server, new_page
):
    room = sip_server.create_room()
    pin = sip_server.get(f"/api/rooms/{room}")[1]["dial_in"]["pin"]
    page = await new_page()
    await page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=sip_server.base_url
    )
    await page.goto(f"{sip_server.base_url}/{room}")
    await page.fill("#display-name", "Agent")
    await page.click("#join-button")
    await expect(page.locator("#meeting")).to_be_visible(timeout=30_000)
    await page.click("#toggle-participants")
    spaced = f"{pin[:3]} {pin[3:6]} {pin[6:]}"
    text = page.locator("#dial-in-text")
    await expect(text).to_have_text(
        f"Call {NUMBER} (or sip:visio@visio.example.org:{sip_server.env['VISIO_SIP_PORT']} "
        f"from a SIP phone), then enter the PIN {spaced} followed by #."
    )
    await page.click("#copy-invitation")
    await expect(page.get_by_text("Invitation copied")).to_be_visible()
    invitation = await page.evaluate("navigator.clipboard.readText()")
    assert re.search(rf"{sip_server.base_url}/{room}\n", invitation), invitation
    assert spaced in invitation
