"""Network quality: what a participant on a bad link sees and hears, in Chromium and Firefox.

A speaker (headless Chromium, clean link, the web app's simulcast camera and its fake
microphone) and a receiver meet in a fresh room per run. The receiver's browser runs in a
side namespace whose only link is shaped (visio.testing.link: a user-space netem, since
this kernel has none) and opens the server at 127.0.0.1 through a forwarder. For each
network condition and each receiving browser, from the receiver's own getStats()
(visio.testing.rtcstats):

- concealment %: audio samples its decoder made up / samples played, over the window;
- video fps: frames decoded per second over the window;
- freezes/min: Chromium's freezeCount over the window (Firefox reports none: "-");
- layer: the last received frameWidth x frameHeight (the simulcast layer that arrived);
- video back s / layer back s: once the link is clean again (the condition cleared, or
  the outage over), the time until 10 more video frames are decoded, and until they come
  at the clean layer (the one received before the condition); "-" if not within
  --recovery-limit. A loaded machine's publisher may drop its top layer by itself.

Conditions (each direction of the side link, uplink and downlink, unless said):
  none; 5 % loss; 300 ms RTT with ±30 ms jitter; 500 kbit/s downlink; 250 kbit/s
  downlink; a 3 s outage (the window then spans the outage).

Run as root (it makes private network namespaces):
    .venv/bin/python bench/network_quality.py [--browsers chromium,firefox]
        [--conditions none,loss,rtt,500k,250k,drop] [--window 10] [--recovery-limit 20]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
from playwright.async_api import Browser, async_playwright

from visio.testing import netns, rtcstats
from visio.testing.chromium import CHROMIUM_ARGS
from visio.testing.firefox import Firefox
from visio.testing.link import CLEAR, Conditions
from visio.testing.server import ServerProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUTAGE_S = 3.0


@dataclass(frozen=True)
class Scenario:
    name: str
    uplink: Conditions = CLEAR
    downlink: Conditions = CLEAR
    outage: bool = False


SCENARIOS = {
    "none": Scenario("none"),
    "loss": Scenario("5 % loss", Conditions(loss=0.05), Conditions(loss=0.05)),
    "rtt": Scenario(
        "300 ms RTT ±30 ms",
        Conditions(delay_ms=150, jitter_ms=30),
        Conditions(delay_ms=150, jitter_ms=30),
    ),
    "500k": Scenario("500 kbit/s down", downlink=Conditions(rate_kbit=500)),
    "250k": Scenario("250 kbit/s down", downlink=Conditions(rate_kbit=250)),
    "drop": Scenario("3 s outage", outage=True),
}


async def join(page: Any, url: str, name: str) -> None:
    """Through the pre-join screen, in either browser's page API."""
    await page.goto(url)
    prejoin_shown = "() => !!document.querySelector('#prejoin:not([hidden])')"
    joined = "() => document.body.dataset.screen === 'meeting' || !!window.visioMeeting?.conn?.you"
    await until(page, prejoin_shown, 20)
    if hasattr(page, "fill"):
        await page.fill("#display-name", name)
    else:
        await page.type("#display-name", name)
    await page.click("#join-button")
    await until(page, joined, 20)


async def until(page: Any, function: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := await page.evaluate(function)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout} s: {function}")
        await asyncio.sleep(0.2)
    return result


async def received(page: Any) -> dict:
    return await page.evaluate(rtcstats.RECEIVED)


def layer(stats: dict) -> str:
    videos = [v for v in stats["video"] if v["width"]]
    return f"{videos[-1]['width']}x{videos[-1]['height']}" if videos else "-"


async def decoding(page: Any, frames: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        stats = await received(page)
        if rtcstats.video_frames(stats) >= frames:
            return stats
        if time.monotonic() > deadline:
            raise TimeoutError(f"the receiver decoded no video: {stats}")
        await asyncio.sleep(0.2)


async def recovery(page: Any, clean_layer: str, limit: float) -> tuple[float, float]:
    """Seconds from now until 10 new frames are decoded, and until they come at the clean
    layer again; NaN for what does not happen within `limit`."""
    start = time.monotonic()
    first = rtcstats.video_frames(await received(page))
    flowing = float("nan")
    while time.monotonic() - start < limit:
        stats = await received(page)
        if rtcstats.video_frames(stats) >= first + 10:
            if flowing != flowing:  # NaN: not yet
                flowing = time.monotonic() - start
            if layer(stats) == clean_layer:
                return flowing, time.monotonic() - start
        await asyncio.sleep(0.1)
    return flowing, float("nan")


async def measure(
    side: netns.SideNamespace, page: Any, scenario: Scenario, args: argparse.Namespace
) -> dict[str, Any]:
    await decoding(page, 10, 30)
    await asyncio.sleep(3)  # the clean layer settles
    clean_layer = layer(await received(page))
    side.shape(uplink=scenario.uplink, downlink=scenario.downlink)
    if not scenario.outage:
        await asyncio.sleep(3)  # the jitter buffer and the bandwidth estimate settle
    before = await received(page)
    started = time.monotonic()
    if scenario.outage:
        await side.outage(OUTAGE_S)
        recovered = await recovery(page, clean_layer, args.recovery_limit)
        await asyncio.sleep(max(0.0, args.window - (time.monotonic() - started)))
    else:
        await asyncio.sleep(args.window)
    after = await received(page)
    window = time.monotonic() - started
    if not scenario.outage:
        side.clear()
        recovered = await recovery(page, clean_layer, args.recovery_limit)
    side.clear()
    freezes = [v["freezes"] for v in after["video"]]
    return {
        "concealment %": 100 * rtcstats.concealment(before, after),
        "video fps": (rtcstats.video_frames(after) - rtcstats.video_frames(before)) / window,
        "freezes/min": 60 * (sum(freezes) - sum(v["freezes"] for v in before["video"])) / window,
        "layer": layer(after),
        "clean layer": clean_layer,
        "video back s": recovered[0],
        "layer back s": recovered[1],
    }


async def one_run(
    server: ServerProcess,
    side: netns.SideNamespace,
    speaker_browser: Browser,
    receiver: Any,
    scenario: Scenario,
    args: argparse.Namespace,
) -> dict[str, Any]:
    room = server.create_room()
    url = f"{server.base_url}/{room}"
    context = await speaker_browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        speaker = await context.new_page()
        await join(speaker, url, "Speaker")
        page = await receiver.new_page()
        try:
            await join(page, url, "Receiver")
            return await measure(side, page, scenario, args)
        finally:
            side.clear()
            await page.close()
    finally:
        await context.close()


class Receivers:
    """The receiving browsers, in the side namespace, started once."""

    def __init__(self, side: netns.SideNamespace, playwright: Any, folder: Path) -> None:
        self.side = side
        self.playwright = playwright
        self.folder = folder
        self.chromium: Browser | None = None
        self.firefox: Firefox | None = None

    async def get(self, name: str) -> Any:
        if name == "chromium":
            if self.chromium is None:
                executable = self.side.wrap(CHROMIUM, self.folder)
                self.chromium = await self.playwright.chromium.launch(
                    executable_path=str(executable), args=CHROMIUM_ARGS
                )
            return ChromiumPages(self.chromium)
        if self.firefox is None:
            self.firefox = Firefox(under=self.side.command())
            await self.firefox.start()
        return self.firefox

    async def close(self) -> None:
        if self.chromium is not None:
            await self.chromium.close()
        if self.firefox is not None:
            await self.firefox.close()


class ChromiumPages:
    """new_page() as Firefox has it: a page in a context of its own, closed with it."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser

    async def new_page(self) -> Any:
        context = await self.browser.new_context(viewport={"width": 1280, "height": 720})
        page = await context.new_page()
        page.close = context.close  # type: ignore[method-assign]
        return page


async def run(args: argparse.Namespace) -> None:
    side = netns.SideNamespace()
    side.create(shaped=True)
    server = h.start_server(
        host="0.0.0.0",
        guests_create_rooms=True,
        janus_ice_interfaces=f"{netns.VETH},{netns.SIDE_VETH}",
        joins_per_minute=10_000,
        address_joins_per_minute=10_000,
        room_creations_per_minute=10_000,
        address_room_creations_per_minute=10_000,
    )
    rows = []
    try:
        side.forward(server.port)
        with tempfile.TemporaryDirectory(prefix="network-quality-") as folder:
            async with async_playwright() as playwright:
                speaker_browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                receivers = Receivers(side, playwright, Path(folder))
                try:
                    for key in args.conditions:
                        for browser in args.browsers:
                            scenario = SCENARIOS[key]
                            print(f"{scenario.name} / {browser} ...", flush=True)
                            receiver = await receivers.get(browser)
                            try:
                                result = await one_run(
                                    server, side, speaker_browser, receiver, scenario, args
                                )
                            except (TimeoutError, RuntimeError) as exc:
                                print(f"  failed: {exc}", flush=True)
                                result = {}
                            if browser == "firefox" and result:
                                result["freezes/min"] = float("nan")  # Firefox counts none
                            rows.append((scenario.name, browser, result))
                finally:
                    await receivers.close()
                    await speaker_browser.close()
    finally:
        server.stop()
        side.remove()
    print_table(rows, args)


COLUMNS = (
    "concealment %",
    "video fps",
    "freezes/min",
    "layer",
    "clean layer",
    "video back s",
    "layer back s",
)


def print_table(rows: list[tuple[str, str, dict]], args: argparse.Namespace) -> None:
    print()
    print(
        h.table(
            ("condition", "browser", *COLUMNS),
            [(name, browser, *(r.get(c, "failed") for c in COLUMNS)) for name, browser, r in rows],
            title=f"Network quality, {args.window:.0f} s windows ({h.machine()})",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--browsers", default="chromium,firefox")
    parser.add_argument("--conditions", default=",".join(SCENARIOS))
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--recovery-limit", type=float, default=20.0)
    args = parser.parse_args()
    args.browsers = [b for b in args.browsers.split(",") if b]
    args.conditions = [c for c in args.conditions.split(",") if c]
    unknown = set(args.browsers) - {"chromium", "firefox"} | set(args.conditions) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    h.setup()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
