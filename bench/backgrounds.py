"""Camera backgrounds: what blur and a picture cost the browser, in Chromium and Firefox.

One browser at a time joins a fresh room through the web app and publishes its fake
camera (simulcast, as always). For each background (none, blur, a shipped picture) it
settles, then over a window:

- browser CPU %: CPU time of the browser's processes (psutil: every process under this
  script but the server, its Janus, Xvfb and the node drivers) / wall time, in % of one core;
- published fps: frames encoded per second on the camera's top simulcast layer (getStats);
- drawn fps: frames the background compositor drew per second ("-" for none);
- size: the top layer's frame size.

Chromium runs headless (WebGL from SwiftShader, on the CPU). Headless Firefox has no
WebGL, where backgrounds are disabled: Firefox runs with a window on a virtual screen
(Xvfb) instead, with Mesa's llvmpipe. No GPU on these machines: a GPU's WebGL does the
segmentation's work for much less.

Run as root (it makes a private network namespace):
    .venv/bin/python bench/backgrounds.py [--browsers chromium,firefox]
        [--modes none,blur,picture:plain] [--window 20] [--settle 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import psutil
from playwright.async_api import async_playwright

from visio.testing.chromium import CHROMIUM_ARGS
from visio.testing.firefox import Firefox
from visio.testing.server import ServerProcess
from visio.testing.xvfb import VirtualScreen

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NOT_BROWSER = {"node", "Xvfb", "janus"}
NAN = float("nan")

# Frames encoded on the camera's top layer, its size, and the compositor's frames drawn.
COUNTERS = """async () => {
    const m = window.visioMeeting;
    const pc = m.conn.publications.get('camera')?.pc;
    const stats = pc ? [...(await pc.getStats()).values()] : [];
    const video = stats.filter(s => s.type === 'outbound-rtp' && s.kind === 'video');
    const top = video.sort((a, b) => (b.frameWidth || 0) - (a.frameWidth || 0))[0] || {};
    return {
        encoded: top.framesEncoded || 0, width: top.frameWidth || 0, height: top.frameHeight || 0,
        drawn: m.background.framesDrawn, processed: !!m.background.compositor,
        unavailable: m.background.unavailable,
    };
}"""


def browser_processes(server: ServerProcess) -> list[psutil.Process]:
    """Every process under this script but the server's tree and the helpers."""
    assert server.process is not None
    exclude = {server.process.pid}
    exclude |= {p.pid for p in psutil.Process(server.process.pid).children(recursive=True)}
    found = []
    for process in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if process.pid not in exclude and process.name() not in NOT_BROWSER:
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


def cpu_by_pid(server: ServerProcess) -> dict[int, float]:
    seconds = {}
    for process in browser_processes(server):
        try:
            seconds[process.pid] = h.cpu_seconds(process)
        except psutil.NoSuchProcess:
            continue
    return seconds


async def until(page: Any, function: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := await page.evaluate(function)):
        if time.monotonic() > deadline:
            raise TimeoutError(function)
        await asyncio.sleep(0.25)
    return result


async def join(page: Any, url: str) -> None:
    await page.goto(url)
    await until(page, "() => !!document.querySelector('#prejoin:not([hidden])')", 30)
    await page.evaluate(
        """() => {
            document.querySelector('#display-name').value = 'Bench';
            document.querySelector('#join-button').click();
        }"""
    )
    await until(page, "() => !!window.visioMeeting?.conn?.you", 30)


async def measure(
    server: ServerProcess, page: Any, mode: str, args: argparse.Namespace
) -> dict[str, Any]:
    await page.evaluate(f"() => window.visioMeeting.background.choose('{mode}')")
    if mode != "none":
        effect = "window.visioMeeting.background"
        ready = f"() => !!({effect}.compositor || {effect}.unavailable)"
        await until(page, ready, 60)
    await asyncio.sleep(args.settle)
    before, cpu_before = await page.evaluate(COUNTERS), cpu_by_pid(server)
    started = time.monotonic()
    await asyncio.sleep(args.window)
    after, cpu_after = await page.evaluate(COUNTERS), cpu_by_pid(server)
    window = time.monotonic() - started
    used = sum(s - cpu_before.get(pid, 0.0) for pid, s in cpu_after.items())
    return {
        "browser CPU %": 100 * used / window,
        "published fps": (after["encoded"] - before["encoded"]) / window,
        "drawn fps": (after["drawn"] - before["drawn"]) / window if after["processed"] else NAN,
        "size": f"{after['width']}x{after['height']}",
        "unavailable": after["unavailable"] or "-",
    }


async def run_browser(
    name: str, server: ServerProcess, playwright: Any, args: argparse.Namespace
) -> list[tuple]:
    url = f"{server.base_url}/{server.create_room()}"
    rows = []
    if name == "chromium":
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 720})
        page = await context.new_page()
        close = browser.close
    else:
        screen = VirtualScreen()
        firefox = Firefox(display=screen.start())
        await firefox.start()
        page = await firefox.new_page()

        async def close() -> None:
            await firefox.close()
            screen.stop()

    try:
        await join(page, url)
        for mode in args.modes:
            result = await measure(server, page, mode, args)
            rows.append((name, mode, *result.values()))
            print(rows[-1], flush=True)
    finally:
        await close()
    return rows


async def run(args: argparse.Namespace) -> None:
    server = h.start_server(host="0.0.0.0", guests_create_rooms=True)
    rows: list[tuple] = []
    try:
        async with async_playwright() as playwright:
            for name in args.browsers:
                rows += await run_browser(name, server, playwright, args)
    finally:
        server.stop()
    load = os.getloadavg()
    headers = [
        "browser",
        "background",
        "browser CPU %",
        "published fps",
        "drawn fps",
        "size",
        "unavailable",
    ]
    title = (
        f"Camera backgrounds, {args.window:.0f} s window each "
        f"(load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end)"
    )
    print(h.table(headers, rows, title))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--browsers", default="chromium,firefox")
    parser.add_argument("--modes", default="none,blur,picture:plain")
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured (20)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before (5)")
    args = parser.parse_args()
    args.browsers = [b for b in args.browsers.split(",") if b]
    args.modes = [m for m in args.modes.split(",") if m]
    h.setup()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
