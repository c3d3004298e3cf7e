"""Diarization of one track: espeak-ng voices, the error rate, clustering, configuration.

Calibration of EmbeddingDiarizer (espeak-ng, 1.5 s windows every 0.75 s). The contrast
of two clusters is their within-cluster cosine similarities, averaged by speech duration,
minus their between-cluster similarity, over pairs of windows that share no audio.

- Single voice: 40 tracks of ~30 s (20 voices and variants, 2 seeds), 10 with
  back-to-back sentences, 10 monologues of 2.5 min (pitch ±12, 120-195 words/min, level
  0.3-1, noise). After average linkage (threshold 0.70) and folding clusters of less than
  5 s, 3 of them still had several clusters; they split only for min_contrast <= 0.086.
- Two voices, pauses 0.3-0.9 s (16 tracks, 8 male/female pairs): the true speakers'
  contrast is 0.169 to 0.31 (median 0.224).
- Hence min_contrast 0.12. All 60 single-voice tracks give one speaker, the 16 two-voice
  tracks and 10 back-to-back ones two (DER <= 0.002 and <= 0.062), 16 three-voice tracks
  of 3 min (bench/diarization.py, 4 seeds, pauses or back-to-back) three (DER <= 0.03).
  A stage-one threshold of 0.68 to 0.75 gives the same results.
- Held out (new sentences, seeds and variants, 20 dB noise, one-word turns): 17/17 single
  voices one speaker, 5/5 two-voice tracks two (one back-to-back), DER <= 0.03.
- Known limits: one espeak voice at two pitches (en-us, en-us+m3: cosine 0.88 between
  utterances) is one speaker; so is a voice with less than ~4 s of speech in the track.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

from visio.speech.audio import SAMPLE_RATE, load_audio
from visio.speech.speakers import (
    Diarizer,
    EmbeddingDiarizer,
    SpeakerModelError,
    Turn,
    agglomerate,
    diarization_error_rate,
    load_diarizer,
)
from visio.testing.speech import speak

# The default American English voice (male) and its female variant f3: same sentence,
# cosine ~0.92 within a voice and ~0.68 across (tests/unit/test_voice_encoder.py).
VOICE_A, VOICE_B = "en-us", "en-us+f3"
SENTENCES = [
    "Good morning everyone, thank you for joining the call today.",
    "Thanks. I have the figures for the third quarter ready to share.",
    "Great, please go ahead and show us the slides when you are ready.",
    "Sales grew by twelve percent, mostly thanks to the new customers.",
    "That is better than we expected. What about the support costs?",
    "They went down a little, because the new documentation helps a lot.",
]
PAUSES_S = [0.6, 0.45, 0.8, 0.5, 0.7]
# Measured on these 28 s tracks: two voices DER 0.000 (0.048 without the 0.25 s collar:
# VAD padding), one voice 0.005 to 0.014 (pauses under 0.5 s are kept inside a turn).
DER_BOUND = 0.08


def _sentence(folder: Path, text: str, voice: str) -> np.ndarray:
    path = folder / f"{voice}-{SENTENCES.index(text)}.wav"
    audio = load_audio(speak(text, path, voice=voice))
    loud = np.flatnonzero(np.abs(audio) > 0.01)  # espeak pads its output with silence
    return audio[loud[0] : loud[-1] + 1]


def _track(folder: Path, voices: list[str]) -> tuple[np.ndarray, list[Turn]]:
    """The sentences in turn by `voices` (cycled), with pauses; reference turns."""
    parts, reference, t = [np.zeros(SAMPLE_RATE // 2, np.float32)], [], 0.5
    for k, text in enumerate(SENTENCES):
        speech = _sentence(folder, text, voices[k % len(voices)])
        reference.append(Turn(t, t + len(speech) / SAMPLE_RATE, k % len(voices)))
        pause = np.zeros(round(PAUSES_S[k % len(PAUSES_S)] * SAMPLE_RATE), np.float32)
        parts += [speech, pause]
        t += (len(speech) + len(pause)) / SAMPLE_RATE
    return np.concatenate(parts), reference


@pytest.fixture(scope="module")
def diarizer() -> EmbeddingDiarizer:
    return EmbeddingDiarizer()


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, list[Turn]]:
    return _track(tmp_path_factory.mktemp("two-voices"), [VOICE_A, VOICE_B])


def test_two_alternating_voices_are_two_speakers(
    diarizer: EmbeddingDiarizer, two_voices: tuple[np.ndarray, list[Turn]]
) -> None:
    audio, reference = two_voices
    turns = diarizer.diarize(audio)
    assert {t.speaker for t in turns} == {0, 1}
    assert turns[0].speaker == 0  # numbered in order of first appearance
    assert all(a.end <= b.start for a, b in itertools.pairwise(turns))
    assert [t.speaker for t in turns] == [0, 1, 0, 1, 0, 1]
    assert diarization_error_rate(reference, turns) < DER_BOUND


def test_max_speakers_caps_the_speakers(
    diarizer: EmbeddingDiarizer, two_voices: tuple[np.ndarray, list[Turn]]
) -> None:
    turns = diarizer.diarize(two_voices[0], max_speakers=1)
    assert {t.speaker for t in turns} == {0}


@pytest.mark.parametrize("voice", [VOICE_A, VOICE_B])
def test_one_voice_is_one_speaker(diarizer: EmbeddingDiarizer, tmp_path: Path, voice: str) -> None:
    audio, reference = _track(tmp_path, [voice])
    turns = diarizer.diarize(audio)
    assert turns and {t.speaker for t in turns} == {0}
    assert diarization_error_rate(reference, turns) < DER_BOUND


def test_silence_and_faint_noise_have_no_turns(diarizer: EmbeddingDiarizer) -> None:
    assert diarizer.diarize(np.zeros(5 * SAMPLE_RATE, np.float32)) == []
    noise = np.random.default_rng(0).normal(0, 0.002, 5 * SAMPLE_RATE).astype(np.float32)
    assert diarizer.diarize(noise) == []
    assert diarizer.diarize(np.zeros(0, np.float32)) == []


def test_bad_audio_is_refused(diarizer: EmbeddingDiarizer) -> None:
    with pytest.raises(ValueError, match="mono"):
        diarizer.diarize(np.zeros((2, 16_000), np.float32))
    with pytest.raises(ValueError, match="max_speakers"):
        diarizer.diarize(np.zeros(16_000, np.float32), max_speakers=0)


# -- error rate ----------------------------------------------------------------------


def test_the_error_rate_maps_labels_and_counts_each_error() -> None:
    reference = [Turn(0, 10, 0), Turn(10, 20, 1)]
    assert diarization_error_rate(reference, [Turn(0, 10, 7), Turn(10, 20, 3)]) == 0
    assert diarization_error_rate(reference, []) == 1  # all missed
    one_label = [Turn(0, 20, 0)]  # half of the speech given to the wrong speaker
    assert diarization_error_rate(reference, one_label, collar=0) == pytest.approx(0.5)
    extra = [*reference, Turn(25, 30, 0)]  # 5 s of false alarm over 20 s of speech
    assert diarization_error_rate(reference, extra, collar=0) == pytest.approx(0.25)
    late = [Turn(0.2, 10, 0), Turn(10, 20, 1)]  # within the collar: not counted
    assert diarization_error_rate(reference, late) == 0
    assert diarization_error_rate(reference, late, collar=0) == pytest.approx(0.01)
    assert diarization_error_rate([], []) == 0


def test_the_error_rate_finds_the_best_mapping_among_many_speakers() -> None:
    reference = [Turn(2 * k, 2 * k + 2, k) for k in range(6)]
    rotated = [Turn(t.start, t.end, (t.speaker + 1) % 6) for t in reference]
    assert diarization_error_rate(reference, rotated) == 0


# -- clustering ----------------------------------------------------------------------


def _naive_average_linkage(embeddings: np.ndarray, threshold: float, weights: np.ndarray) -> list:
    clusters = [[i] for i in range(len(embeddings))]
    sim = embeddings @ embeddings.T

    def link(a: list[int], b: list[int]) -> float:
        w = np.outer(weights[a], weights[b])
        return float((sim[np.ix_(a, b)] * w).sum() / w.sum())

    while len(clusters) > 1:
        best, x, y = max(
            (link(clusters[x], clusters[y]), x, y)
            for x, y in itertools.combinations(range(len(clusters)), 2)
        )
        if best < threshold:
            break
        clusters[x] += clusters.pop(y)
    return sorted(sorted(c) for c in clusters)


def test_agglomeration_is_average_linkage() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(2, 14))
        centres = rng.normal(size=(3, 8))
        points = centres[rng.integers(0, 3, n)] + rng.normal(scale=0.8, size=(n, 8))
        points /= np.linalg.norm(points, axis=1, keepdims=True)
        weights = rng.uniform(0.5, 1.5, n)
        threshold = float(rng.uniform(0.0, 0.8))
        labels = agglomerate(points.astype(np.float32), threshold, n, weights)
        found = sorted(sorted(np.flatnonzero(labels == k).tolist()) for k in set(labels))
        assert found == _naive_average_linkage(points, threshold, weights)


# -- configuration -------------------------------------------------------------------


class FakeDiarizer:
    def diarize(self, audio16k: np.ndarray, max_speakers: int = 8) -> list[Turn]:
        return [Turn(0.0, len(audio16k) / SAMPLE_RATE, 0)]


def test_load_diarizer_specs() -> None:
    assert isinstance(load_diarizer(""), EmbeddingDiarizer)
    assert isinstance(load_diarizer("embedded"), EmbeddingDiarizer)
    custom = load_diarizer(f"{__name__}:FakeDiarizer")
    assert isinstance(custom, FakeDiarizer) and isinstance(custom, Diarizer)
    for bad in ("nonsense", "pyannote:", "no.such.module:Thing", f"{__name__}:Nothing", "json:"):
        with pytest.raises(ValueError, match="diarizer"):
            load_diarizer(bad)
    with pytest.raises(ValueError, match="no diarize"):
        load_diarizer("json:JSONDecoder")


@pytest.mark.skipif(importlib.util.find_spec("pyannote") is not None, reason="pyannote present")
def test_pyannote_without_pyannote_says_so(tmp_path: Path) -> None:
    with pytest.raises(SpeakerModelError, match=r"pip install pyannote\.audio"):
        load_diarizer(f"pyannote:{tmp_path / 'config.yaml'}")
