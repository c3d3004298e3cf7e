"""load_audio: any container ffmpeg knows → 16 kHz mono float32; bad files → AudioError."""

from __future__ import annotations

import random
import shutil
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from visio.speech.audio import SAMPLE_RATE, AudioError, load_audio
from visio.testing.speech import speak

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("ffmpeg") is None,
    reason="needs espeak-ng and ffmpeg (test.sh installs them)",
)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("audio")
    return speak("The meeting starts in five minutes.", folder / "speech.wav")


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


def test_espeak_wav_decodes_to_16khz_float32(speech: Path) -> None:
    samples = load_audio(speech)
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert len(samples) / SAMPLE_RATE == pytest.approx(wav_seconds(speech), abs=0.01)
    assert np.abs(samples).max() <= 1.0
    assert np.sqrt(np.mean(samples**2)) > 0.01  # speech, not silence


@pytest.mark.parametrize(
    ("suffix", "options"),
    [
        ("ogg", ["-c:a", "libopus"]),
        ("webm", ["-c:a", "libopus"]),
        ("m4a", ["-c:a", "aac"]),
        ("mp3", []),
        ("wav", ["-ac", "2", "-ar", "48000"]),  # stereo 48 kHz is downmixed and resampled
    ],
)
def test_compressed_and_resampled_files_decode(
    speech: Path, tmp_path: Path, suffix: str, options: list[str]
) -> None:
    path = tmp_path / f"speech.{suffix}"
    ffmpeg("-i", str(speech), *options, str(path))
    samples = load_audio(path)
    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert len(samples) / SAMPLE_RATE == pytest.approx(wav_seconds(speech), abs=0.06)
    reference = load_audio(speech)
    n = min(len(samples), len(reference))
    level = np.sqrt(np.mean(samples[:n] ** 2)) / np.sqrt(np.mean(reference[:n] ** 2))
    assert level == pytest.approx(1.0, abs=0.2)


def test_a_valid_file_without_samples_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "nothing.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0", str(path))
    samples = load_audio(path)
    assert samples.dtype == np.float32
    assert samples.shape == (0,)


def write_random(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(8192))


def write_video_only(path: Path) -> None:
    ffmpeg("-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=5", str(path))


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("missing.wav", None, "no such file"),
        ("empty.wav", lambda p: p.write_bytes(b""), "empty"),
        ("noise.ogg", write_random, "cannot decode"),
        ("pattern.mp4", write_video_only, "no audio stream"),
        ("folder.wav", lambda p: p.mkdir(), "not a regular file"),
    ],
)
def test_unreadable_files_raise_audio_error(
    tmp_path: Path, name: str, make: Callable[[Path], object] | None, reason: str
) -> None:
    path = tmp_path / name
    if make is not None:
        make(path)
    with pytest.raises(AudioError, match=reason) as caught:
        load_audio(path)
    assert name in str(caught.value)
    assert caught.value.path == path
