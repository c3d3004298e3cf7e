"""Streaming voice activity detection and endpointing of 16 kHz mono audio.

Silero VAD v6, the ONNX model shipped inside faster-whisper, runs incrementally: its
recurrent state (h, c) and the 64 samples of context it reads before each 512-sample
window are carried from one call to the next, so that chunks of any size give exactly the
probabilities of a single pass over the whole stream (faster-whisper's own
`SileroVADModel.__call__` resets that state on every call, so it is not used; its ONNX
session is, and that session is safe to share between threads). One window costs ~0.5 ms
of one core, ~1.5 % of a core per stream in real time.

`Endpointer` turns the probabilities into utterances: speech starts after `start_s` of
voiced windows, ends after `end_silence_s` of silence, and an utterance that runs past
`max_utterance_s` is cut at its quietest point and continues as a new one. Boundaries are
padded by `pad_s` of audio, as Whisper misreads speech clipped at its first or last
phoneme.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from faster_whisper.vad import get_vad_model

from visio.speech.audio import SAMPLE_RATE

WINDOW = 512  # samples per Silero decision (32 ms at 16 kHz)
CONTEXT = 64  # samples of the previous window that Silero reads with each window
STATE_SHAPE = (1, 1, 128)
# A cut is placed in the quietest ~100 ms: the energy is smoothed over this many windows.
SMOOTHING_WINDOWS = 3


@dataclass(frozen=True)
class EndpointOptions:
    threshold: float = 0.5  # a window at or above it is voiced
    neg_threshold: float = 0.35  # one below it is silent; in between, it continues the state
    start_s: float = 0.15  # voiced audio needed before an utterance starts
    end_silence_s: float = 0.5  # silence that ends an utterance
    max_utterance_s: float = 15.0  # longer utterances are cut at their quietest point
    cut_search_s: float = 3.0  # that point is looked for in this last part of the utterance
    pad_s: float = 0.2  # audio kept before the first and after the last voiced window

    def __post_init__(self) -> None:
        if not 0 < self.neg_threshold <= self.threshold < 1:
            raise ValueError("need 0 < neg_threshold <= threshold < 1")
        if self.start_s < 0 or not 0 <= self.pad_s < self.end_silence_s:
            raise ValueError("need start_s >= 0 and 0 <= pad_s < end_silence_s")
        if not 0 < self.cut_search_s < self.max_utterance_s:
            raise ValueError("need 0 < cut_search_s < max_utterance_s")


@dataclass(frozen=True)
class SpeechStart:
    sample: int  # in stream samples (samples fed before it)


@dataclass(frozen=True)
class SpeechEnd:
    sample: int
    cut: bool = False  # True when max_utterance_s forced it: speech goes on after it


Boundary = SpeechStart | SpeechEnd


class SileroVad:
    """Speech probabilities of successive 512-sample windows of one stream."""

    def __init__(self) -> None:
        self._session = get_vad_model().session
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """One probability per row of `windows` (shape (n, 512)), continuing the stream."""
        if len(windows) == 0:
            return np.zeros(0, dtype=np.float32)
        contexts = np.concatenate([self._context[None], windows[:-1, -CONTEXT:]])
        batch = np.ascontiguousarray(np.concatenate([contexts, windows], axis=1))
        probabilities, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = windows[-1, -CONTEXT:].copy()
        return np.asarray(probabilities, dtype=np.float32).reshape(-1)


class Endpointer:
    """Utterance boundaries of one stream, fed 16 kHz float32 chunks of any size in order."""

    def __init__(
        self, options: EndpointOptions | None = None, vad: SileroVad | None = None
    ) -> None:
        self.options = options or EndpointOptions()
        self._vad = vad or SileroVad()
        self._pending = np.zeros(0, dtype=np.float32)  # the start of the next window
        self._window = 0  # index of the next window
        self._fed = 0
        self._voiced_run = 0  # while idle: consecutive voiced windows
        self._start: int | None = None  # sample where the current utterance starts
        self._last_end = 0
        self._silent_from: int | None = None  # window where the current silence began
        self._voiced = 0  # voiced windows in the current utterance
        self._energy: list[float] = []  # RMS of each window since `_energy_origin`
        self._energy_origin = 0
        o = self.options
        self._start_windows = max(1, math.ceil(o.start_s * SAMPLE_RATE / WINDOW))
        self._end_windows = max(1, math.ceil(o.end_silence_s * SAMPLE_RATE / WINDOW))
        self._pad = round(o.pad_s * SAMPLE_RATE)
        self._max = round(o.max_utterance_s * SAMPLE_RATE)

    @property
    def in_speech(self) -> bool:
        return self._start is not None

    @property
    def speech_samples(self) -> int:
        """Voiced audio in the current utterance, in samples (0 between utterances)."""
        return self._voiced * WINDOW if self.in_speech else 0

    @property
    def pending_end(self) -> int | None:
        """Where the current utterance will end if the pause under way goes on long enough;
        None outside a pause, or while it is shorter than pad_s (its end is not heard yet)."""
        if self._start is None or self._silent_from is None:
            return None
        end = self._silent_from * WINDOW + self._pad
        return end if end <= self._window * WINDOW else None

    def feed(self, samples: np.ndarray) -> list[Boundary]:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._fed += len(samples)
        audio = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        count = len(audio) // WINDOW
        self._pending = audio[count * WINDOW :].copy()
        windows = audio[: count * WINDOW].reshape(count, WINDOW)
        probabilities = self._vad.probabilities(windows)
        energies = np.sqrt(np.mean(np.square(windows, dtype=np.float64), axis=1))
        out: list[Boundary] = []
        for probability, energy in zip(probabilities.tolist(), energies.tolist(), strict=True):
            out += self._step(probability, energy)
            self._window += 1
        return out

    def restart(self, sample: int) -> None:
        """The caller ended the current utterance at `sample` (a sentence end) and goes on
        with a new one from there: max_utterance_s and the voiced count start from it."""
        if self._start is None:
            return
        window = min(sample // WINDOW, self._window)
        silent_from = self._silent_from
        self._open(sample, window)
        self._voiced = self._window - window
        if silent_from is not None and silent_from >= window:
            self._silent_from = silent_from  # a pause under way goes on counting

    def flush(self) -> list[Boundary]:
        """End of the stream: the current utterance, if any, ends where the audio does."""
        if self._start is None:
            return []
        end = self._fed
        if self._silent_from is not None:
            end = min(end, self._silent_from * WINDOW + self._pad)
        return [self._end(end)]

    def _step(self, probability: float, energy: float) -> list[Boundary]:
        o = self.options
        self._energy.append(energy)
        if self._start is None:
            extra = len(self._energy) - self._start_windows  # only a start's windows matter
            if extra > 0:
                del self._energy[:extra]
                self._energy_origin += extra
            if probability >= o.threshold:
                self._voiced_run += 1
            elif probability < o.neg_threshold:
                self._voiced_run = 0
            if self._voiced_run < self._start_windows:
                return []
            first = self._window - self._voiced_run + 1
            start = max(first * WINDOW - self._pad, self._last_end, 0)
            self._open(start, first)
            self._voiced = self._voiced_run
            return [SpeechStart(start)]
        if probability >= o.threshold:
            self._voiced += 1
            self._silent_from = None
        elif probability < o.neg_threshold and self._silent_from is None:
            self._silent_from = self._window
        now = (self._window + 1) * WINDOW
        if self._silent_from is not None and self._window - self._silent_from + 1 >= (
            self._end_windows
        ):
            return [self._end(min(self._silent_from * WINDOW + self._pad, now))]
        if now - self._start >= self._max:
            cut = self._quietest()
            self._open(cut, cut // WINDOW)
            return [SpeechEnd(cut, cut=True), SpeechStart(cut)]
        return []

    def _open(self, start: int, window: int) -> None:
        """The current utterance now starts at sample `start`, in window `window`."""
        self._start = start
        self._silent_from = None
        self._voiced = 0
        keep = max(0, window - self._energy_origin)
        self._energy = self._energy[keep:]
        self._energy_origin = window

    def _end(self, end: int) -> SpeechEnd:
        self._start = None
        self._silent_from = None
        self._voiced_run = 0
        self._voiced = 0
        self._last_end = end
        return SpeechEnd(end)

    def _quietest(self) -> int:
        """The middle of the quietest stretch in the last cut_search_s: where to cut."""
        assert self._start is not None
        search = round(self.options.cut_search_s * SAMPLE_RATE / WINDOW)
        energy = np.asarray(self._energy, dtype=np.float64)
        smooth = np.convolve(energy, np.ones(SMOOTHING_WINDOWS) / SMOOTHING_WINDOWS, "same")
        first = max(len(smooth) - search, 1)  # never at the very start: no empty utterance
        quietest = first + int(np.argmin(smooth[first:]))
        return (self._energy_origin + quietest) * WINDOW + WINDOW // 2
