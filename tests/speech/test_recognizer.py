"""Whisper recognition on espeak-ng speech: accuracy, timings, silence, loops, threads."""

from __future__ import annotations

import itertools
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jiwer
import numpy as np
import pytest
from faster_whisper.vad import VadOptions, get_speech_timestamps

from visio.speech import recognizer as recognizer_module
from visio.speech.audio import SAMPLE_RATE, load_audio
from visio.speech.model import ModelError
from visio.speech.recognizer import (
    VAD_OPTIONS,
    Recognition,
    Recognized,
    Recognizer,
    collapse_repetitions,
    drop_repeated_segments,
)
from visio.testing.speech import speak

ENGLISH = [
    "The weekly planning meeting will start after lunch in the large room.",
    "Please send your slides to the project manager before the end of the day.",
    "We will review the hiring plan and the new office layout together.",
]
# espeak's French is barely intelligible: five sentences (~18 s) are needed for Whisper to
# detect French reliably (three gave "fr" at only 0.56, "th" 0.22; one alone gave "es").
FRENCH = [
    "Bonjour à tous, la réunion commence maintenant.",
    "Nous allons parler du budget de l'année prochaine.",
    "Merci de couper vos micros pendant la présentation.",
    "Le compte rendu sera envoyé à toute l'équipe demain matin.",
    "Est-ce que quelqu'un a une question avant de continuer ?",
]
# Measured 0.147 (faster-whisper 1.2.1, base int8, beam 5, espeak-ng 1.51 at 150 wpm);
# other speeds gave 0.11 to 0.34, so the bound is the measure plus 15 points.
FRENCH_MAX_CER = 0.30
ENGLISH_MAX_WER = 0.15  # measured 0.0


def normalise(text: str) -> str:
    text = re.sub(r"[^\w\s']", " ", text.casefold())
    return " ".join(text.split())


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def spoken(folder: Path, sentences: list[str], voice: str, gap: float = 0.5) -> np.ndarray:
    parts: list[np.ndarray] = []
    for i, sentence in enumerate(sentences):
        parts += [load_audio(speak(sentence, folder / f"{voice}-{i}.wav", voice=voice))]
        parts += [silence(gap)]
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def english(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """5 s of silence, then three sentences (~14 s): a participant who speaks late."""
    return np.concatenate([silence(5), spoken(tmp_path_factory.mktemp("en"), ENGLISH, "en-us")])


@pytest.fixture(scope="module")
def english_result(recognizer: Recognizer, english: np.ndarray) -> tuple[Recognition, list[float]]:
    fractions: list[float] = []
    return recognizer.transcribe(english, progress=fractions.append), fractions


# -- loop guards, no model ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thank you. Thank you. Thank you. Thank you.", "Thank you."),
        ("and the the the the end", "and the end"),
        ("I will go, I will go, I will go to the office", "I will go, to the office"),
        ("See you next week. See you next week.", "See you next week. See you next week."),
        ("no repetition here at all", "no repetition here at all"),
        ("a b a b a b c c c", "a b c"),
        ("", ""),
    ],
)
def test_collapse_repetitions(text: str, expected: str) -> None:
    assert collapse_repetitions(text) == expected


def test_a_run_of_three_identical_segments_keeps_the_first() -> None:
    def seg(start: float, text: str) -> Recognized:
        return Recognized(start, start + 1, text)

    segments = [seg(0, "Hello."), seg(1, "Thank you."), seg(2, "thank you"), seg(3, "Thank you!")]
    segments += [seg(4, "Thank you."), seg(5, "Bye."), seg(6, "Bye."), seg(7, "Hello.")]
    kept = drop_repeated_segments(segments)
    assert [s.start for s in kept] == [0, 1, 5, 6, 7]


class FakeModel:
    """Returns canned faster-whisper segments, timed on the speech the VAD kept."""

    def __init__(self, segments: list[Any]) -> None:
        self.segments = segments
        self.calls: list[dict[str, Any]] = []

    def transcribe(self, audio: np.ndarray, **options: Any) -> tuple[Any, Any]:
        self.calls.append({"seconds": len(audio) / SAMPLE_RATE, **options})
        info = SimpleNamespace(language=options["language"] or "en", language_probability=0.9)
        return iter(self.segments), info


class CountingModel(FakeModel):
    """A different sentence on each call, so that no run of identical segments is dropped."""

    def transcribe(self, audio: np.ndarray, **options: Any) -> tuple[Any, Any]:
        self.segments = [fake_segment(0.1, f"Hello number {len(self.calls)}.")]
        return super().transcribe(audio, **options)


def fake_segment(
    start: float,
    text: str,
    *,
    times: list[tuple[float, float]] | None = None,
    no_speech: float = 0.1,
    logprob: float = -0.3,
) -> Any:
    tokens = text.split()
    times = times or [(start + 0.25 * i, start + 0.25 * i + 0.2) for i in range(len(tokens))]
    words = [
        SimpleNamespace(start=a, end=b, word=" " + token, probability=0.9)
        for token, (a, b) in zip(tokens, times, strict=True)
    ]
    return SimpleNamespace(
        start=times[0][0],
        end=times[-1][1],
        text=" " + text,
        words=words,
        no_speech_prob=no_speech,
        avg_logprob=logprob,
    )


def fake_recognizer(segments: list[Any]) -> Recognizer:
    recognizer = object.__new__(Recognizer)
    recognizer._lock = threading.Lock()
    recognizer._model = FakeModel(segments)
    return recognizer


def test_post_filter_drops_hallucinations_collapses_loops_and_restores_times(
    tmp_path: Path,
) -> None:
    sentence = load_audio(speak("Hello there, how are you?", tmp_path / "hello.wav"))
    audio = np.concatenate([silence(5), sentence, silence(1)])
    recognizer = fake_recognizer(
        [
            fake_segment(0.2, "Hello there, how are you?"),
            fake_segment(0.4, "Subtitles by the community", no_speech=0.9, logprob=-1.4),
            fake_segment(0.6, "you you you you are"),
        ]
    )
    result = recognizer.transcribe(audio)
    assert [s.text for s in result.segments] == ["Hello there, how are you?", "you are"]
    assert [w.text for w in result.segments[1].words] == ["you", "are"]
    # The VAD cut the 5 s of leading silence (less its 0.4 s padding): times come back.
    first = result.segments[0]
    assert 4.6 <= first.start < 5.0
    assert first.words[0].start == first.start
    assert first.end == first.words[-1].end


def test_words_straddling_a_cut_silence_stay_with_their_segment(tmp_path: Path) -> None:
    """Whisper stretches a segment's first (or last) word over the silence the VAD cut."""
    one = load_audio(speak("Hello there.", tmp_path / "one.wav"))
    two = load_audio(speak("Good morning.", tmp_path / "two.wav"))
    audio = np.concatenate([silence(1), one, silence(6), two, silence(1)])
    first_chunk, second_chunk = get_speech_timestamps(audio, VadOptions(**VAD_OPTIONS))
    cut = (first_chunk["end"] - first_chunk["start"]) / SAMPLE_RATE  # in the joined speech
    recognizer = fake_recognizer(
        [
            fake_segment(0, "Hello there.", times=[(0.3, 0.8), (cut - 0.1, cut + 0.6)]),
            fake_segment(0, "Good morning.", times=[(cut - 0.6, cut + 0.1), (cut + 0.5, cut + 1)]),
        ]
    )
    first, second = recognizer.transcribe(audio).segments
    # "there." ends at the cut, "Good" starts after it (times are rounded to the ms).
    assert first.end == pytest.approx(first_chunk["end"] / SAMPLE_RATE, abs=0.001)
    assert second.start == pytest.approx(second_chunk["start"] / SAMPLE_RATE, abs=0.001)
    assert second.words[0].end == pytest.approx(second.start + 0.1, abs=0.002)
    assert second.words[1].start == pytest.approx(second.start + 0.5, abs=0.002)


def test_long_tracks_go_to_whisper_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spectrogram of a whole hour of speech would take GiBs: Whisper gets batches."""
    monkeypatch.setattr(recognizer_module, "BATCH_SECONDS", 3)
    hello = load_audio(speak("Hello there.", tmp_path / "hello.wav"))
    audio = np.concatenate([silence(1), hello, silence(5), hello, silence(5), hello])
    recognizer = fake_recognizer([])
    recognizer._model = CountingModel([])
    fractions: list[float] = []
    result = recognizer.transcribe(audio, progress=fractions.append)
    calls = recognizer._model.calls
    assert len(calls) == 3
    assert all(call["seconds"] <= 3 for call in calls)
    assert [call["language"] for call in calls] == [None, "en", "en"]
    assert (result.language, result.language_probability) == ("en", 0.9)
    starts = [segment.start for segment in result.segments]
    assert len(starts) == 3
    assert all(b - a > 5 for a, b in itertools.pairwise(starts))
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0


# -- the real model -------------------------------------------------------------------


def test_english_word_error_rate(english_result: tuple[Recognition, list[float]]) -> None:
    result, _ = english_result
    reference = normalise(" ".join(ENGLISH))
    assert jiwer.wer(reference, normalise(result.text)) < ENGLISH_MAX_WER, result.text
    assert result.language == "en"
    assert result.language_probability > 0.8


def test_word_timestamps_are_ordered_and_inside_the_audio(
    english: np.ndarray, english_result: tuple[Recognition, list[float]]
) -> None:
    result, _ = english_result
    duration = len(english) / SAMPLE_RATE
    words = [w for s in result.segments for w in s.words]
    assert len(words) >= 30
    assert all(0 <= w.start <= w.end <= duration for w in words)
    assert all(a.start <= b.start and a.end <= b.end for a, b in itertools.pairwise(words))
    for segment in result.segments:
        assert segment.start <= segment.words[0].start
        assert segment.words[-1].end <= segment.end
        assert segment.text.split()[0] == segment.words[0].text


def test_progress_rises_to_one(english_result: tuple[Recognition, list[float]]) -> None:
    _, fractions = english_result
    assert len(fractions) >= 2
    assert fractions == sorted(fractions)
    assert 0 < fractions[0] and fractions[-1] == 1.0


def test_leading_silence_gives_no_text_and_delays_the_first_word(
    english_result: tuple[Recognition, list[float]],
) -> None:
    result, _ = english_result
    assert normalise(result.segments[0].text) == normalise(ENGLISH[0])
    assert 4.5 <= result.segments[0].words[0].start <= 5.5  # the VAD pads speech by 0.4 s


@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_no_speech_gives_nothing(recognizer: Recognizer, kind: str) -> None:
    audio = silence(20)
    if kind == "noise":
        audio = np.random.default_rng(0).normal(0, 0.02, audio.size).astype(np.float32)
    assert recognizer.transcribe(audio) == Recognition("", 0.0, [])
    assert recognizer.transcribe(audio, language="fr") == Recognition("fr", 0.0, [])
    assert recognizer.detect_language(audio) == ("", 0.0)


def test_empty_audio(recognizer: Recognizer) -> None:
    empty = np.zeros(0, dtype=np.float32)
    assert recognizer.transcribe(empty) == Recognition("", 0.0, [])
    assert recognizer.transcribe(empty, language="en").language == "en"


def test_french_language_and_character_error_rate(recognizer: Recognizer, tmp_path: Path) -> None:
    result = recognizer.transcribe(spoken(tmp_path, FRENCH, "fr"))
    assert result.language == "fr"
    cer = jiwer.cer(normalise(" ".join(FRENCH)), normalise(result.text))
    assert cer < FRENCH_MAX_CER, (cer, result.text)


def test_detect_language(recognizer: Recognizer, english: np.ndarray) -> None:
    language, probability = recognizer.detect_language(english)
    assert language == "en"
    assert probability > 0.8


def test_calls_from_worker_threads(recognizer: Recognizer, tmp_path: Path) -> None:
    sentences = ["Good morning everyone.", "Can you hear me?"]
    clips = [load_audio(speak(s, tmp_path / f"{i}.wav")) for i, s in enumerate(sentences)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda clip: recognizer.transcribe(clip, "en"), clips))
    for sentence, result in zip(sentences, results, strict=True):
        assert jiwer.wer(normalise(sentence), normalise(result.text)) < ENGLISH_MAX_WER


def test_a_corrupt_model_raises_model_error(model_dir: Path, tmp_path: Path) -> None:
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    (tmp_path / "model.bin").write_bytes(b"not a model" * 1000)
    with pytest.raises(ModelError, match=str(tmp_path)):
        Recognizer(tmp_path)
