"""Noise suppression (RNNoise in an AudioWorklet): how much quieter the noise gets, what it
costs the browser.

A headless Chromium's fake microphone plays the browser test's file (speech in steady
pink noise 10 dB under the voice, with noise-only stretches: visio.testing.noisy_speech),
joins a room through the web app and publishes through Janus; an aiortc bot records what
it receives. The script switches the page's noise suppression on and off (live, the
meeting's toggle) for --rounds rounds and, over each --window, measures:

- noise-only dBFS: the level of the noise-only stretches received (the quietest fifth of
  20 ms windows), and the same of the file itself; the reduction is off minus on
  (Chromium's own WebRTC noise suppression is on in both);
- voice dBFS: the loudest 5 % of windows, to see that the voice is kept;
- CPU % of one core (psutil cpu_times deltas) of the page's renderer process (where the
  AudioWorklet runs), of Chromium's audio service, and of all of Chromium;
- switch-on s: from the click to the denoised track published (the worklet compiles
  RNNoise's 1.4 MB of WebAssembly each time).

Run as root (private network namespace):
    .venv/bin/python bench/noise_suppression.py [--rounds 3] [--window 10]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import numpy as np
import psutil
from playwright.async_api import Page, async_playwright

from visio.client.session import VisioClient
from visio.testing.chromium import CHROMIUM_ARGS
from visio.testing.noisy_speech import RATE, Recording, noise_floor_db, noisy_speech
from visio.testing.noisy_speech import speech_level_db as voice_db

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SETTLE_S = 2.0
GRAPH = "() => !!window.visioMeeting?.noise.graph"


class ChromiumCpu:
    """CPU seconds of the Chromium started with `marker` in its command line, by role."""

    def __init__(self, marker: str) -> None:
        roots = [p for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]
        self.root = min(roots, key=lambda p: p.pid)

    def sample(self) -> dict[str, float]:
        totals = {"renderer": 0.0, "audio": 0.0, "all": 0.0}
        for process in [self.root, *self.root.children(recursive=True)]:
            try:
                cmdline = " ".join(process.cmdline())
                seconds = h.cpu_seconds(process)
            except psutil.NoSuchProcess:
                continue
            totals["all"] += seconds
            if "--type=renderer" in cmdline and "--extension-process" not in cmdline:
                totals["renderer"] += seconds
            elif "AudioService" in cmdline:
                totals["audio"] += seconds
        return totals


async def switch(page: Page, on: bool) -> float:
    """Sets the meeting's toggle; seconds until the published track follows."""
    started = time.monotonic()
    if await page.get_attribute("#toggle-noise", "aria-pressed") != str(on).lower():
        await page.click("#toggle-noise")
    await page.wait_for_function(GRAPH if on else f"() => !({GRAPH[6:]})", timeout=30_000)
    return time.monotonic() - started


async def measure(page: Page, recording: Recording, cpu: ChromiumCpu, window: float) -> dict:
    await asyncio.sleep(SETTLE_S)
    recording.take()
    before, started = cpu.sample(), time.monotonic()
    await asyncio.sleep(window)
    after, elapsed = cpu.sample(), time.monotonic() - started
    received = recording.take()
    result = {role: (after[role] - before[role]) / elapsed * 100 for role in before}
    result["floor"] = noise_floor_db(received)
    result["voice"] = voice_db(received)
    return result


def file_levels(wav: Path) -> tuple[float, float]:
    pcm = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(wav), "-f", "f32le", "-ar",
         str(RATE), "-ac", "1", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    samples = np.frombuffer(pcm, dtype="<f4")
    return noise_floor_db(samples), voice_db(samples)


async def run(args: argparse.Namespace) -> None:
    server = h.start_server()
    folder = Path(tempfile.mkdtemp(prefix="noise-bench-"))
    wav = noisy_speech(folder)
    file = file_levels(wav)
    marker = f"--use-file-for-fake-audio-capture={wav}"
    listener = None
    try:
        room = server.create_room()
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, marker]
            )
            page = await browser.new_page()
            await page.goto(f"{server.base_url}/{room}")
            await page.fill("#display-name", "Speaker")
            await page.click("#join-button")
            await page.wait_for_function(GRAPH, timeout=30_000)
            speaker = await page.evaluate("window.visioMeeting.conn.you.id")
            listener = VisioClient(server.base_url, room, "Listener")
            await listener.connect()
            await listener.wait_frames(speaker, media="audio", count=50)
            recording = Recording()
            listener.received[(speaker, "camera", "audio")].listeners.append(recording)
            cpu = ChromiumCpu(marker)

            results: dict[str, list[dict]] = {"on": [], "off": []}
            switch_on: list[float] = []
            for round_ in range(args.rounds):
                for mode in ("off", "on"):
                    took = await switch(page, mode == "on")
                    if mode == "on" and round_ > 0:
                        switch_on.append(took)
                    results[mode].append(await measure(page, recording, cpu, args.window))
                print(f"  round {round_ + 1}/{args.rounds} done", flush=True)
            await browser.close()
    finally:
        if listener is not None:
            await listener.close()
        h.print_logs(server)
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    report(results, switch_on, file, args)


def report(
    results: dict[str, list[dict]],
    switch_on: list[float],
    file: tuple[float, float],
    args: argparse.Namespace,
) -> None:
    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in results[mode])

    keys = ["floor", "voice", "renderer", "audio", "all"]
    rows = [[mode, *(median(mode, key) for key in keys)] for mode in ("off", "on")]
    print()
    print(
        h.table(
            ["suppression", "noise-only dBFS", "voice dBFS", "renderer CPU %",
             "audio service CPU %", "Chromium CPU %"],
            rows,
            title=f"Medians of {args.rounds} rounds of {args.window:.0f} s ({h.machine()})",
        )
    )  # fmt: skip
    print(f"the file itself: noise-only {file[0]:.1f} dBFS, voice {file[1]:.1f} dBFS")
    pairs = zip(results["off"], results["on"], strict=True)
    reductions = [off["floor"] - on["floor"] for off, on in pairs]
    cost = median("on", "renderer") - median("off", "renderer")
    print(
        f"noise reduction (noise-only stretches, off - on): median "
        f"{statistics.median(reductions):.1f} dB (min {min(reductions):.1f}); "
        f"renderer CPU on - off: {cost:.1f} % of a core"
    )
    if switch_on:
        took = statistics.median(switch_on)
        print(f"switch-on (click to denoised track published): median {took:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs (default 3)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per mode")
    args = parser.parse_args()
    if args.rounds < 1 or args.window < 3:
        parser.error("--rounds must be at least 1 and --window at least 3 s")
    h.setup()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
