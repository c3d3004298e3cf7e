"""What the gateway says to callers, spoken by espeak-ng once at start (no audio files to
ship or translate by hand: the sentences are here)."""

from __future__ import annotations

import io
import subprocess
import wave

import av
import numpy as np

from visio.sip.audio import PHONE_RATE

SENTENCES = {
    "welcome": "Welcome to Visio. Please enter the meeting PIN, followed by the hash key.",
    "wrong": "That PIN is not valid. Please try again.",
    "goodbye": "Goodbye.",
    "wait": "Please wait. A moderator will let you in.",
    "denied": "You were not let in. Goodbye.",
    "joined": "You are now in the meeting.",
    "removed": "You were removed from the meeting. Goodbye.",
    "unavailable": "The meeting cannot be joined now. Goodbye.",
}


class PromptError(RuntimeError):
    pass


def speak(text: str, binary: str = "espeak-ng") -> np.ndarray:
    """`text` spoken in English, as PHONE_RATE mono int16 samples."""
    try:
        result = subprocess.run(
            [binary, "-v", "en", "-s", "150", "--stdout", text],
            capture_output=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise PromptError(f"espeak-ng could not speak the gateway's prompts: {exc}") from exc
    with wave.open(io.BytesIO(result.stdout)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=PHONE_RATE)
    parts = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.int16)


def load_prompts() -> dict[str, np.ndarray]:
    return {name: speak(text) for name, text in SENTENCES.items()}
