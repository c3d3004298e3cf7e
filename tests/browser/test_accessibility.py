"""Accessibility audits: axe-core runs on every page and state of the web app (home, pre-join,
lobby, the meeting with each panel open, the dialogs, the transcripts page), and none may have
a serious or critical violation; the main pages reflow at 320 px; a keyboard-only walk joins,
mutes, chats and leaves, and the confirmation dialog keeps the focus.

axe is injected with `page.evaluate` of its source, not with a context that bypasses the CSP:
DevTools evaluation is not subject to the page's `script-src 'self'`, so the page under audit
runs with its real policy (a bypass would hide anything the policy breaks)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.test_captions_ui import SOCKET, CaptionsRelay, caption
from tests.browser.test_lobby import ROOM_PATH, sign_in
from tests.browser.test_transcripts_ui import DONE_FILES, ROOM, capture

pytestmark = pytest.mark.browser

AXE_SOURCE = (
    Path(__file__).parents[1] / "firefox" / "node_modules" / "axe-core" / "axe.min.js"
).read_text()

RUN_AXE = """async () => {
    const results = await axe.run(document, {resultTypes: ['violations']});
    return results.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        targets: v.nodes.slice(0, 6).map(n => n.target.join(' ')),
    }));
}"""

BLOCKING = {"serious", "critical"}

# Visible elements that stick out of a 320 px wide window: content that would need scrolling
# in two directions, or that is cut off (WCAG 1.4.10 reflow, RGAA 10.11).
OVERFLOWING = """() => [...document.querySelectorAll('body *')]
    .filter(e => { const r = e.getBoundingClientRect();
        return r.width > 1 && (r.right > innerWidth + 1 || r.left < -1) && e.checkVisibility(); })
    .map(e => e.id ? `#${e.id}` : `${e.tagName.toLowerCase()}.${e.classList[0]}`).slice(0, 6)"""


class Audits:
    """Runs axe on each state a test walks through and keeps what it found, so that one run
    reports every state at once."""

    def __init__(self) -> None:
        self.found: dict[str, list[dict[str, Any]]] = {}

    async def check(self, page: Page, state: str) -> None:
        if not await page.evaluate("typeof window.axe === 'object'"):
            await page.evaluate(AXE_SOURCE)
        self.found[state] = await page.evaluate(RUN_AXE)

    async def check_reflow(self, page: Page, state: str) -> None:
        """The same state in a 320 px wide window (a phone, or 1280 px at 400 % zoom)."""
        await page.set_viewport_size({"width": 320, "height": 640})
        await page.wait_for_timeout(300)  # the grid lays its tiles out again
        overflowing = await page.evaluate(OVERFLOWING)
        if overflowing:
            self.found.setdefault(f"{state}, 320 px wide", []).append(
                {"impact": "serious", "id": "reflow", "help": "overflows", "targets": overflowing}
            )
        await page.set_viewport_size({"width": 1280, "height": 720})

    def report(self) -> str:
        lines = []
        for state, violations in self.found.items():
            for v in violations:
                lines.append(f"{state}: [{v['impact']}] {v['id']}: {v['help']} {v['targets']}")
        return "\n".join(lines)

    def assert_clean(self) -> None:
        blocking = [
            v for violations in self.found.values() for v in violations if v["impact"] in BLOCKING
        ]
        report = self.report()
        print(report or "axe: no violation")  # the minor and moderate ones, for the log
        assert not blocking, f"serious or critical accessibility violations:\n{report}"


async def test_every_page_and_state_has_no_serious_accessibility_violation(server, new_page):
    audits = Audits()
    owner = await new_page()
    guest = await new_page()
    relay = CaptionsRelay()  # the guest's captions, answered as a server with captions would
    await guest.route_web_socket(SOCKET, relay)

    await guest.goto(server.base_url + "/")
    await expect(guest.locator("#sign-in")).to_be_visible()
    await audits.check(guest, "home")
    await audits.check_reflow(guest, "home")
    await guest.goto(server.base_url + "/nop-nope-nop")
    await expect(guest.locator("#not-found")).to_be_visible()
    await audits.check(guest, "unknown meeting")

    await sign_in(owner, server.base_url, "alice")
    await audits.check(owner, "home, signed in")
    await owner.get_by_role("button", name="New meeting").click()
    await owner.wait_for_url(ROOM_PATH)
    url, room = owner.url, owner.url.rsplit("/", 1)[-1]
    await expect(owner.locator("#prejoin-account")).to_contain_text("Signed in as")
    await audits.check(owner, "pre-join, signed in")
    await owner.click("#join-button")
    await expect(owner.locator("#meeting")).to_be_visible(timeout=15_000)
    await audits.check(owner, "meeting")
    await owner.click("#toggle-participants")
    await expect(owner.locator("#host-controls")).to_be_visible()
    await audits.check(owner, "meeting, people panel of a host")
    await owner.select_option("#room-access", "trusted")
    await expect(owner.locator("#room-access-hint")).not_to_be_empty()

    await guest.goto(url)
    await expect(guest.locator("#prejoin-account")).to_contain_text("as a guest")
    await audits.check(guest, "pre-join, guest")
    await audits.check_reflow(guest, "pre-join")
    await guest.fill("#display-name", "Bob")
    await guest.click("#join-button")
    await expect(guest.locator("#lobby")).to_be_visible(timeout=15_000)
    await expect(guest.locator("#lobby-reason")).not_to_be_empty()
    await audits.check(guest, "lobby, waiting")

    await expect(owner.locator("#lobby-notice")).to_contain_text("Bob is asking to join")
    await audits.check(owner, "meeting, someone asks to join")
    await owner.click("#toggle-lobby")
    await expect(owner.locator("#lobby-panel li", has_text="Bob")).to_be_visible()
    await audits.check(owner, "meeting, lobby panel")
    await owner.locator("#lobby-panel button[data-admit]").click()

    await expect(guest.locator("#meeting")).to_be_visible(timeout=15_000)
    await guest.click("#toggle-chat")
    await guest.fill("#chat-input", "Hello, can you hear me?")
    await guest.press("#chat-input", "Enter")
    await expect(guest.locator("#chat-messages .chat-message")).to_have_count(1)
    await audits.check(guest, "meeting, chat panel with a message")
    await audits.check_reflow(guest, "meeting, chat panel")
    await guest.click("#toggle-participants")
    await expect(guest.locator("#participants-list li")).to_have_count(2)
    await audits.check(guest, "meeting, people panel")
    await guest.click("#toggle-captions")
    await expect(guest.locator("#captions")).to_be_visible()
    t0 = int(time.time() * 1000)
    relay.inject(**caption(f"p-1-camera-{t0}", "p-1", "Alice", "Good morning.", True, t0))
    await expect(guest.locator("#captions-lines .caption-line")).to_have_count(1)
    await audits.check(guest, "meeting, captions on")
    await guest.click("#toggle-reactions")
    await expect(guest.locator("#reaction-picker")).to_be_visible()
    await audits.check(guest, "meeting, reaction picker")
    await guest.keyboard.press("Escape")

    await owner.click("#end-meeting")
    await expect(owner.locator("#confirm-dialog")).to_be_visible()
    await audits.check(owner, "meeting, confirmation dialog")
    await owner.click("#confirm-ok")
    await expect(guest.locator("#left")).to_be_visible(timeout=10_000)
    await audits.check(guest, "left the meeting")
    await owner.goto(f"{server.base_url}/{room}/transcripts")
    await expect(owner.locator("#captures-empty")).to_be_visible()
    await audits.check(owner, "transcripts, none yet")

    audits.assert_clean()


async def test_the_transcripts_page_and_its_dialog_with_axe_and_the_keyboard(server, new_page):
    """Every kind of capture (processing, failed, ready with its files), a transcript open;
    then the confirmation dialog, with the keyboard: it keeps the focus, Escape cancels."""
    captures = [
        capture("c-run", "running", progress=0.42, ended_at=None),
        capture("c-fail", "failed", error="no audio was captured"),
        capture("c-done", "done", recording=True, files=DONE_FILES),
    ]
    transcript = {"segments": [{"speaker": "Alice", "start": 65, "end": 68, "text": "Hello."}]}
    answers = {
        f"/api/rooms/{ROOM}": {"id": ROOM, "name": "Team weekly", "your_role": "owner"},
        f"/api/rooms/{ROOM}/captures": captures,
        "/api/captures/c-done/files/transcript.json": transcript,
    }
    page = await new_page()

    async def api(route) -> None:
        path = route.request.url.split("?")[0].removeprefix(server.base_url)
        await route.fulfill(json=answers[path]) if path in answers else await route.continue_()

    await page.route(re.compile(r".*/api/(rooms|captures)/.*"), api)
    await page.goto(f"{server.base_url}/{ROOM}/transcripts")
    items = page.locator("#captures-list li[data-capture]")
    await expect(items).to_have_count(3)
    await items.nth(2).get_by_role("button", name="Show the transcript").click()
    await expect(items.nth(2).locator(".transcript li")).to_have_count(1)
    audits = Audits()
    await audits.check(page, "transcripts, with captures")
    await audits.check_reflow(page, "transcripts")
    keys = Keyboard(page)
    delete = items.nth(2).get_by_role("button", name=re.compile("^Delete"))
    await keys.tab_to('#captures-list li[data-capture="c-done"] button.danger-outline')
    await expect(delete).to_be_focused()
    await page.keyboard.press("Enter")
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_be_visible()
    await audits.check(page, "transcripts, confirmation dialog")
    # Modal: the safe choice has the focus, Tab and Shift+Tab stay inside, Escape cancels
    # and gives the focus back to the button that asked.
    await keys.assert_focus_on("#confirm-cancel")
    for key in ("Tab", "Tab", "Tab", "Shift+Tab", "Shift+Tab"):
        await page.keyboard.press(key)
        if await keys.check_focus():  # (Tab may pass by the browser's own controls)
            assert await page.evaluate("document.activeElement.closest('dialog') !== null")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(delete).to_be_focused()
    await expect(items).to_have_count(3)
    keys.assert_no_problem()
    audits.assert_clean()


# ---- keyboard only ---------------------------------------------------------------------------

FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2
        && !style.outlineColor.endsWith(', 0)');
    return {
        what: el.id ? `#${el.id}` : el.outerHTML.slice(0, 80),
        ring: outline || style.boxShadow !== 'none',
    };
}"""

# An interactive role with no quoted name after it in an ARIA snapshot: a control that a
# screen reader would announce as "button" and nothing else.
UNNAMED = re.compile(
    r"^\s*- (button|link|textbox|combobox|listbox|checkbox|switch|radio|slider|spinbutton"
    r'|menuitem|tab)\b(?! ")',
    re.MULTILINE,
)


class Keyboard:
    """Moves the focus with Tab and Shift+Tab only, and checks every control it lands on: a
    visible focus indicator and an accessible name."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []

    async def check_focus(self) -> str | None:
        focused = await self.page.evaluate(FOCUSED)
        if focused is None:
            return None  # past the last control, Tab goes to the browser's own controls
        if not focused["ring"]:
            self.problems.append(f"{focused['what']}: no visible focus indicator")
        snapshot = await self.page.locator("*:focus").aria_snapshot()
        if UNNAMED.search(snapshot) or not re.search(r'^- \w+ "', snapshot):
            self.problems.append(f"{focused['what']}: no accessible name ({snapshot!r})")
        return focused["what"]

    async def tab_to(self, selector: str, backwards: bool = False, limit: int = 30) -> None:
        for _ in range(limit):
            await self.page.keyboard.press("Shift+Tab" if backwards else "Tab")
            await self.check_focus()
            if await self.page.evaluate("(s) => document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"{selector} cannot be reached with the keyboard")

    async def assert_focus_on(self, selector: str) -> None:
        await expect(self.page.locator(selector)).to_be_focused()
        assert await self.check_focus()

    def assert_no_problem(self) -> None:
        assert not self.problems, "\n".join(self.problems)


def unnamed_controls(snapshot: str) -> list[str]:
    return [line.strip() for line in snapshot.splitlines() if UNNAMED.match(line)]


async def test_keyboard_only_join_mute_chat_and_leave(server, room, bots, new_page):
    """Everything with Tab, Shift+Tab, Enter, Space and Escape: no click, no pointer."""
    bot = await bots.join(room, "Zoe", publish=False)
    page = await new_page()
    keys = Keyboard(page)
    await page.goto(server.base_url + "/")

    # Home: the first Tab stop is a skip link, seen when focused, that leads to the content.
    await expect(page.locator("#sign-in")).to_be_visible()
    await keys.tab_to("a.skip-link", limit=1)
    assert (await page.locator("a.skip-link").bounding_box() or {}).get("y", -1) >= 0
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()
    # The meeting code, typed, and Enter.
    await keys.tab_to("#meeting-code")
    await page.keyboard.type(room)
    await page.keyboard.press("Enter")

    # Pre-join: the name field has the focus, the Join button comes next with Tab.
    await expect(page.locator("#prejoin")).to_be_visible()
    await keys.assert_focus_on("#display-name")
    await page.keyboard.type("Kim")
    await keys.tab_to("#join-button")
    await page.keyboard.press("Enter")
    await expect(page.locator("#meeting")).to_be_visible(timeout=15_000)
    kim = await page.evaluate("window.visioMeeting.self.id")
    await bot.wait_until(lambda: kim in bot.participants)

    # In the meeting the focus starts on the microphone: Space mutes it, for everyone. Its
    # name stays the same; aria-pressed tells the state.
    mic = page.locator("#toggle-audio")
    await keys.assert_focus_on("#toggle-audio")
    await expect(mic).to_have_accessible_name("Microphone")
    await page.keyboard.press("Space")
    await expect(mic).to_have_attribute("aria-pressed", "false")
    await expect(mic).to_have_accessible_name("Microphone")
    await bot.wait_until(lambda: bot.participants[kim].get("audio") is False)

    # Chat: Enter opens the panel with the focus in the message field; Enter sends.
    await keys.tab_to("#toggle-chat")
    await page.keyboard.press("Enter")
    await keys.assert_focus_on("#chat-input")
    await page.keyboard.type("Typed without a mouse")
    await page.keyboard.press("Enter")
    await bot.wait_for(
        lambda f: f["type"] == "chat" and f["message"]["text"] == "Typed without a mouse"
    )
    await expect(page.locator("#chat-messages .chat-message")).to_have_count(1)
    unnamed = unnamed_controls(await page.locator("body").aria_snapshot())
    assert not unnamed, f"controls without an accessible name: {unnamed}"
    # Escape, even from the message field, closes the panel and gives the focus back to the
    # button that opened it.
    await page.keyboard.press("Escape")
    await expect(page.locator("#chat-panel")).to_be_hidden()
    await keys.assert_focus_on("#toggle-chat")
    await expect(page.locator("#toggle-chat")).to_have_attribute("aria-expanded", "false")

    # Leave, going back with Shift+Tab.
    await keys.tab_to("#leave-button", backwards=True)
    await page.keyboard.press("Enter")
    await expect(page.locator("#left")).to_be_visible(timeout=10_000)
    await bot.wait_until(lambda: kim not in bot.participants)
    await keys.assert_focus_on("#rejoin-button")
    keys.assert_no_problem()
