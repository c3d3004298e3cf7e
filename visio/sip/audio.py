"""Audio between one phone call and the meeting, across two threads.

PJSIP's conference clock (its own thread) asks every 20 ms for what the phone hears and
hands over what the phone said, at PHONE_RATE; aiortc (the asyncio thread) publishes
the phone's voice and delivers the meeting's tracks at 48 kHz. In between: short queues
of 20 ms chunks, one per source, summed for the phone. aiortc releases decoded audio in
bursts when the machine is busy: a queue absorbs them, then catches up by skipping a chunk
per tick while it is long (the delay shrinks back in a few hundred ms).
"""

from __future__ import annotations

import fractions
import threading
from collections import deque

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from visio.client.media import AUDIO_PTIME, AUDIO_RATE, _Paced

PHONE_RATE = 16_000  # the gateway's mixing rate: G.722 is wideband, G.711 is resampled
RATIO = AUDIO_RATE // PHONE_RATE
PHONE_CHUNK = int(PHONE_RATE * AUDIO_PTIME)
MEETING_CHUNK = int(AUDIO_RATE * AUDIO_PTIME)
MAX_QUEUED = 25  # chunks (500 ms): beyond, the oldest go
VOICE_BACKLOG = 2  # chunks of the caller's voice kept ahead of aiortc's steady reads
CATCH_UP = 5  # chunks (100 ms): past this, a source is read twice as fast until it is not


def down(samples: np.ndarray) -> np.ndarray:
    """48 kHz -> 16 kHz: the mean of each 3 samples (a crude low-pass, enough for voice)."""
    usable = len(samples) - len(samples) % RATIO
    return samples[:usable].reshape(-1, RATIO).mean(axis=1).astype(np.int16)


def up(samples: np.ndarray) -> np.ndarray:
    """16 kHz -> 48 kHz by linear interpolation."""
    positions = np.arange(len(samples) * RATIO) / RATIO
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.int16)


class Mixer:
    """What the phone hears: the sum of the meeting's voices and the gateway's prompts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[np.ndarray]] = {}
        self._partial: dict[str, np.ndarray] = {}

    def push(self, source: str, samples: np.ndarray) -> None:
        """Add PHONE_RATE mono samples from `source` (any length)."""
        with self._lock:
            pending = np.concatenate([self._partial.get(source, _EMPTY), samples])
            queue = self._queues.setdefault(source, deque(maxlen=MAX_QUEUED))
            whole = len(pending) - len(pending) % PHONE_CHUNK
            for start in range(0, whole, PHONE_CHUNK):
                queue.append(pending[start : start + PHONE_CHUNK])
            self._partial[source] = pending[whole:]

    def queue_unbounded(self, source: str, samples: np.ndarray) -> None:
        """A prompt: all of it is played, however long, in order."""
        with self._lock:
            queue = self._queues.get(source)
            queue = deque(queue or ())
            padded = np.concatenate(
                [samples, np.zeros(-len(samples) % PHONE_CHUNK, dtype=np.int16)]
            )
            queue.extend(padded.reshape(-1, PHONE_CHUNK))
            self._queues[source] = queue

    def clear(self, source: str) -> None:
        with self._lock:
            self._queues.pop(source, None)
            self._partial.pop(source, None)

    def queued_s(self, source: str) -> float:
        with self._lock:
            return len(self._queues.get(source, ())) * AUDIO_PTIME

    def pull(self) -> np.ndarray:
        """The next 20 ms for the phone (silence when nobody speaks)."""
        total = np.zeros(PHONE_CHUNK, dtype=np.int32)
        with self._lock:
            for source, queue in self._queues.items():
                if queue:
                    total += queue.popleft()
                if source != PROMPT_SOURCE and len(queue) > CATCH_UP:
                    queue.popleft()
        return np.clip(total, -32768, 32767).astype(np.int16)


_EMPTY = np.zeros(0, dtype=np.int16)
PROMPT_SOURCE = "prompt"  # played whole, never skipped


class MeetingInput:
    """Turns the meeting's decoded audio frames (any layout) into Mixer input."""

    def __init__(self, mixer: Mixer) -> None:
        self.mixer = mixer
        self._resamplers: dict[str, av.AudioResampler] = {}

    def __call__(self, source: str, frame: av.AudioFrame) -> None:
        resampler = self._resamplers.get(source)
        if resampler is None:
            resampler = self._resamplers[source] = av.AudioResampler(
                format="s16", layout="mono", rate=AUDIO_RATE
            )
        for mono in resampler.resample(frame):
            self.mixer.push(source, down(mono.to_ndarray().reshape(-1)))

    def forget(self, source: str) -> None:
        self._resamplers.pop(source, None)
        self.mixer.clear(source)


class PhoneVoice(MediaStreamTrack):
    """The caller's voice as an aiortc track: 20 ms frames at 48 kHz, silence when none."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._chunks: deque[np.ndarray] = deque(maxlen=MAX_QUEUED)
        self._clock = _Paced(AUDIO_PTIME)
        self.received = 0  # chunks the phone sent

    def feed(self, samples: np.ndarray) -> None:
        """From PJSIP's thread: one 20 ms chunk at PHONE_RATE."""
        self._chunks.append(up(samples))
        self.received += 1

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._clock.next()
        while len(self._chunks) > VOICE_BACKLOG:  # fed before publishing began: stale
            self._chunks.popleft()
        chunk = self._chunks.popleft() if self._chunks else np.zeros(MEETING_CHUNK, np.int16)
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * MEETING_CHUNK
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame
