"""Transcription and recording in the web app: a moderator's toggles, the indicator that
everyone in the meeting sees, the notice before entering, and the transcripts page."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Route, WebSocketRoute, expect

from tests.browser.test_lobby import ROOM_PATH, sign_in
from tests.conftest import GENEROUS_LIMITS, Bots, start_server, stop_server
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture
def capture_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of this test's own whose transcription jobs fail at once (no speech model):
    no Whisper run slows the other tests down, and the page shows a real failure."""
    process, provider = start_server(speech_model_dir=str(tmp_path / "no-model"), **GENEROUS_LIMITS)
    yield process
    stop_server(process, provider)


@pytest.fixture
async def capture_bots(capture_server: ServerProcess) -> AsyncIterator[Bots]:
    pool = Bots(capture_server)
    yield pool
    await pool.close()


async def tab_to(page: Page, selector: str, limit: int = 30) -> None:
    """Press Tab until the element has the focus: it must be reachable with the keyboard."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => !!document.activeElement?.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with Tab")


def room_frame(transcription: bool) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["type"] == "room" and f["room"]["capture"]["transcription"] is transcription


class FailingCaptures:
    """Relays a page's WebSocket to the server; once `failing`, answers its capture
    requests itself with the error a server in trouble would send."""

    def __init__(self) -> None:
        self.failing = False

    def __call__(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message) if isinstance(message, str) else {}
            if self.failing and frame.get("type") == "capture":
                error = {"type": "error", "code": "media_error", "ref": frame.get("ref")}
                ws.send(json.dumps({**error, "message": "the media server did not answer"}))
            else:
                server.send(message)

        ws.on_message(from_page)


async def test_owner_transcribes_everyone_is_told_and_finds_the_capture(
    capture_server, capture_bots, new_page
):
    server = capture_server
    owner = await new_page()
    relay = FailingCaptures()
    await owner.route_web_socket(re.compile(r".*/ws$"), relay)
    await sign_in(owner, server.base_url, "alice")
    await owner.get_by_role("button", name="New meeting").click()
    await owner.wait_for_url(ROOM_PATH)
    url = owner.url
    room = url.rsplit("/", 1)[-1]
    await expect(owner.locator("#prejoin-capture")).to_be_hidden()  # nothing captured yet
    await owner.click("#join-button")
    await expect(owner.locator("#meeting")).to_be_visible(timeout=15_000)
    other = await capture_bots.join(room, "Bob", publish=False)

    # The moderator's toggle: a real button, reached with Tab, pressed with the keyboard.
    toggle = owner.locator("#toggle-transcription")
    status = owner.locator("#capture-status")
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await expect(toggle).to_have_accessible_name("Transcribe")
    await expect(status).to_have_attribute("role", "status")
    await expect(status).to_be_empty()
    await owner.locator("#toggle-audio").focus()
    await tab_to(owner, "#toggle-transcription")
    since = len(other.frames)
    await owner.keyboard.press("Enter")

    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await expect(status).to_have_text("Transcription on")
    await expect(owner.locator("#toasts")).to_contain_text("Transcription has started")
    told = await other.wait_for(room_frame(True), since=since)
    assert told["room"]["capture"] == {"transcription": True, "recording": False}
    await expect(owner.locator("#toggle-recording")).to_be_visible()  # and Record

    # Members find the room's transcripts from the meeting (in a new tab). Guests will
    # have to wait in the lobby from now on.
    await owner.click("#toggle-participants")
    link = owner.locator("#transcripts-link")
    await expect(link).to_have_attribute("href", f"/{room}/transcripts")
    await expect(link).to_have_attribute("target", "_blank")
    await owner.select_option("#room-access", "trusted")
    # Bob, a guest in by right only, loses it with the right (audit L1).
    revoked = await other.wait_for(lambda f: f.get("code") == "access_revoked")
    assert revoked["type"] == "error"

    # Someone about to enter is told, on the pre-join screen (the Join button's
    # description too) and in the lobby.
    guest = await new_page()
    await guest.goto(url)
    notice = guest.locator("#prejoin-capture")
    await expect(notice).to_contain_text("This meeting is being transcribed")
    assert "prejoin-capture" in (
        await guest.get_attribute("#join-button", "aria-describedby") or ""
    )
    await guest.fill("#display-name", "Carol")
    await guest.click("#join-button")
    await expect(guest.locator("#lobby")).to_be_visible(timeout=15_000)
    await expect(guest.locator("#lobby-capture")).to_contain_text(
        "This meeting is being transcribed"
    )

    # Pressed again: it stops, for everyone.
    await toggle.focus()
    await owner.keyboard.press("Space")
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await expect(status).to_be_empty()
    await expect(owner.locator("#toasts")).to_contain_text("Transcription has stopped")

    # A request the server refuses says so, and the toggle stays as it was.
    relay.failing = True
    recording = owner.locator("#toggle-recording")
    await recording.click()
    await expect(owner.locator("#toasts")).to_contain_text("Recording could not start")
    await expect(recording).to_have_attribute("aria-pressed", "false")
    await expect(recording).not_to_have_attribute("aria-busy", "true")
    await expect(status).to_be_empty()
    relay.failing = False

    # The meeting ends; the owner is pointed to the transcripts, where the capture waits.
    await owner.click("#end-meeting")
    await owner.click("#confirm-ok")
    await expect(owner.locator("#left")).to_be_visible(timeout=10_000)
    await expect(owner.locator("#left-transcripts-link")).to_have_attribute(
        "href", f"/{room}/transcripts"
    )
    page_url = f"{server.base_url}/{room}/transcripts"
    await owner.goto(page_url)
    item = owner.locator("#captures-list li[data-capture]")
    await expect(item).to_have_count(1)
    await expect(item.locator("h3")).to_have_text(room)
    # No speech model on this server: the job fails, and the page shows why by itself.
    await expect(item.locator(".status-badge")).to_have_text("Failed", timeout=20_000)
    await expect(item.locator(".capture-error")).to_contain_text("speech_model_dir")
    await expect(item.get_by_role("button", name=re.compile("^Retry"))).to_be_visible()
    # The owner sets the language of the room's next transcripts.
    await expect(owner.locator("#room-language")).to_have_value("auto")
    await owner.select_option("#room-language", "fr")
    await expect(owner.locator("#room-language-status")).to_have_text("Language saved.")
    language = await owner.evaluate(
        "async (id) => (await (await fetch(`/api/rooms/${id}`)).json()).language", room
    )
    assert language == "fr"

    # The home page links to it.
    await owner.goto(server.base_url + "/")
    entry = owner.locator("#my-rooms-list li", has=owner.locator(f'[data-room="{room}"]'))
    await expect(
        entry.get_by_role("link", name=f"Transcripts and recordings of {room}")
    ).to_have_attribute("href", f"/{room}/transcripts")

    # Someone else, signed in, is not allowed; a guest is asked to sign in.
    stranger = await new_page()
    await sign_in(stranger, server.base_url, "mallory")
    await stranger.goto(page_url)
    await expect(stranger.locator("#page-status")).to_contain_text("not allowed")
    await expect(stranger.locator("#captures")).to_be_hidden()
    await guest.goto(page_url)
    await expect(guest.locator("#page-status")).to_contain_text("Sign in to see")
    await expect(guest.locator("#problem-sign-in")).to_be_visible()

    # The owner deletes it (after confirming).
    await owner.goto(page_url)
    await item.get_by_role("button", name=re.compile("^Delete")).click()
    await owner.click("#confirm-ok")
    await expect(item).to_have_count(0)
    await expect(owner.locator("#captures-empty")).to_be_visible()


# ---- the transcripts page on its own, with the API's answers made up ----------------------

ROOM = "abc-defg-hij"
DONE_FILES = [
    {"name": n, "format": f, "size": s, "url": f"/api/captures/c-done/files/{n}"}
    for n, f, s in [
        ("transcript.json", "json", 2300),
        ("transcript.vtt", "vtt", 900),
        ("transcript.srt", "srt", 880),
        ("transcript.md", "md", 700),
        ("transcript.docx", "docx", 38_000),
        ("recording.ogg", "ogg", 1_500_000),
        ("recording.mp4", "mp4", 52_000_000),
    ]
]


def capture(capture_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": capture_id, "room": ROOM, "title": "Team weekly", "language": "auto",
        "transcription": True, "recording": False, "status": status, "progress": 0.0,
        "error": None, "started_at": "2026-03-02T09:00:00", "ended_at": "2026-03-02T09:30:00",
        "expires_at": None, "files": [], "can_manage": True, **fields,
    }  # fmt: skip


async def test_transcripts_page_shows_progress_downloads_and_the_transcript(server, new_page):
    captures = [
        capture("c-run", "running", progress=0.42, started_at="2026-03-04T09:00:00", ended_at=None),
        capture("c-fail", "failed", error="no audio was captured", started_at="2026-03-03T09:00:00",
                ended_at="2026-03-03T09:05:00"),
        capture("c-done", "done", recording=True, files=DONE_FILES),
    ]  # fmt: skip
    transcript = {"segments": [
        {"speaker": "Alice", "start": 65.2, "end": 68, "text": "Good morning everyone."},
        {"speaker": "Alice", "start": 69, "end": 70, "text": "Shall we start?"},
        {"speaker": "Bob", "start": 3725, "end": 3727, "text": "Let us review the budget."},
    ]}  # fmt: skip
    asked: list[str] = []

    async def api(route: Route) -> None:
        request = route.request
        path = request.url.split("?")[0].split(server.base_url, 1)[1]
        asked.append(f"{request.method} {path}")
        if path == f"/api/rooms/{ROOM}":
            body = {"id": ROOM, "name": "Team weekly", "your_role": "owner", "language": "en"}
            return await route.fulfill(json=body)
        if path == f"/api/rooms/{ROOM}/captures":
            return await route.fulfill(json=captures)
        if path == "/api/captures/c-done/files/transcript.json":
            return await route.fulfill(json=transcript)
        if path == "/api/captures/c-fail/retry":
            captures[1] = {**captures[1], "status": "queued", "error": None}
            return await route.fulfill(json=captures[1])
        if request.method == "DELETE" and path == "/api/captures/c-done":
            assert request.headers.get("x-csrf-token")
            del captures[2]
            return await route.fulfill(status=204)
        await route.continue_()

    page = await new_page()
    await page.route(re.compile(r".*/api/(rooms|captures)/.*"), api)
    await page.goto(f"{server.base_url}/{ROOM}/transcripts")
    items = page.locator("#captures-list li[data-capture]")
    await expect(items).to_have_count(3)
    await expect(page.locator("#room-link")).to_have_text("Team weekly")
    await expect(page.locator("#room-language")).to_have_value("en")

    running, failed, done = items.nth(0), items.nth(1), items.nth(2)
    await expect(running.locator(".status-badge")).to_have_text("Processing…")
    await expect(running.locator("progress")).to_have_js_property("value", 0.42)
    await expect(running).to_contain_text("42%")
    await expect(running.get_by_role("button", name=re.compile("Delete"))).to_have_count(0)
    # While a job runs, the page asks again by itself every few seconds.
    captures[0] = {**captures[0], "progress": 0.8}
    await expect(running.locator("progress")).to_have_js_property("value", 0.8, timeout=6_000)
    await expect(running).to_contain_text("80%")
    await expect(failed).to_contain_text("Processing failed: no audio was captured")
    await expect(done.locator(".status-badge")).to_have_text("Ready")
    await expect(done).to_contain_text("30 minutes")
    links = done.locator("a.file-link")
    await expect(links).to_have_count(7)
    await expect(links.first).to_have_text("Video (MP4)")  # the meeting's video comes first
    player = done.locator("video.capture-video")
    await expect(player).to_have_attribute("src", "/api/captures/c-done/files/recording.mp4")
    await expect(player).to_have_accessible_name(re.compile("^Video of Team weekly"))
    await expect(player.locator("track")).to_have_attribute(
        "src", "/api/captures/c-done/files/transcript.vtt"
    )
    await expect(done.locator('a[data-file="transcript.vtt"]')).to_have_attribute(
        "href", "/api/captures/c-done/files/transcript.vtt"
    )
    await expect(done.get_by_role("link", name="Word document (DOCX)")).to_be_visible()

    # The transcript, readable on the page: times as mm:ss, or hh:mm:ss past an hour.
    show = done.locator("button[aria-controls]")
    await expect(show).to_have_accessible_name("Show the transcript")
    await expect(show).to_have_attribute("aria-expanded", "false")
    await show.click()
    await expect(show).to_have_attribute("aria-expanded", "true")
    await expect(show).to_have_accessible_name("Hide the transcript")
    segments = done.locator(".transcript li")
    await expect(segments).to_have_count(3)
    await expect(segments.nth(0)).to_contain_text("01:05")
    await expect(segments.nth(0)).to_contain_text("Alice")
    await expect(segments.nth(0)).to_contain_text("Good morning everyone.")
    await expect(segments.nth(2).locator("time")).to_have_text("01:02:05")
    await expect(segments.nth(2)).to_contain_text("Bob")

    # Retry a failed one: it waits again.
    await failed.get_by_role("button", name=re.compile("^Retry")).click()
    await expect(failed.locator(".status-badge")).to_have_text("Waiting to be processed")
    assert "POST /api/captures/c-fail/retry" in asked

    # Delete asks first; Cancel keeps it, Delete removes it.
    delete = done.get_by_role("button", name=re.compile("^Delete"))
    await delete.click()
    await expect(page.locator("#confirm-text")).to_contain_text("Delete Team weekly")
    await page.click("#confirm-cancel")
    await expect(items).to_have_count(3)
    await delete.click()
    await page.click("#confirm-ok")
    await expect(items).to_have_count(2)
    assert "DELETE /api/captures/c-done" in asked
    await expect(page.locator("#toasts")).to_contain_text("was deleted")

    # In French too.
    await page.select_option("select[data-language-picker]", "fr")
    await expect(page.locator("h1")).to_have_text("Transcriptions et enregistrements")
    await expect(items.nth(0).locator(".status-badge")).to_have_text("Traitement en cours…")
    assert await page.evaluate("document.documentElement.lang") == "fr"
