"""Join time: from opening the WebSocket to the first remote video frame decoded.

A publisher bot (tone + moving test pattern) sits in a room. Then, one after the other:

(a) N fresh Python bots (VisioClient, not publishing) join, and each measures
    `first_frame_at - opened_at` for the publisher's camera video. `opened_at` is taken
    just before the WebSocket handshake starts, `first_frame_at` when aiortc hands the
    first decoded VP8 frame over. Each join is broken down: `joined` received, subscriber
    `offer` received, ICE connected, DTLS connected (peer connection `connected`).

(b) with --browser (default when /usr/bin/chromium and visio/web/room.html exist): M
    headless Chromium pages open /{room}, fill #display-name, click #join-button (the page
    publishes its fake camera as a person would), and measure in the page, from the
    WebSocket's construction (and from its `open` event), to the first frame of the
    publisher's <video data-participant=...> (requestVideoFrameCallback).

Run as root (it makes a private network namespace):
    .venv/bin/python bench/join_time.py [--joins 20] [--browser-joins 10] [--no-browser]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h

from visio.client import PcmAudioTrack, TestPatternTrack, VisioClient
from visio.testing.chromium import CHROMIUM_ARGS
from visio.testing.server import ServerProcess

CHROMIUM = "/usr/bin/chromium"
ROOM_HTML = Path(__file__).resolve().parent.parent / "visio" / "web" / "room.html"

# Installed before any page script: times the first WebSocket and the first frame of
# every remote <video data-participant>.
INIT_SCRIPT = """
(() => {
  const marks = {
    created: null, open: null, messages: {}, sent: {}, pcs: [], frames: {}, longTasks: [],
  };
  window.__bench = marks;
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) marks.longTasks.push([e.startTime, e.duration]);
    }).observe({ type: 'longtask', buffered: true });
  } catch {}
  const NativeWebSocket = window.WebSocket;
  class TimedWebSocket extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      if (marks.created !== null) return;
      marks.created = performance.now();
      this.addEventListener('open', () => { marks.open = performance.now(); });
      this.addEventListener('message', (ev) => {
        const now = performance.now();
        try {
          const type = JSON.parse(ev.data).type;
          if (!(type in marks.messages)) marks.messages[type] = now;
        } catch {}
      });
    }
  }
  TimedWebSocket.prototype.send = function (data) {
    try {
      const type = JSON.parse(data).type;
      if (!(type in marks.sent)) marks.sent[type] = performance.now();
    } catch {}
    return NativeWebSocket.prototype.send.call(this, data);
  };
  window.WebSocket = TimedWebSocket;
  const NativePeerConnection = window.RTCPeerConnection;
  class TimedPeerConnection extends NativePeerConnection {
    constructor(...args) {
      super(...args);
      const info = { created: performance.now(), track: null, connected: null };
      marks.pcs.push(info);
      this.addEventListener('track', () => { info.track ??= performance.now(); });
      this.addEventListener('connectionstatechange', () => {
        if (this.connectionState === 'connected') info.connected ??= performance.now();
      });
    }
  }
  window.RTCPeerConnection = TimedPeerConnection;
  const watch = (video) => {
    if (video.__benchWatched) return;
    video.__benchWatched = true;
    const key = `${video.dataset.participant}/${video.dataset.target}`;
    const added = performance.now();
    const first = (now, meta) => {
      if (key in marks.frames) return;
      marks.frames[key] = {
        added, callback: now, presented: meta.presentationTime,
        received: meta.receiveTime ?? null, width: meta.width, height: meta.height,
      };
    };
    if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(first);
  };
  const scan = () => document.querySelectorAll('video[data-participant]').forEach(watch);
  new MutationObserver(scan).observe(document, { childList: true, subtree: true });
})();
"""


class TimedClient(VisioClient):
    """A VisioClient that notes when each step of its join happens (time.monotonic())."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.marks: dict[str, float] = {}

    async def _on_frame(self, frame: dict[str, Any]) -> None:
        self.marks.setdefault(str(frame.get("type")), time.monotonic())
        await super()._on_frame(frame)

    def _new_pc(self):  # type: ignore[no-untyped-def]
        pc = super()._new_pc()

        @pc.on("iceconnectionstatechange")
        def _ice() -> None:
            if pc.iceConnectionState in ("checking", "completed"):
                self.marks.setdefault(f"ice_{pc.iceConnectionState}", time.monotonic())

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "connected":
                self.marks.setdefault("connected", time.monotonic())

        return pc


async def start_publisher(server: ServerProcess, room: str) -> VisioClient:
    publisher = VisioClient(server.base_url, room, "Publisher")
    await publisher.connect()
    await publisher.publish([PcmAudioTrack(), TestPatternTrack()])
    await publisher.wait_for(
        lambda f: f["type"] == "media" and f["target"] == "camera" and f["state"] == "up", 20
    )
    return publisher


async def bot_join(
    server: ServerProcess, room: str, publisher: str, i: int, publish: bool
) -> dict[str, float]:
    client = TimedClient(server.base_url, room, f"Joiner {i}", audio=publish, video=publish)
    try:
        await client.connect()
        if publish:  # as the web app does: publish the camera right after `joined`
            await client.publish([PcmAudioTrack(), TestPatternTrack()])
        await client.wait_frames(publisher, "video", timeout=20)
        received = client.received[(publisher, "camera", "video")]
        assert client.opened_at is not None and received.first_frame_at is not None
        t0 = client.opened_at
        marks = {k: (v - t0) * 1000 for k, v in client.marks.items()}
        marks["frame"] = (received.first_frame_at - t0) * 1000
        return marks
    finally:
        await client.leave()


async def run_bots(server: ServerProcess, room: str, publisher: str, args: argparse.Namespace):
    results: list[dict[str, float]] = []
    failures = 0
    for i in range(args.warmup + args.joins):
        try:
            marks = await bot_join(server, room, publisher, i, args.joiners_publish)
        except Exception as exc:  # report and go on
            failures += 1
            print(f"  bot join {i}: failed: {exc!r}")
            continue
        finally:
            await asyncio.sleep(args.pause)
        tag = " (warm-up, not counted)" if i < args.warmup else ""
        print(
            f"  bot join {i:2d}: joined {marks.get('joined', float('nan')):6.1f} ms, "
            f"offer {marks.get('offer', float('nan')):6.1f}, "
            f"connected {marks.get('connected', float('nan')):6.1f}, "
            f"first frame {marks['frame']:6.1f} ms{tag}"
        )
        if i >= args.warmup:
            results.append(marks)
    return results, failures


async def browser_join(browser: Any, url: str, publisher: str, i: int) -> dict[str, float]:
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await context.add_init_script(INIT_SCRIPT)
        await page.goto(url)
        await page.wait_for_selector("#prejoin:not([hidden])", timeout=15_000)
        await page.fill("#display-name", f"Browser {i}")
        clicked = await page.evaluate("performance.now()")
        await page.click("#join-button")
        key = f"{publisher}/camera"
        try:
            await page.wait_for_function(
                "key => window.__bench && window.__bench.frames[key]", arg=key, timeout=20_000
            )
        except Exception as exc:
            state = await page.evaluate("window.__bench")
            raise RuntimeError(
                f"no frame: {exc!s:.200}; marks {state}; page errors {errors}"
            ) from exc
        marks = await page.evaluate("window.__bench")
        frame = marks["frames"][key]
        created = marks["created"]
        nan = float("nan")
        subscriber = next((pc for pc in marks["pcs"] if pc["track"] is not None), {})
        presented = frame["presented"]
        busy = sum(
            min(start + length, presented) - max(start, created)
            for start, length in marks["longTasks"]
            if start + length > created and start < presented
        )
        result = {
            "long_tasks": busy,
            "click_to_ws": created - clicked,
            "open": marks["open"] - created,
            "joined": marks["messages"].get("joined", nan) - created,
            "offer": marks["messages"].get("offer", nan) - created,
            "publish_sent": marks["sent"].get("publish", nan) - created,
            "publish_answer": marks["messages"].get("answer", nan) - created,
            "connected": (subscriber.get("connected") or nan) - created,
            "video_element": frame["added"] - created,
            "frame": frame["presented"] - created,
            "frame_from_open": frame["presented"] - marks["open"],
            "frame_from_click": frame["presented"] - clicked,
        }
        with contextlib.suppress(Exception):
            await page.click("#leave-button", timeout=2_000)
            await page.wait_for_selector("#left:not([hidden])", timeout=5_000)
        if errors:
            print(f"    page errors: {errors}")
        return result
    finally:
        await context.close()


async def run_browser(server: ServerProcess, room: str, publisher: str, args: argparse.Namespace):
    from playwright.async_api import async_playwright

    results: list[dict[str, float]] = []
    failures = 0
    url = f"{server.base_url}/{room}"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        print(f"  chromium {browser.version}")
        try:
            for i in range(args.warmup + args.browser_joins):
                try:
                    marks = await asyncio.wait_for(browser_join(browser, url, publisher, i), 60)
                except Exception as exc:
                    failures += 1
                    print(f"  browser join {i}: failed: {exc!s:.600}")
                    if failures >= 3 and not results:
                        print("  giving up on the browser after 3 failures")
                        break
                    continue
                finally:
                    await asyncio.sleep(args.pause)
                tag = " (warm-up, not counted)" if i < args.warmup else ""
                print(
                    f"  browser join {i:2d}: ws open {marks['open']:6.1f} ms, "
                    f"joined {marks['joined']:6.1f}, offer {marks['offer']:6.1f}, "
                    f"<video> {marks['video_element']:6.1f}, "
                    f"connected {marks['connected']:6.1f}, "
                    f"first frame {marks['frame']:6.1f} ms (from click "
                    f"{marks['frame_from_click']:6.1f}){tag}"
                )
                if i >= args.warmup:
                    results.append(marks)
        finally:
            await browser.close()
    return results, failures


def stat_rows(results: list[dict[str, float]], keys: list[tuple[str, str]]) -> list[list[Any]]:
    rows = []
    for key, label in keys:
        values = [r[key] for r in results if key in r and r[key] == r[key]]
        s = h.summary(values)
        if s:
            rows.append([label, s["n"], s["median"], s["p95"], s["min"], s["max"]])
    return rows


async def main(args: argparse.Namespace) -> int:
    server = h.start_server()
    started = time.monotonic()
    publisher: VisioClient | None = None
    bots: list[dict[str, float]] = []
    browsers: list[dict[str, float]] = []
    bot_failures = browser_failures = 0
    try:
        room = server.create_room()
        publisher = await start_publisher(server, room)
        assert publisher.id is not None
        print(f"server {server.base_url}, room {room}, publisher {publisher.id}")
        if args.joins:
            print(f"(a) {args.joins} Python bot joins")
            bots, bot_failures = await run_bots(server, room, publisher.id, args)
        if args.browser:
            print(f"(b) {args.browser_joins} Chromium joins")
            browsers, browser_failures = await run_browser(server, room, publisher.id, args)
    finally:
        if publisher is not None:
            await publisher.leave()
        code = server.stop()
    headers = ["from WebSocket start (ms)", "n", "median", "p95", "min", "max"]
    print()
    print(f"Join time to first remote video frame — {h.machine()}")
    if bots:
        print(
            h.table(
                headers,
                stat_rows(
                    bots,
                    [
                        ("joined", "joined received"),
                        ("offer", "subscriber offer received"),
                        ("ice_checking", "ICE checking"),
                        ("ice_completed", "ICE completed"),
                        ("connected", "DTLS done (pc connected)"),
                        ("frame", "FIRST VIDEO FRAME (bot)"),
                    ],
                ),
                title=(
                    f"(a) Python aiortc bot, {len(bots)} joins, {bot_failures} failed"
                    + (
                        ", joiners publishing"
                        if args.joiners_publish
                        else ", joiners not publishing"
                    )
                ),
            )
        )
    if args.browser:
        if browsers:
            print(
                h.table(
                    headers,
                    stat_rows(
                        browsers,
                        [
                            ("open", "WebSocket open"),
                            ("joined", "joined received"),
                            ("publish_sent", "own camera publish sent"),
                            ("publish_answer", "publish answer received"),
                            ("offer", "subscriber offer received"),
                            ("video_element", "remote <video> added"),
                            ("connected", "subscriber pc connected"),
                            ("frame", "FIRST VIDEO FRAME (Chromium)"),
                            ("frame_from_open", "  same, from ws open"),
                            ("frame_from_click", "  same, from join click"),
                            ("long_tasks", "page main thread in long tasks"),
                        ],
                    ),
                    title=(
                        f"(b) headless Chromium, {len(browsers)} joins, {browser_failures} failed"
                    ),
                )
            )
        else:
            print(f"(b) headless Chromium: no successful join ({browser_failures} failed)")
    print(f"total {time.monotonic() - started:.0f} s; server exit code {code}")
    h.print_logs(server)
    return 0 if (bots or not args.joins) and (browsers or not args.browser) else 1


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--joins", type=int, default=20, help="Python bot joins (default 20)")
    parser.add_argument("--browser-joins", type=int, default=10, help="Chromium joins (10)")
    parser.add_argument("--warmup", type=int, default=1, help="joins not counted, each kind (1)")
    parser.add_argument(
        "--joiners-publish",
        action="store_true",
        help="bot joiners publish tone+pattern right after `joined`, as the web app does",
    )
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between joins (0.3)")
    default_browser = (
        Path(CHROMIUM).exists()
        and ROOM_HTML.exists()
        and bool(shutil.which("chromium") or Path(CHROMIUM).exists())
    )
    parser.add_argument(
        "--browser",
        action=argparse.BooleanOptionalAction,
        default=default_browser,
        help=f"also measure headless Chromium (default {default_browser})",
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    h.setup()
    sys.exit(asyncio.run(main(arguments)))
