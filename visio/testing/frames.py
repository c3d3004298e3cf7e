"""Frames of a video file as pixels, for tests that check what a rendered video shows."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np


def frame_at(video: Path, moment: float) -> np.ndarray:
    """The frame shown at `moment` (s), as an (height, width, 3) RGB array."""
    width, height = video_size(video)
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", f"{moment:.3f}", "-i", str(video), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)


def video_size(video: Path) -> tuple[int, int]:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "json", str(video)],
        capture_output=True, check=True, text=True, timeout=60,
    )  # fmt: skip
    stream = json.loads(probe.stdout)["streams"][0]
    return int(stream["width"]), int(stream["height"])


def mean_colour(frame: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """The average RGB colour of the box (x, y, width, height) of a frame, a margin of a
    tenth left out on each side (where a name is drawn)."""
    x, y, w, h = box
    inner = frame[y + h // 10 : y + h - h // 5, x + w // 10 : x + w - w // 10]
    r, g, b = inner.reshape(-1, 3).mean(axis=0)
    return round(r), round(g), round(b)


def duration_of(media: Path) -> float:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(media)],
        capture_output=True, check=True, text=True, timeout=60,
    )  # fmt: skip
    return float(json.loads(probe.stdout)["format"]["duration"])
