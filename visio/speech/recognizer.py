"""Whisper speech recognition on the CPU (faster-whisper, CTranslate2 int8).

Per-participant meeting tracks are mostly silence: Silero VAD (shipped in faster-whisper)
skips it before Whisper runs, which is the main speed win, and leaves Whisper less room
to invent text. Whisper's known failure modes are guarded against: hallucinated text on
silence (no-speech probability with a low log-probability) and repetition loops
(compression-ratio fallback, a token cap per 30 s window, and a post-filter that
collapses a phrase said three times or more in a row).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.vad import VadOptions, get_speech_timestamps

from visio.speech.audio import SAMPLE_RATE
from visio.speech.model import ModelError, check_model_dir
from visio.speech.words import Word

Progress = Callable[[float], None]

# Whisper's own thresholds (as in openai-whisper): a window whose no-speech probability is
# above NO_SPEECH_PROB while its average log-probability is below LOW_LOGPROB is silence
# that Whisper filled with text.
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
COMPRESSION_RATIO = 2.4  # above it, text is repetitive: decode again at a higher temperature
# A 30 s window of fast speech is ~100 words (~150 tokens); a loop would run to 448.
MAX_TOKENS_PER_WINDOW = 224
REPEATS = 3  # a phrase said this many times or more in a row is a loop: keep it once
MAX_PHRASE_WORDS = 12
# Speech per Whisper call: its spectrogram of the whole input took +142 MiB for 191 s in one
# call, +118 MiB in 120 s batches, at no measurable CPU cost; one call for an hour: ~2.5 GiB.
BATCH_SECONDS = 120
# faster-whisper's defaults: speech padded by 0.4 s, pauses under 2 s kept inside a chunk.
VAD_OPTIONS: dict[str, Any] = {"min_silence_duration_ms": 2000, "speech_pad_ms": 400}

# Measured on espeak-ng speech (tests/speech):
# - beam 5, not 1: greedy decoding of French fell back to higher temperatures (4x the time)
#   with a CER of 0.21 instead of 0.12; on English it saved only ~15 % of CPU, same WER;
# - no repetition_penalty: 1.1 already changed correct English words ("review"→"renew");
# - no no_repeat_ngram_size: 3, 5 and 8 all altered a sentence legitimately said twice in a
#   window ("show the next slide" → "shows the next side"). Loops are cut afterwards.
DECODE_OPTIONS: dict[str, Any] = {
    "beam_size": 5,
    "word_timestamps": True,
    "vad_filter": False,  # done before, by _Speech
    "condition_on_previous_text": False,  # a loop in one window cannot seed the next
    "compression_ratio_threshold": COMPRESSION_RATIO,
    "log_prob_threshold": LOW_LOGPROB,
    "no_speech_threshold": NO_SPEECH_PROB,
    "max_new_tokens": MAX_TOKENS_PER_WINDOW,
    "hallucination_silence_threshold": 2.0,  # skip >2 s silences around a suspect word
}


@dataclass(frozen=True)
class Recognized:
    """One segment of speech; times in seconds from the start of the audio given."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass
class Recognition:
    language: str
    language_probability: float
    segments: list[Recognized] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments)


class Recognizer:
    """One Whisper model, usable from any thread (calls are serialised: they use every core)."""

    def __init__(self, model_dir: Path, *, threads: int = 2) -> None:
        self.model_dir = check_model_dir(Path(model_dir))
        try:
            self._model = WhisperModel(
                str(self.model_dir), device="cpu", compute_type="int8", cpu_threads=threads
            )
        except Exception as exc:  # CTranslate2 and tokenizers raise plain RuntimeError/Exception
            raise ModelError(f"cannot load the speech model in {self.model_dir}: {exc}") from exc
        self._lock = threading.Lock()

    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None = None,
        progress: Progress | None = None,
    ) -> Recognition:
        """Recognise 16 kHz mono float32 `audio`.

        `language` None detects it on the first 30 s of speech and keeps it for the rest.
        """
        report = progress or (lambda fraction: None)
        with self._lock:
            batches = _Speech.find(audio)
            total = sum(batch.duration for batch in batches)
            done, probability = 0.0, 0.0
            segments: list[Recognized] = []
            for index, batch in enumerate(batches):
                pieces, info = self._model.transcribe(
                    batch.samples(), language=language, **DECODE_OPTIONS
                )
                if index == 0:  # later batches are decoded in the language found here
                    language, probability = info.language, float(info.language_probability)
                for piece in pieces:
                    report(min(1.0, (done + piece.end) / total))
                    if not _hallucinated(piece):
                        segments.append(batch.restore(_recognized(piece)))
                done += batch.duration
        report(1.0)
        kept = drop_repeated_segments(s for s in segments if s.text)
        return Recognition(language or "", probability, kept)

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """The language spoken in (the first 30 s of speech of) `audio`, and its probability.

        ("", 0.0) when there is no speech at all.
        """
        with self._lock:
            batches = _Speech.find(audio)
            if not batches:
                return "", 0.0
            language, probability, _ = self._model.detect_language(
                batches[0].samples()[: 30 * SAMPLE_RATE]
            )
        return language, float(probability)


class _Speech:
    """Speech found by Silero VAD, to be cut out and joined, with the map back to `audio`'s
    times. A long track is split into batches of at most BATCH_SECONDS of speech, because
    faster-whisper computes the spectrogram of its whole input at once (~40 MiB a minute).

    faster-whisper's own `vad_filter` does the same in one batch, but it would run Whisper's
    language detection on an empty window when there is no speech, it concatenates the
    chunks one at a time (quadratic on a long, mostly silent track), and it gives a word
    that straddles a cut the time of the silence that was cut out.
    """

    def __init__(self, audio: np.ndarray, chunks: list[dict[str, int]]) -> None:
        self._audio = audio
        self._chunks = chunks
        lengths = np.array([c["end"] - c["start"] for c in chunks]) / SAMPLE_RATE
        self.duration = float(lengths.sum())
        # Where each chunk starts and ends in the joined speech, and starts in `audio` (s).
        self._ends = np.cumsum(lengths)
        self._starts = self._ends - lengths
        self._origins = np.array([c["start"] for c in chunks]) / SAMPLE_RATE

    @classmethod
    def find(cls, audio: np.ndarray) -> list[_Speech]:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if len(audio) == 0:
            return []
        options = VadOptions(**VAD_OPTIONS, max_speech_duration_s=BATCH_SECONDS)
        batches: list[list[dict[str, int]]] = []
        length = BATCH_SECONDS * SAMPLE_RATE  # so that the first chunk opens a batch
        for chunk in get_speech_timestamps(audio, options):
            size = chunk["end"] - chunk["start"]
            if length + size > BATCH_SECONDS * SAMPLE_RATE:
                batches.append([])
                length = 0
            batches[-1].append(chunk)
            length += size
        return [cls(audio, chunks) for chunks in batches]

    def samples(self) -> np.ndarray:
        return np.concatenate([self._audio[c["start"] : c["end"]] for c in self._chunks])

    def restore(self, segment: Recognized) -> Recognized:
        """`segment` with its times moved from the joined speech to the original audio."""
        if not segment.words:
            start = self._original(segment.start, self._chunk(segment.start))
            end = self._original(segment.end, self._chunk(segment.end, end=True))
            return replace(segment, start=start, end=end)
        last = len(segment.words) - 1
        words = tuple(
            self._restore_word(w, first=i == 0, last=i == last) for i, w in enumerate(segment.words)
        )
        return replace(segment, start=words[0].start, end=words[-1].end, words=words)

    def _restore_word(self, word: Word, *, first: bool, last: bool) -> Word:
        """`word` in the original audio's time, clamped into the chunk it was said in.

        Whisper stretches words into silence, so a word can straddle a cut. It goes to the
        side where the rest of its segment is: the later chunk for a segment's first word
        (else a segment would start seconds early, out of order with other speakers), the
        earlier chunk for its last word, otherwise the chunk holding most of it.
        """
        chunk, later = self._chunk(word.start), self._chunk(word.end, end=True)
        if later != chunk:
            if first != last:
                chunk = later if first else chunk
            elif word.end - self._starts[later] > self._ends[chunk] - word.start:
                chunk = later
        start = self._original(word.start, chunk)
        return replace(word, start=start, end=max(start, self._original(word.end, chunk)))

    def _chunk(self, time: float, *, end: bool = False) -> int:
        """The chunk `time` (joined speech) falls in; an end on a cut is in the earlier one."""
        side = "left" if end else "right"
        index = int(np.searchsorted(self._starts, time, side=side)) - 1
        return min(max(index, 0), len(self._starts) - 1)

    def _original(self, time: float, chunk: int) -> float:
        time = min(max(time, self._starts[chunk]), self._ends[chunk])
        return round(float(self._origins[chunk] + time - self._starts[chunk]), 3)


def _hallucinated(piece: Any) -> bool:
    return piece.no_speech_prob > NO_SPEECH_PROB and piece.avg_logprob < LOW_LOGPROB


def _recognized(piece: Any) -> Recognized:
    """A faster-whisper segment as a Recognized, with repetition loops collapsed."""
    if not piece.words:
        return Recognized(float(piece.start), float(piece.end), collapse_repetitions(piece.text))
    raw = [w.word for w in piece.words]
    kept = [piece.words[i] for i in _kept_indices([_key(t) for t in raw])]
    words = tuple(
        Word(float(w.start), float(w.end), w.word.strip(), float(w.probability)) for w in kept
    )
    text = "".join(w.word for w in kept).strip()
    return Recognized(float(piece.start), float(piece.end), text, words)


def collapse_repetitions(text: str) -> str:
    """`text` with any phrase repeated REPEATS times or more in a row kept once."""
    tokens = text.split()
    return " ".join(tokens[i] for i in _kept_indices([_key(t) for t in tokens]))


def drop_repeated_segments(segments: Iterable[Recognized]) -> list[Recognized]:
    """Runs of REPEATS or more segments with the same text (a loop across windows): keep one."""
    out: list[Recognized] = []
    run = 0
    for segment in segments:
        same = bool(out) and _key(out[-1].text) == _key(segment.text)
        run = run + 1 if same else 1
        if run == REPEATS:  # the previous one was the second of the run: drop it too
            out.pop()
        if run < REPEATS:
            out.append(segment)
    return out


def _key(token: str) -> str:
    """A word compared case- and punctuation-blind, so "Thanks." repeats "thanks,"."""
    return re.sub(r"[^\w']+", "", token.casefold()) or token.strip()


def _kept_indices(keys: Sequence[str]) -> list[int]:
    """Indices of `keys` to keep once every run of REPEATS+ identical phrases is cut to one.

    Shortest phrases first, so that "no no no" inside a longer loop collapses before it.
    """
    indices = list(range(len(keys)))
    changed = True
    while changed:
        changed = False
        for size in range(1, min(MAX_PHRASE_WORDS, len(indices) // REPEATS) + 1):
            collapsed = _collapse_once(indices, keys, size)
            if collapsed is not None:
                indices, changed = collapsed, True
                break
    return indices


def _collapse_once(indices: list[int], keys: Sequence[str], size: int) -> list[int] | None:
    """`indices` with runs of a `size`-word phrase cut to one, or None when there is none."""
    phrase = [keys[i] for i in indices]
    out: list[int] = []
    position, found = 0, False
    while position < len(indices):
        head = phrase[position : position + size]
        count = 1
        while phrase[position + count * size : position + (count + 1) * size] == head:
            count += 1
        if len(head) == size and count >= REPEATS:
            out.extend(indices[position : position + size])
            position += count * size
            found = True
        else:
            out.append(indices[position])
            position += 1
    return out if found else None
