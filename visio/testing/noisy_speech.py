"""Speech in steady noise, for noise suppression: a WAV a fake microphone plays, what a bot
receives of it, and how loud the noise-only stretches are."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from visio.speech.audio import SAMPLE_RATE, load_audio
from visio.testing.speech import speak

RATE = 48_000
SCRIPT = ["Please send me the report before Friday.", "Let us meet again next Tuesday morning."]
KEY_WORDS = ["report", "friday", "tuesday", "morning"]
SPEECH_DBFS = -20.0  # RMS of the voice while it speaks
SNR_DB = 10.0  # the noise is 10 dB under the voice, everywhere
LEAD_S = 3.0  # noise only, before the first sentence: the file loops, so also after the last
GAP_S = 0.4
WINDOW_S = 0.02


def pink_noise(samples: int, seed: int = 11) -> np.ndarray:
    """Steady pink (1/f) noise of RMS 1, always the same."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(samples))
    frequencies = np.fft.rfftfreq(samples, 1 / RATE)
    spectrum[1:] /= np.sqrt(frequencies[1:] / frequencies[1])
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, samples)
    return noise / np.sqrt(np.mean(noise**2))


def noisy_speech(folder: Path) -> Path:
    """SCRIPT read by espeak-ng after LEAD_S of noise only, pink noise SNR_DB under the voice
    all along: a 48 kHz 16-bit mono WAV of about 8 s."""
    voice = [np.zeros(round(LEAD_S * SAMPLE_RATE), dtype=np.float32)]
    for i, text in enumerate(SCRIPT):
        audio = load_audio(speak(text, folder / f"sentence{i}.wav"))
        loud = np.flatnonzero(np.abs(audio) > 0.01)
        voice += [audio[loud[0] : loud[-1] + 1], np.zeros(round(GAP_S * SAMPLE_RATE))]
    speech = np.repeat(np.concatenate(voice), RATE // SAMPLE_RATE)  # 16 → 48 kHz, steps
    speech = _lowpass(speech.astype(np.float64), 7_000)
    speaking = np.abs(speech) > 0.01
    speech *= 10 ** (SPEECH_DBFS / 20) / np.sqrt(np.mean(speech[speaking] ** 2))
    noise = pink_noise(len(speech)) * 10 ** ((SPEECH_DBFS - SNR_DB) / 20)
    mixed = np.clip(speech + noise, -1, 1)
    wav = folder / "noisy-speech.wav"
    _write_wav(wav, mixed)
    return wav


def _lowpass(samples: np.ndarray, cutoff: float) -> np.ndarray:
    spectrum = np.fft.rfft(samples)
    spectrum[np.fft.rfftfreq(len(samples), 1 / RATE) > cutoff] = 0
    return np.fft.irfft(spectrum, len(samples))


def _write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = (samples * 32767).astype("<i2").tobytes()
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "s16le", "-ar", str(RATE),
         "-ac", "1", "-i", "-", "-c:a", "pcm_s16le", str(path)],
        input=pcm, check=True,
    )  # fmt: skip


class Recording:
    """What a bot receives of one audio track, as 48 kHz mono floats (a listener of
    `VisioClient.received[...]`)."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def __call__(self, frame: Any) -> None:
        channels = len(frame.layout.channels)
        pcm = frame.to_ndarray().reshape(-1, channels).astype(np.float32) / 32768
        self.chunks.append(pcm.mean(axis=1))

    def take(self) -> np.ndarray:
        """What came since the last take."""
        samples = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        self.chunks = []
        return samples


def window_levels(samples: np.ndarray) -> np.ndarray:
    """The level of each WINDOW_S of `samples`, in dBFS (RMS; -120 for digital silence)."""
    size = round(WINDOW_S * RATE)
    windows = samples[: len(samples) // size * size].reshape(-1, size).astype(np.float64)
    return 10 * np.log10(np.mean(windows**2, axis=1) + 1e-12)


def noise_floor_db(samples: np.ndarray) -> float:
    """The level of the noise-only stretches: more than a third of the file is noise only,
    so its quietest fifth of windows lies in them, whatever the loop's phase."""
    return float(np.percentile(window_levels(samples), 20))


def speech_level_db(samples: np.ndarray) -> float:
    """The level of the voice: its loudest windows."""
    return float(np.percentile(window_levels(samples), 95))


def to_16k(samples: np.ndarray) -> np.ndarray:
    """48 kHz floats to the 16 kHz floats Whisper takes (ffmpeg's resampler)."""
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "f32le", "-ar", str(RATE), "-ac", "1",
         "-i", "-", "-f", "f32le", "-ar", str(SAMPLE_RATE), "-"],
        input=samples.astype("<f4").tobytes(), capture_output=True, check=True,
    )  # fmt: skip
    return np.frombuffer(result.stdout, dtype="<f4").copy()
