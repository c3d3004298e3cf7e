"""Deterministic test speech from espeak-ng (Debian), written as WAV files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np


def speak(
    text: str, path: Path, *, voice: str = "en-us", speed: int = 150, pitch: int = 50
) -> Path:
    """Synthesise `text` into `path` (22.05 kHz mono WAV) and return the path."""
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    return path


RAW_48K = ["-ar", "48000", "-ac", "1", "-f", "s16le", "-"]


def pcm48k(path: Path) -> np.ndarray:
    """A sound file as the 48 kHz mono int16 samples a bot's PcmAudioTrack plays."""
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), *RAW_48K],
        check=True,
        capture_output=True,
    )
    return np.frombuffer(result.stdout, dtype=np.int16).copy()


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(48_000 * seconds), dtype=np.int16)
