"""Audit M9: a transcription job holds one track's audio at a time, not every track's."""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np

from visio.speech.audio import SAMPLE_RATE
from visio.speech.recognizer import Recognition, Recognized
from visio.transcripts import pipeline
from visio.transcripts.pipeline import Options, transcribe
from visio.transcripts.tracks import AudioSource


class CountingRecognizer:
    """Stands in for Whisper (slow) to watch how many decoded tracks are alive."""

    def __init__(self, alive: list[int]) -> None:
        self.alive = alive
        self.most_alive = 0
        self.probed_seconds: float | None = None

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        self.probed_seconds = len(audio) / SAMPLE_RATE
        return "fr", 1.0

    def transcribe(self, audio, language, progress=None) -> Recognition:
        self.most_alive = max(self.most_alive, self.alive[0])
        seconds = len(audio) / SAMPLE_RATE
        return Recognition(language, 1.0, [Recognized(0.0, seconds, f"{seconds:.0f} s", [])])


def test_one_track_at_a_time_the_longest_first(tmp_path: Path, monkeypatch):
    alive = [0]

    def load_audio(path: Path) -> np.ndarray:
        audio = np.zeros(int(path.read_text()) * SAMPLE_RATE, dtype=np.float32)
        alive[0] += 1
        weakref.finalize(audio, lambda: alive.__setitem__(0, alive[0] - 1))
        return audio

    monkeypatch.setattr(pipeline, "load_audio", load_audio)
    sources = []
    for n, seconds in enumerate([3, 25, 7, 12]):
        path = tmp_path / f"track{n}.txt"
        path.write_text(str(seconds) + " " * seconds * 100)  # the size follows the length
        sources.append(AudioSource(path, f"Speaker {n}", f"track {n}", float(n)))
    recognizer = CountingRecognizer(alive)
    fractions: list[float] = []
    transcript = transcribe(sources, recognizer, None, Options(), fractions.append)
    assert recognizer.most_alive == 1
    assert recognizer.probed_seconds == 25  # the language is heard on the longest track
    assert transcript.language == "fr"
    assert [s.speaker for s in transcript.segments] == [f"Speaker {n}" for n in range(4)]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
