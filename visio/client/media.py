"""Synthetic media for bots: a moving test pattern and a tone (or any PCM)."""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

AUDIO_RATE = 48_000
AUDIO_PTIME = 0.02


class _Paced:
    """Releases frame n at start + n * period, like a real capture device."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.start: float | None = None
        self.count = 0

    async def next(self) -> int:
        if self.start is None:
            self.start = time.monotonic()
        wait = self.start + self.count * self.period - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self.count += 1
        return self.count - 1


class TestPatternTrack(MediaStreamTrack):
    """Colour bars with a moving block, in YUV 4:2:0 (no conversion cost per frame)."""

    kind = "video"
    __test__ = False  # not a pytest class

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._clock = _Paced(1 / fps)
        self._frames = [self._render(i) for i in range(fps)]

    def _render(self, step: int) -> np.ndarray:
        w, h = self.width, self.height
        luma = np.repeat(np.linspace(40, 220, 8, dtype=np.uint8), w // 8 + 1)[:w]
        y = np.tile(luma, (h, 1))
        size = h // 4
        x0 = (step * (w - size)) // max(1, self.fps - 1)
        y[h // 2 - size // 2 : h // 2 + size // 2, x0 : x0 + size] = 255
        chroma = np.full((h // 4, w), 128, dtype=np.uint8)  # U then V, each w/2 x h/2
        chroma[:, : w // 2] = 90
        return np.vstack([y, chroma, np.full((h // 4, w), 160, dtype=np.uint8)])

    async def recv(self) -> av.VideoFrame:
        index = await self._clock.next()
        frame = av.VideoFrame.from_ndarray(self._frames[index % self.fps], format="yuv420p")
        frame.pts = index * (90_000 // self.fps)
        frame.time_base = fractions.Fraction(1, 90_000)
        return frame


class ColourTrack(MediaStreamTrack):
    """One solid colour: a video that a test can recognise in a recording."""

    kind = "video"

    def __init__(
        self, rgb: tuple[int, int, int], width: int = 320, height: int = 240, fps: int = 15
    ) -> None:
        super().__init__()
        self.fps = fps
        self._clock = _Paced(1 / fps)
        r, g, b = rgb
        y = 0.299 * r + 0.587 * g + 0.114 * b  # BT.601, as VP8 and H.264 assume
        u = 128 - 0.169 * r - 0.331 * g + 0.5 * b
        v = 128 + 0.5 * r - 0.419 * g - 0.081 * b
        planes = [np.full((height, width), y), np.full((height // 4, width), u)]
        planes.append(np.full((height // 4, width), v))
        self._image = np.vstack(planes).round().clip(0, 255).astype(np.uint8)

    async def recv(self) -> av.VideoFrame:
        index = await self._clock.next()
        frame = av.VideoFrame.from_ndarray(self._image, format="yuv420p")
        frame.pts = index * (90_000 // self.fps)
        frame.time_base = fractions.Fraction(1, 90_000)
        return frame


def tone(frequency: float = 440.0, seconds: float = 1.0, level: float = 0.3) -> np.ndarray:
    """A sine wave as 48 kHz mono int16 samples."""
    t = np.arange(int(AUDIO_RATE * seconds)) / AUDIO_RATE
    return (np.sin(2 * np.pi * frequency * t) * level * 32767).astype(np.int16)


class PcmAudioTrack(MediaStreamTrack):
    """Plays 48 kHz mono int16 samples in 20 ms frames, looping or then silence."""

    kind = "audio"

    def __init__(self, samples: np.ndarray | None = None, loop: bool = True) -> None:
        super().__init__()
        self.samples = samples if samples is not None else tone()
        self.loop = loop
        self._clock = _Paced(AUDIO_PTIME)
        self._size = int(AUDIO_RATE * AUDIO_PTIME)
        self._position = 0

    def play(self, samples: np.ndarray, loop: bool = False) -> None:
        """Switch to other samples from the next frame on."""
        self.samples, self.loop, self._position = samples, loop, 0

    def _chunk(self) -> np.ndarray:
        end = self._position + self._size
        chunk = self.samples[self._position : end]
        self._position = end
        if len(chunk) < self._size:
            if self.loop and len(self.samples):
                self._position = self._size - len(chunk)
                chunk = np.concatenate([chunk, self.samples[: self._position]])
            else:
                chunk = np.concatenate([chunk, np.zeros(self._size - len(chunk), np.int16)])
        return chunk

    async def recv(self) -> av.AudioFrame:
        index = await self._clock.next()
        frame = av.AudioFrame.from_ndarray(
            self._chunk().reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * self._size
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame
