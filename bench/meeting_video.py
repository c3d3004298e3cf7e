"""The meeting's video: rendering speed (times real time) and file size per meeting hour.

A synthetic meeting of N bots, built as janus-pp-rec leaves a recorded meeting: one VP8
WebM per camera (a moving test pattern), one Opus track per microphone (each bot talks in
turn, T seconds at a time), and a screen share (VP8, 1280x720 at 5 fps) over the middle
third. The tracks go through the job's own steps (speech detection on every microphone,
the active-speaker plan, the ffmpeg graph, libx264 + AAC), in this process. No server
or namespace is needed.

    .venv/bin/python bench/meeting_video.py --bots 4 --minutes 3
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from _harness import machine, table

from visio.speech.audio import SAMPLE_RATE, load_audio
from visio.transcripts.video import Clip, Sound, Voice, loudness, plan, render, speech_spans


def encode(folder: Path, name: str, source: str, codec: list[str]) -> Path:
    path = folder / name
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, *codec, str(path)],
        check=True,
    )
    return path


def vp8(width: int, height: int) -> list[str]:
    """Roughly what a browser sends: real-time VP8 near 0.6 Mbit/s at 640x360."""
    rate = max(150, width * height * 6 // 2304)  # kbit/s
    return ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", f"{rate}k"]


def build_meeting(folder: Path, bots: int, seconds: float, turn: float, size: str, fps: int):
    width, height = (int(v) for v in size.split("x"))
    clips, sounds = [], []
    for n in range(bots):
        camera = encode(
            folder,
            f"camera{n}.webm",
            f"testsrc2=s={size}:r={fps}:d={seconds},hue=h={n * 360 // bots}",
            vp8(width, height),
        )
        talks = f"if(eq(mod(floor(t/{turn}),{bots}),{n}),0.4,0)"
        microphone = encode(
            folder,
            f"microphone{n}.opus",
            f"sine=f={180 + 40 * n}:d={seconds},volume='{talks}':eval=frame",
            ["-c:a", "libopus", "-b:a", "32k"],
        )
        clips.append(Clip(camera, f"p{n}", f"Bot {n + 1}", False, 0.0, seconds))
        sounds.append(Sound(microphone, 0.0))
    third = seconds / 3
    screen = encode(folder, "screen.webm", f"testsrc=s=1280x720:r=5:d={third}", vp8(1280, 720))
    clips.append(Clip(screen, "p0", "Bot 1 (screen)", True, third, 2 * third))
    return clips, sounds


def voices_of(sounds: list[Sound]) -> list[Voice]:
    voices = []
    for n, sound in enumerate(sounds):
        levels = loudness(load_audio(sound.path), SAMPLE_RATE)
        voices.append(Voice(f"p{n}", f"Bot {n + 1}", tuple(speech_spans(levels))))
    return voices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--turn", type=float, default=8.0, help="seconds each bot talks at a time")
    parser.add_argument("--camera", default="640x360", help="camera size of each bot")
    parser.add_argument("--fps", type=int, default=15, help="camera frame rate")
    parser.add_argument("--threads", type=int, default=2, help="ffmpeg threads (the job's)")
    args = parser.parse_args()
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="visio-bench-") as scratch:
        folder = Path(scratch)
        print(f"building a {args.minutes:g}-minute meeting of {args.bots} bots…")
        clips, sounds = build_meeting(folder, args.bots, seconds, args.turn, args.camera, args.fps)
        tracks_mb = sum(c.path.stat().st_size for c in clips) / 1e6
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        voices = voices_of(sounds)
        listened = time.monotonic()
        target = folder / "recording.mp4"
        render(seconds, clips, voices, sounds, target, folder / "work", threads=args.threads)
        done = time.monotonic()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        size_mb = target.stat().st_size / 1e6
        shots = plan(seconds, clips, voices)
    cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    elapsed = done - started
    rows = [
        ("meeting", f"{seconds:.0f} s, {args.bots} bots ({args.camera} at {args.fps} fps), "
                    "a screen share for a third"),
        ("shots (speaker changes)", len(shots)),
        ("speech detection", f"{listened - started:.1f} s"),
        ("rendering (ffmpeg)", f"{done - listened:.1f} s, {cpu / (done - listened):.2f} cores"),
        ("speed", f"{seconds / elapsed:.2f} × real time ({args.threads} ffmpeg threads)"),
        ("video size", f"{size_mb:.1f} MB (1280×720, {25} fps, H.264 CRF 26 + AAC 96k)"),
        ("per meeting hour", f"{size_mb * 3600 / seconds:.0f} MB"),
        ("the tracks it came from", f"{tracks_mb * 3600 / seconds:.0f} MB per hour (VP8)"),
    ]  # fmt: skip
    print(table(["figure", "value"], rows, title=f"Meeting video on {machine()}"))


if __name__ == "__main__":
    main()
