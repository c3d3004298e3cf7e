"""The lobby and moderation in the web app: an owner signed in through the real identity
provider lets a guest into a trusted room (or not), and moderates the meeting."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator

import psutil
import pytest
from playwright.async_api import Page, expect

from tests.browser.test_web_meeting import join_through_the_ui, wait_decoding
from tests.conftest import GENEROUS_LIMITS, QUICK_LOBBY_TIMEOUT_S, start_server, stop_server
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.browser

REMOTE_CAMERA = 'video[data-participant][data-target="camera"]'
ROOM_PATH = re.compile(r"/[a-z]{3}-[a-z]{4}-[a-z]{3}$")


async def sign_in(page: Page, base_url: str, login: str) -> None:
    """Click "Sign in" on the home page and go through the provider's login and consent."""
    await page.goto(base_url + "/")
    await page.click("#sign-in")
    await page.fill('input[name="login"]', login)
    await page.fill('input[name="password"]', "any password")
    await page.click('button[type="submit"]')
    # The consent form comes once per browser; then the provider sends us back home.
    for _ in range(3):
        await page.wait_for_load_state()
        if page.url.startswith(base_url):
            break
        await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url(base_url + "/")
    await expect(page.locator("#user-name")).to_contain_text(login.capitalize())
    await expect(page.locator("#sign-out")).to_be_visible()


async def owner_opens_a_trusted_meeting(page: Page, base_url: str, login: str = "alice") -> str:
    """Signs in, creates a meeting, joins it, and makes it take only signed-in people."""
    await sign_in(page, base_url, login)
    await page.get_by_role("button", name="New meeting").click()
    await page.wait_for_url(ROOM_PATH)
    name = page.locator("#display-name")
    await expect(name).to_have_value(login.capitalize())
    await expect(name).to_have_attribute("readonly", "")
    await expect(page.locator("#prejoin-account")).to_contain_text("Signed in as")
    await page.click("#join-button")
    await expect(page.locator("#meeting")).to_be_visible(timeout=15_000)
    # Moderator controls: the access level is in the people panel.
    await page.click("#toggle-participants")
    await expect(page.locator("#host-controls")).to_be_visible()
    await page.select_option("#room-access", "trusted")
    room = page.url.rsplit("/", 1)[-1]
    for _ in range(40):
        if await room_access(page, room) == "trusted":
            break
        await page.wait_for_timeout(250)
    assert await room_access(page, room) == "trusted"
    return page.url


async def room_access(page: Page, room: str) -> str:
    return str(
        await page.evaluate(
            "async (id) => (await (await fetch(`/api/rooms/${id}`)).json()).access", room
        )
    )


async def guest_asks_to_join(page: Page, url: str, name: str) -> None:
    await page.goto(url)
    await expect(page.locator("#prejoin")).to_be_visible()
    await expect(page.locator("#prejoin-account")).to_contain_text("as a guest")
    await expect(page.locator("#join-button")).to_have_text("Ask to join")
    await page.fill("#display-name", name)
    await page.click("#join-button")
    await expect(page.locator("#lobby")).to_be_visible(timeout=15_000)
    assert await page.evaluate("document.body.dataset.screen") == "lobby"
    await expect(page.locator("#lobby-reason")).to_contain_text("signed-in people")


async def test_guest_waits_in_a_trusted_room_and_the_owner_admits_them(server, new_page):
    owner = await new_page()
    guest = await new_page()
    url = await owner_opens_a_trusted_meeting(owner, server.base_url)

    await guest_asks_to_join(guest, url, "Bob")

    # The owner is told, sees Bob in the lobby panel, and lets him in.
    await expect(owner.locator("#lobby-notice")).to_contain_text("Bob is asking to join")
    await expect(owner.locator("#lobby-count")).to_have_text("1")
    await owner.click("#toggle-lobby")
    panel = owner.locator("#lobby-panel")
    await expect(panel).to_be_visible()
    await expect(panel.locator("li", has_text="Bob")).to_contain_text("Guest")
    await panel.locator("button[data-admit]").click()

    # The guest's page turns into the meeting, with no reload, and plays the owner's camera.
    await expect(guest.locator("#meeting")).to_be_visible(timeout=15_000)
    await wait_decoding(guest, REMOTE_CAMERA)
    await expect(guest.locator('[data-tile$=":camera"]', has_text="Alice")).to_contain_text("Host")
    await expect(owner.locator('[data-tile$=":camera"]', has_text="Bob")).to_contain_text("Guest")
    await expect(panel.locator("#lobby-empty")).to_be_visible()
    # Only moderators get moderator controls.
    await expect(guest.locator("#toggle-lobby")).to_be_hidden()
    await guest.click("#toggle-participants")
    await expect(guest.locator("#host-controls")).to_be_hidden()
    assert await guest.locator("#participants-list button[data-action]").count() == 0


async def test_owner_denies_a_guest(server, new_page):
    owner = await new_page()
    guest = await new_page()
    url = await owner_opens_a_trusted_meeting(owner, server.base_url)

    await guest_asks_to_join(guest, url, "Mallory")
    await owner.click("#toggle-lobby")
    await owner.locator("#lobby-panel li", has_text="Mallory").locator("button[data-deny]").click()

    await expect(guest.locator("#left")).to_be_visible(timeout=10_000)
    await expect(guest.locator("#left-title")).to_have_text("You were not let in")
    await expect(guest.locator("#left-message")).to_contain_text("declined your request")
    await expect(owner.locator("#lobby-count")).to_have_text("")


async def test_nobody_answers_and_the_request_expires(quick_lobby_server, new_page):
    owner = await new_page()
    guest = await new_page()
    url = await owner_opens_a_trusted_meeting(owner, quick_lobby_server.base_url)

    await guest_asks_to_join(guest, url, "Carol")
    await expect(guest.locator("#lobby-expiry")).to_contain_text(f"{QUICK_LOBBY_TIMEOUT_S} seconds")
    # This test's server gives up on a lobby request after a few seconds.
    await expect(guest.locator("#left")).to_be_visible(timeout=20_000)
    await expect(guest.locator("#left-message")).to_contain_text("Nobody answered")
    await expect(guest.locator("#rejoin-button")).to_have_text("Ask to join again")


async def test_guest_cancels_while_waiting(server, new_page):
    owner = await new_page()
    guest = await new_page()
    url = await owner_opens_a_trusted_meeting(owner, server.base_url)

    await guest_asks_to_join(guest, url, "Dave")
    await expect(owner.locator("#lobby-count")).to_have_text("1")
    await guest.click("#lobby-cancel")
    await expect(guest.locator("#prejoin")).to_be_visible()
    await expect(guest.locator("#join-button")).to_be_enabled()
    await expect(owner.locator("#lobby-count")).to_have_text("")
    await expect(owner.locator("#lobby-notice")).to_be_empty()


async def test_a_dropped_connection_in_the_lobby_keeps_its_place(server, new_page):
    owner = await new_page()
    guest = await new_page()
    url = await owner_opens_a_trusted_meeting(owner, server.base_url)
    await guest_asks_to_join(guest, url, "Grace")
    await expect(owner.locator("#lobby-count")).to_have_text("1")
    first = await owner.evaluate("window.visioMeeting.conn.waiting[0].id")
    await guest.evaluate(
        """() => {
            const conn = window.visioMeeting.conn;
            window.lobbyFrames = 0;
            conn.addEventListener('lobby', () => { window.lobbyFrames += 1; });
            conn.ws.close();
        }"""
    )

    # The guest reconnects with the token of its request: the same place in the queue,
    # still on the lobby screen, and admitting works.
    await guest.wait_for_function("() => window.lobbyFrames >= 1")
    await expect(guest.locator("#lobby")).to_be_visible()
    assert await owner.evaluate("window.visioMeeting.conn.waiting.map(w => w.id)") == [first]
    await owner.click("#lobby-notice-view")
    await owner.locator("#lobby-list button[data-admit]").click()
    await expect(guest.locator("#meeting")).to_be_visible(timeout=15_000)
    await wait_decoding(guest, REMOTE_CAMERA)


async def test_owner_moderates_then_ends_the_meeting(server, new_page):
    owner = await new_page()
    guest = await new_page()
    await sign_in(owner, server.base_url, "alice")
    await owner.get_by_role("button", name="New meeting").click()  # public by default
    await owner.wait_for_url(ROOM_PATH)
    url = owner.url
    await owner.click("#join-button")
    await expect(owner.locator("#meeting")).to_be_visible(timeout=15_000)

    await join_through_the_ui(guest, url, "Bob")  # public: straight in
    await wait_decoding(owner, REMOTE_CAMERA)
    await expect(guest.locator("#toggle-audio")).to_have_attribute("aria-pressed", "true")
    bob = await guest.evaluate("window.visioMeeting.self.id")

    await owner.click("#toggle-participants")
    mute_bob = owner.locator(f'button[data-action="mute"][data-participant="{bob}"]')
    await mute_bob.click()
    await expect(guest.locator("#toggle-audio")).to_have_attribute("aria-pressed", "false")
    await expect(guest.locator("#toasts")).to_contain_text("Alice muted you")
    await expect(mute_bob).to_have_count(0)  # his microphone is off now

    await owner.click(f'button[data-action="camera_off"][data-participant="{bob}"]')
    await expect(guest.locator("#toggle-video")).to_have_attribute("aria-pressed", "false")
    await expect(guest.locator("#toasts")).to_contain_text("Alice turned off your camera")

    # Locking shows on every page.
    await owner.click("#toggle-lock")
    await expect(owner.locator("#toggle-lock")).to_have_attribute("aria-pressed", "true")
    await expect(guest.locator("#room-locked")).to_be_visible()
    await owner.click("#toggle-lock")
    await expect(guest.locator("#room-locked")).to_be_hidden()

    # Ending asks first; Cancel changes nothing.
    await owner.click("#end-meeting")
    await expect(owner.locator("#confirm-dialog")).to_be_visible()
    await owner.click("#confirm-cancel")
    await expect(owner.locator("#confirm-dialog")).to_be_hidden()
    await owner.click("#end-meeting")
    await owner.click("#confirm-ok")
    await expect(guest.locator("#left")).to_be_visible(timeout=10_000)
    await expect(guest.locator("#left-title")).to_have_text("The meeting has ended")
    await expect(guest.locator("#left-message")).to_have_text("Alice ended the meeting for all.")
    await expect(owner.locator("#left-message")).to_have_text("You ended the meeting for all.")


async def test_owner_removes_a_participant(server, new_page):
    owner = await new_page()
    guest = await new_page()
    await sign_in(owner, server.base_url, "alice")
    await owner.get_by_role("button", name="New meeting").click()
    await owner.wait_for_url(ROOM_PATH)
    url = owner.url
    await owner.click("#join-button")
    await expect(owner.locator("#meeting")).to_be_visible(timeout=15_000)
    await join_through_the_ui(guest, url, "Eve")
    eve = await guest.evaluate("window.visioMeeting.self.id")

    await owner.click("#toggle-participants")
    await owner.click(f'button[data-action="remove"][data-participant="{eve}"]')
    await expect(owner.locator("#confirm-text")).to_contain_text("Remove Eve")
    await owner.click("#confirm-ok")
    await expect(guest.locator("#left")).to_be_visible(timeout=10_000)
    await expect(guest.locator("#left-message")).to_contain_text("removed you")

    # Asking again puts Eve in the lobby, saying why.
    await guest.click("#rejoin-button")
    await expect(guest.locator("#lobby")).to_be_visible(timeout=15_000)
    await expect(guest.locator("#lobby-reason")).to_contain_text("removed from this meeting")
    await expect(owner.locator("#lobby-count")).to_have_text("1")


async def test_home_page_signed_in_lists_my_rooms_and_signs_out(server, new_page):
    page = await new_page()
    await page.goto(server.base_url + "/")
    await expect(page.locator("#sign-in")).to_be_visible()
    await expect(page.locator("#my-rooms")).to_be_hidden()
    await sign_in(page, server.base_url, "frank")
    await expect(page.locator("#my-rooms")).to_be_visible()
    await expect(page.locator("#my-rooms-empty")).to_be_visible()
    await page.get_by_role("button", name="New meeting").click()
    await page.wait_for_url(ROOM_PATH)
    room = page.url.rsplit("/", 1)[-1]
    await page.goto(server.base_url + "/")
    await expect(page.locator(f'#my-rooms-list [data-room="{room}"] a')).to_have_attribute(
        "href", f"/{room}"
    )
    await page.click("#sign-out")
    await expect(page.locator("#sign-in")).to_be_visible()
    await expect(page.locator("#my-rooms")).to_be_hidden()


@pytest.fixture
def own_server() -> Iterator[ServerProcess]:
    """A server of this test's own: killing its Janus must not disturb the others."""
    process, provider = start_server(lobby_timeout_s=60, **GENEROUS_LIMITS)
    yield process
    stop_server(process, provider)


NEW_REMOTE_VIDEO = """(selector) => [...document.querySelectorAll(selector)].some(v =>
    v.srcObject && v.srcObject.getVideoTracks()[0] !== window.oldTrack
    && v.getVideoPlaybackQuality().totalVideoFrames >= 10)"""
KEEP_REMOTE_TRACK = (
    "(s) => { window.oldTrack = document.querySelector(s).srcObject.getVideoTracks()[0]; }"
)
MEDIA_RESTARTED = """() => { window.mediaRestarted = false;
    window.visioMeeting.conn.addEventListener('joined', (e) => {
        if (e.detail.rejoined && !e.detail.resumed) window.mediaRestarted = true; }); }"""


async def test_a_lost_media_server_keeps_everyone_in_the_meeting(own_server, new_page):
    """Janus dies: the meeting goes on on the restarted Janus, the admitted guest stays
    admitted, and both pages publish and subscribe anew, each seeing the other again."""
    owner = await new_page()
    guest = await new_page()
    url = await owner_opens_a_trusted_meeting(owner, own_server.base_url)
    await guest_asks_to_join(guest, url, "Heidi")
    await owner.click("#lobby-notice-view")
    await owner.locator("#lobby-list button[data-admit]").click()
    await wait_decoding(guest, REMOTE_CAMERA)
    await wait_decoding(owner, REMOTE_CAMERA)
    ids = [await page.evaluate("window.visioMeeting.self.id") for page in (owner, guest)]
    for page in (owner, guest):
        await page.evaluate(KEEP_REMOTE_TRACK, REMOTE_CAMERA)
        await page.evaluate(MEDIA_RESTARTED)

    (janus,) = [p for p in psutil.Process(own_server.process.pid).children() if p.name() == "janus"]
    os.kill(janus.pid, signal.SIGKILL)

    for page, id_before in zip((owner, guest), ids, strict=True):
        await page.wait_for_function("() => window.mediaRestarted", timeout=30_000)
        assert await page.evaluate("window.visioMeeting.self.id") == id_before
        await page.wait_for_function(NEW_REMOTE_VIDEO, arg=REMOTE_CAMERA, timeout=30_000)
    await expect(guest.locator("#meeting")).to_be_visible()
    await expect(guest.locator("#lobby")).to_be_hidden()
    await expect(owner.locator("#connection-banner")).to_be_hidden()
    assert await guest.locator("#grid [data-tile]").count() == 2


async def test_the_owner_caps_the_number_of_people_from_the_people_panel(server, new_page):
    owner = await new_page()
    url = await owner_opens_a_trusted_meeting(owner, server.base_url)
    room = url.rsplit("/", 1)[-1]
    cap = owner.get_by_label("At most this many people")
    await cap.fill("7")
    await cap.press("Enter")  # a keyboard user submits the form
    await expect(owner.locator("#toasts")).to_contain_text("At most 7 people")
    # As the owner sees it: others are not told the cap (audit L6).
    seen = f"fetch('/api/rooms/{room}').then(r => r.json()).then(r => r.max_participants)"
    assert await owner.evaluate(seen) == 7
    assert server.get(f"/api/rooms/{room}")[1]["max_participants"] is None
    await cap.fill("")
    await owner.get_by_role("button", name="Apply").click()
    await expect(owner.locator("#toasts")).to_contain_text("No more limit")
    assert await owner.evaluate(seen) is None
