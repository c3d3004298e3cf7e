"""Decode any audio file ffmpeg knows into the 16 kHz mono float32 samples Whisper expects."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 16_000


class AudioError(Exception):
    """A file that cannot be read as audio; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def load_audio(path: str | Path) -> np.ndarray:
    """The first audio stream of `path` as mono float32 samples at 16 kHz, in [-1, 1].

    A valid file with no samples gives an empty array.
    """
    path = Path(path)
    _check_file(path)
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.audio:
                raise AudioError(path, "no audio stream in the file")
            chunks = _decode(container, container.streams.audio[0])
    except av.FFmpegError as exc:
        raise AudioError(path, f"cannot decode audio ({_describe(exc)})") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise AudioError(path, f"cannot read audio ({exc})") from exc
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    samples = np.concatenate(chunks)
    np.clip(samples, -1.0, 1.0, out=samples)  # resampling can overshoot full scale a little
    return samples


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "no such file")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(path, "the file is empty (0 bytes)")


def _decode(container: av.container.InputContainer, stream: av.AudioStream) -> list[np.ndarray]:
    """Resampled chunks, kept apart so that a long file is concatenated only once."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    fed = False
    for frame in container.decode(stream):
        fed = True
        chunks.extend(_samples(f) for f in resampler.resample(frame))
    if fed:
        chunks.extend(_samples(f) for f in resampler.resample(None))
    return [c for c in chunks if c.size]


def _samples(frame: av.AudioFrame) -> np.ndarray:
    # Packed mono float: shape (1, n); copy so the frame's buffer can be freed.
    return np.array(frame.to_ndarray().reshape(-1), dtype=np.float32)


def _describe(exc: av.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or str(exc)
