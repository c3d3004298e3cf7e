"""Live captions in the web app: the toggle, the captions area (partials replaced in place,
finals read out to screen readers), the notice for people not captioned, the WebVTT
download, the choice kept across a reconnection, and French.

The page talks to the real server; its captions requests are answered, and caption frames
injected, by a WebSocket relay in the test: no speech recognition runs here (the
integration tests do that with bots)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from tests.browser.test_web_meeting import join_through_the_ui

pytestmark = pytest.mark.browser

SOCKET = re.compile(r".*/ws$")


class CaptionsRelay:
    """Relays a page's WebSocket to the server, except `captions` requests: those are
    recorded and answered here, like a server with captions would (or one without, once
    `unavailable`). `inject` sends a frame to the page as if the server had."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.unavailable = False
        self.sockets: list[WebSocketRoute] = []

    def __call__(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        self.sockets.append(ws)

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message) if isinstance(message, str) else {}
            if frame.get("type") != "captions":
                server.send(message)
                return
            self.requests.append(frame)
            if self.unavailable and frame["on"]:
                ws.send(json.dumps({"type": "error", "code": "captions_unavailable",
                                    "message": "no speech model"}))  # fmt: skip
            elif frame["on"]:
                ws.send(json.dumps({"type": "captions", "on": True, "history": self.history}))
            else:
                ws.send(json.dumps({"type": "captions", "on": False}))

        ws.on_message(from_page)

    def inject(self, **frame: Any) -> None:
        self.sockets[-1].send(json.dumps(frame))


async def until(check: Callable[[], bool], what: str, timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def caption(cid: str, who: str, name: str, text: str, final: bool, start: int, **extra: Any):
    return {
        "type": "caption", "id": cid, "participant": who, "name": name, "text": text,
        "final": final, "start": start, "end": start + 2222, "language": "en", **extra,
    }  # fmt: skip


async def open_meeting(new_page, server, room: str, name: str, locale: str = "en-US"):
    page: Page = await new_page(locale=locale)
    relay = CaptionsRelay()
    await page.route_web_socket(SOCKET, relay)
    await join_through_the_ui(page, f"{server.base_url}/{room}", name)
    return page, relay


async def test_captions_toggle_lines_notice_download_and_reconnection(server, new_page):
    room = server.create_room()
    page, relay = await open_meeting(new_page, server, room, "Lin")
    t0 = int(time.time() * 1000)
    ada, bob, carol = "p-1a2b3c4d", "p-2b3c4d5e", "p-3c4d5e6f"
    relay.history = [
        caption("p-9-camera-1", "p-99999999", "Grace", "Welcome back.", True, t0 - 60_000)
    ]

    toggle = page.locator("#toggle-captions")
    area = page.locator("#captions")
    lines = page.locator("#captions-lines .caption-line")
    live = page.locator("#captions-live")
    await expect(toggle).to_have_accessible_name("Captions")
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await expect(area).to_be_hidden()

    # A real button, pressed with the keyboard: the request goes out, the area shows.
    await toggle.focus()
    await page.keyboard.press("Enter")
    await until(lambda: relay.requests == [{"type": "captions", "on": True}], "captions on")
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await expect(area).to_be_visible()
    await expect(page.locator("#captions-hint")).to_have_text(
        "Captions will appear here when someone speaks."
    )
    # Finals are said to screen readers by a polite log; the lines themselves (partials
    # changing word by word) are hidden from them.
    await expect(live).to_have_attribute("role", "log")
    await expect(live).to_have_attribute("aria-live", "polite")
    await expect(page.locator("#captions-lines")).to_have_attribute("aria-hidden", "true")
    await expect(page.locator("#captions-notices")).to_have_attribute("role", "status")
    assert await page.evaluate("localStorage.getItem('visio.captions')") == "on"

    # Partial, newer partial, final: one line, replaced in place.
    cid = f"{ada}-camera-{t0}-3"
    relay.inject(**caption(cid, ada, "Ada", "the new", False, t0))
    await expect(lines).to_have_count(1)
    await expect(lines.first).to_have_text("Ada: the new")
    await expect(page.locator("#captions-hint")).to_be_hidden()
    relay.inject(**caption(cid, ada, "Ada", "the new library", False, t0))
    await expect(lines.first).to_have_text("Ada: the new library")
    await expect(live).to_be_empty()  # partials are not read out
    relay.inject(**caption(cid, ada, "Ada", "the new library opens.", True, t0))
    await expect(lines.first).to_have_text("Ada: the new library opens.")
    await expect(lines).to_have_count(1)
    await expect(lines.first).to_have_class(re.compile(r"\bfinal\b"))
    await expect(live).to_have_text("Ada: the new library opens.")

    # A second speaker gets a line of their own.
    bid = f"{bob}-camera-{t0}-1"
    relay.inject(**caption(bid, bob, "Bob", "R&D", False, t0 + 3000))
    relay.inject(**caption(bid, bob, "Bob", "R&D <budget> is > 5", True, t0 + 3000))
    await expect(lines).to_have_count(2)
    await expect(lines.nth(1)).to_have_text("Bob: R&D <budget> is > 5")
    await expect(live.locator("p")).to_have_count(2)

    # Too many people talk: someone is not captioned for now, then is again.
    notices = page.locator("#captions-notices")
    relay.inject(type="caption_status", participant=carol, name="Carol", captioned=False)
    await expect(notices).to_have_text("Carol: not captioned (too many people talking)")
    relay.inject(type="caption_status", participant=carol, name="Carol", captioned=True)
    await expect(notices).to_be_empty()

    # The meeting's finals (history included) as a WebVTT file made in the browser.
    download_button = page.get_by_role("button", name="Download captions")
    await expect(download_button).to_be_enabled()
    async with page.expect_download() as info:
        await download_button.click()
    download = await info.value
    day = datetime.fromtimestamp((t0 - 60_000) / 1000).strftime("%Y-%m-%d")
    assert download.suggested_filename == f"captions-{room}-{day}.vtt"
    vtt = (await download.path()).read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT\n"), vtt
    cues = [block.splitlines() for block in vtt.strip().split("\n\n")[2:]]
    assert cues == [
        ["1", "00:00:00.000 --> 00:00:02.222", "<v Grace>Welcome back."],
        ["2", "00:01:00.000 --> 00:01:02.222", "<v Ada>the new library opens."],
        ["3", "00:01:03.000 --> 00:01:05.222", "<v Bob>R&amp;D &lt;budget&gt; is &gt; 5"],
    ], vtt

    # No more than three lines at once; a final line fades out after a while.
    for i, name in enumerate(["Carol", "Dan"]):
        relay.inject(**caption(f"x-{i}", carol, name, f"line {i}", True, t0 + 6000 + i))
    await expect(page.locator('[data-caption="x-1"]')).to_have_count(1)
    await expect(lines).to_have_count(3)
    await expect(lines.first).to_have_text("Bob: R&D <budget> is > 5")
    await page.evaluate("window.visioMeeting.captions.lingerMs = 300")
    relay.inject(**caption("x-2", carol, "Eve", "short-lived", True, t0 + 7000))
    await expect(lines).to_have_count(3)
    await expect(page.locator('[data-caption="x-2"]')).to_have_count(0, timeout=3000)

    # The connection drops: back in, captions are asked for again; the history the server
    # sends then adds what was said meanwhile and doubles nothing.
    relay.history = [
        caption(cid, ada, "Ada", "the new library opens.", True, t0),
        caption("f-1", "p-4d5e6f70", "Frank", "while you were away", True, t0 + 8000),
    ]
    await relay.sockets[-1].close()
    await until(lambda: len(relay.requests) == 2, "captions asked again", timeout_s=10)
    assert relay.requests[-1] == {"type": "captions", "on": True}
    await page.wait_for_function("window.visioMeeting.captions.finals.size === 7")
    await expect(toggle).to_have_attribute("aria-pressed", "true")

    # Off: the request goes out, the area goes away, and the choice is kept.
    await toggle.click()
    await until(lambda: relay.requests[-1] == {"type": "captions", "on": False}, "off")
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await expect(area).to_be_hidden()
    assert await page.evaluate("localStorage.getItem('visio.captions')") == "off"

    # A server without a speech model: said clearly, and the toggle goes back off.
    relay.unavailable = True
    await page.locator("#toggle-captions").focus()
    await page.keyboard.press("Alt+C")  # the shortcut
    await until(lambda: relay.requests[-1] == {"type": "captions", "on": True}, "Alt+C")
    requests = len(relay.requests)
    await expect(page.locator("#toasts")).to_contain_text(
        "Live captions are not available on this server."
    )
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await expect(area).to_be_hidden()
    await page.wait_for_timeout(300)
    assert len(relay.requests) == requests  # not asked again (it would not help)


async def test_captions_in_french(server, new_page):
    room = server.create_room()
    page, relay = await open_meeting(new_page, server, room, "Zoé", locale="fr-FR")
    toggle = page.locator("#toggle-captions")
    await expect(toggle).to_have_accessible_name("Sous-titres")
    await toggle.click()
    await until(lambda: relay.requests == [{"type": "captions", "on": True}], "captions on")
    await expect(page.locator("#captions-hint")).to_have_text(
        "Les sous-titres s’afficheront ici quand quelqu’un parlera."
    )
    t0 = int(time.time() * 1000)
    relay.inject(**caption("c-1", "p-1a2b3c4d", "Ada", "bonjour à tous", True, t0, language="fr"))
    line = page.locator("#captions-lines .caption-line")
    await expect(line).to_have_text("Ada\u00a0: bonjour à tous")
    await expect(line.locator(".caption-text")).to_have_attribute("lang", "fr")
    relay.inject(type="caption_status", participant="p-3c4d5e6f", name="Carol", captioned=False)
    await expect(page.locator("#captions-notices")).to_have_text(
        "Carol\u00a0: pas de sous-titres (trop de personnes parlent en même temps)"
    )
    await expect(page.get_by_role("button", name="Télécharger les sous-titres")).to_be_enabled()
