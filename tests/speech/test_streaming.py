"""Live captions: streaming VAD, Whisper caption streams, engine plug-ins.

Audio is fed in 20 ms chunks as fast as possible (no sleeping). Final latency is defined
as the wall time spent in accept() calls after the chunk holding the last speech sample,
up to the call that returns the final, plus end_silence_s: the audio time the VAD must
hear before it ends an utterance. In real time, that is how long after the speaker stops
the final is returned if its decode starts once the VAD has heard the pause. The engine
starts it earlier (an early final, decoded while the VAD waits), so the latency in real
time is lower: `Run.realtime_latency` replays the calls on the audio's clock.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import pytest
from faster_whisper.vad import get_vad_model

from visio.speech.audio import SAMPLE_RATE, load_audio
from visio.speech.model import ModelError
from visio.speech.streaming import (
    CaptionStream,
    CaptionUpdate,
    Decoded,
    LanguageVotes,
    WhisperCaptionStream,
    WhisperStreamingEngine,
    _agreed_cut,
    _hallucination,
    _looped,
    _quietest,
    load_engine,
)
from visio.speech.vad import WINDOW, Endpointer, EndpointOptions, SileroVad, SpeechEnd, SpeechStart
from visio.speech.words import Word
from visio.testing.speech import speak

CHUNK = 320  # 20 ms, as the server gets them from Opus
# Chosen among espeak-ng sentences because Whisper base reads them right at every offset
# of the audio against its 10 ms frames (others flip a word or two with the offset).
FIRST = "Please send me the report before Friday."  # 2.8 s
SECOND = "Let us meet again next Tuesday morning."  # 3.0 s
LONG = [
    "The weekly planning meeting will start after lunch in the large room.",
    "Please send your slides to the project manager before the end of the day.",
    "We will review the hiring plan and the new office layout together.",
    "Good morning everyone, thank you for joining the call.",
    "Our users like the new interface, but they want a dark theme.",
]
FRENCH = (
    "Bonjour à tous, la réunion commence maintenant. "
    "Nous allons parler du budget de l'année prochaine. "
    "Merci de couper vos micros pendant la présentation."
)
MAX_WER = 0.20
MAX_FINAL_LATENCY_S = 3.0  # the target is 1.5 s; CI machines are shared and noisy


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.casefold()).split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)


def speech_bounds(samples: np.ndarray, offset: int = 0) -> tuple[float, float]:
    """Stream times of the first and last sample above 1 % of full scale."""
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    return (offset + loud[0]) / SAMPLE_RATE, (offset + loud[-1] + 1) / SAMPLE_RATE


@dataclass
class Run:
    updates: list[CaptionUpdate] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # samples fed when each update came
    walls: list[float] = field(default_factory=list)  # wall time of each accept() call

    @property
    def finals(self) -> list[CaptionUpdate]:
        return [u for u in self.updates if u.final]

    def final_latency(self, speech_end: float, end_silence_s: float) -> float:
        """See the module docstring."""
        first_call = int(speech_end * SAMPLE_RATE) // CHUNK + 1  # after the last speech chunk
        return sum(self.walls[first_call : self._final_call() + 1]) + end_silence_s

    def realtime_latency(self, speech_end: float) -> float:
        """When the final would come if chunk i arrived at (i + 1) * 20 ms and each call
        started once it had arrived and the previous call had returned."""
        finished = 0.0
        for call, wall in enumerate(self.walls[: self._final_call() + 1]):
            finished = max(finished, (call + 1) * CHUNK / SAMPLE_RATE) + wall
        return finished - speech_end

    def _final_call(self) -> int:
        final_at = next(e for e, u in zip(self.ends, self.updates, strict=True) if u.final)
        return (final_at - 1) // CHUNK


def feed(stream: CaptionStream, audio: np.ndarray) -> Run:
    """`audio` in 20 ms chunks, then close()."""
    run = Run()
    for start in range(0, len(audio), CHUNK):
        began = time.perf_counter()
        updates = stream.accept(audio[start : start + CHUNK])
        run.walls.append(time.perf_counter() - began)
        run.updates += updates
        run.ends += [min(start + CHUNK, len(audio))] * len(updates)
    closed = stream.close()
    run.updates += closed
    run.ends += [len(audio)] * len(closed)
    return run


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> WhisperStreamingEngine:
    return WhisperStreamingEngine(model_dir)  # the defaults: 1 thread per decode, 2 at once


@pytest.fixture(scope="module")
def finals_only(model_dir: Path) -> WhisperStreamingEngine:
    """No partials (they would cost ~20 s on long audio): for tests about finals only."""
    return WhisperStreamingEngine(model_dir, threads=2, partial_every_s=1000, early_finals=False)


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    folder = tmp_path_factory.mktemp("streaming")
    texts = {"first": FIRST, "second": SECOND, **{f"long{i}": t for i, t in enumerate(LONG)}}
    out = {name: load_audio(speak(text, folder / f"{name}.wav")) for name, text in texts.items()}
    out["french"] = load_audio(speak(FRENCH, folder / "french.wav", voice="fr"))
    return out


# -- voice activity, no Whisper ---------------------------------------------------------


def test_silero_state_carried_across_calls_matches_one_pass(voices: dict[str, np.ndarray]) -> None:
    audio = np.concatenate([silence(0.5), voices["first"], silence(0.5)])
    audio = audio[: len(audio) // WINDOW * WINDOW]
    whole = get_vad_model()(audio).reshape(-1)
    vad = SileroVad()
    windows = audio.reshape(-1, WINDOW)
    pieces = [vad.probabilities(windows[i : i + 7]) for i in range(0, len(windows), 7)]
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-5)


def test_endpoints_do_not_depend_on_chunk_size(voices: dict[str, np.ndarray]) -> None:
    audio = np.concatenate([silence(1), voices["first"], silence(1.5), voices["second"]])
    results = []
    for chunk in (CHUNK, 1234, len(audio)):
        endpointer = Endpointer()
        found = [
            b for i in range(0, len(audio), chunk) for b in endpointer.feed(audio[i : i + chunk])
        ]
        results.append(found + endpointer.flush())
    assert results[0] == results[1] == results[2]
    start, end, start2, end2 = results[0]
    assert isinstance(start, SpeechStart) and isinstance(start2, SpeechStart)
    assert not end.cut and not end2.cut and end2.sample <= len(audio)
    first_start, first_end = speech_bounds(voices["first"], round(SAMPLE_RATE))
    assert first_start - 0.4 < start.sample / SAMPLE_RATE < first_start
    assert first_end < end.sample / SAMPLE_RATE < first_end + 0.4


def test_a_long_utterance_is_cut_in_its_quietest_gap(voices: dict[str, np.ndarray]) -> None:
    """Sentences joined without their silences, over faint noise, with one 0.3 s gap of
    digital silence 13 s in (shorter than end_silence_s): the 15 s utterance is cut there."""
    sentences = []
    for i in range(len(LONG)):
        start, end = speech_bounds(voices[f"long{i}"])
        sentences.append(voices[f"long{i}"][round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)])
    speech = np.concatenate(sentences)
    speech += np.random.default_rng(1).normal(0, 0.002, len(speech)).astype(np.float32)
    gap = round(13 * SAMPLE_RATE)
    speech[gap : gap + round(0.3 * SAMPLE_RATE)] = 0
    endpointer = Endpointer(EndpointOptions(max_utterance_s=15.0, cut_search_s=3.0))
    found = [
        b for i in range(0, len(speech), CHUNK) for b in endpointer.feed(speech[i : i + CHUNK])
    ]
    assert isinstance(found[0], SpeechStart) and isinstance(found[1], SpeechEnd)
    cut = found[1]
    assert cut.cut and found[2] == SpeechStart(cut.sample)
    assert gap < cut.sample < gap + 0.3 * SAMPLE_RATE


# -- guards and language, no Whisper ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "looped"),
    [
        ("We will remove the hiring plan and we will remove the hiring plan and we", True),
        ("Good morning. Good morning. Good morning. Good morning.", True),
        ("the " * 40, True),
        ("Please send your slides to the project manager before the end of the day.", False),
        ("", False),
    ],
)
def test_looped_text_is_recognised(text: str, looped: bool) -> None:
    assert _looped(text) is looped


def timed(text: str, gap_after: int = -1) -> tuple[Word, ...]:
    """Words 0.3 s long, back to back, but a 0.2 s gap after word `gap_after`."""
    words, at = [], 0.0
    for i, word in enumerate(text.split()):
        words.append(Word(at, at + 0.3, f" {word}"))
        at += 0.5 if i == gap_after else 0.3
    return tuple(words)


def test_a_sentence_end_is_committed_once_two_decodes_agree() -> None:
    before = timed("Please send me the report before Friday.")
    after = timed("please send me the report before Friday, let us")
    latest = timed("Please send me the report before Friday. Let us meet")
    # The words up to the full stop agree, whatever the case and punctuation.
    assert _agreed_cut(after, latest, paused=False, long=False) == 7
    assert _agreed_cut(before, latest, paused=False, long=False) == 7
    # Whisper ends audio cut short with a full stop: last, it is no sentence end unless the
    # VAD heard a pause there.
    assert _agreed_cut(before, before, paused=False, long=False) is None
    assert _agreed_cut(before, before, paused=True, long=False) == 7
    # A word changed: no agreement, no commit.
    changed = timed("Please send me the reply before")
    assert _agreed_cut(changed, latest, paused=False, long=False) is None
    assert _agreed_cut((), latest, paused=False, long=False) is None


def test_a_sentence_said_without_a_pause_and_written_with_a_comma_ends_at_it() -> None:
    """Whisper writes "Friday, let us" where the speaker did not pause between sentences."""
    previous = timed("Please send me the report before Friday, let")
    latest = timed("Please send me the report before Friday, let us meet")
    assert _agreed_cut(previous, latest, paused=False, long=False) is None
    assert _agreed_cut(previous, latest, paused=False, long=False, clauses=True) == 7
    # The comma must be agreed, and followed by a word in the latest decode.
    assert (
        _agreed_cut(timed("Please send me"), latest, paused=False, long=False, clauses=True) is None
    )
    # Nor a comma after a word or two: "Good, children" goes on.
    short = timed("Good, children of the")
    assert _agreed_cut(short, short, paused=False, long=False, clauses=True) is None
    last = timed("Please send me the report before Friday,")
    assert _agreed_cut(last, last, paused=False, long=False, clauses=True) is None


def test_a_long_utterance_without_sentence_end_is_cut_at_its_best_agreed_word() -> None:
    previous = timed("we will review the hiring plan, and then the office layout", gap_after=7)
    latest = timed("we will review the hiring plan and then the office layout too", gap_after=7)
    assert _agreed_cut(previous, latest, paused=False, long=False) is None
    assert _agreed_cut(previous, latest, paused=False, long=True) == 6  # after the comma
    no_comma = timed("we will review the hiring plan and then the office", gap_after=7)
    assert _agreed_cut(no_comma, latest, paused=False, long=True) == 8  # the widest gap


def test_the_cut_is_in_the_quiet_between_words() -> None:
    rng = np.random.default_rng(1)
    audio = rng.normal(0, 0.1, 3 * SAMPLE_RATE).astype(np.float32)
    audio[round(1.30 * SAMPLE_RATE) : round(1.45 * SAMPLE_RATE)] *= 0.01  # a 150 ms pause
    audio[round(1.05 * SAMPLE_RATE) : round(1.09 * SAMPLE_RATE)] *= 0.01  # a stop's closure
    assert 1.30 < _quietest(audio, 1.0, 1.6) / SAMPLE_RATE < 1.45


@pytest.mark.parametrize(
    ("text", "seconds", "no_speech", "dropped"),
    [
        ("Thank you.", 1.0, 0.1, False),  # said, briefly
        ("Thank you.", 4.0, 0.1, True),  # too long for it
        (" you", 1.0, 0.5, True),  # likely not speech
        ("It.", 3.0, 0.0, True),
        ("Thank you for the report.", 4.0, 0.1, False),
    ],
)
def test_whisper_inventions_are_dropped(
    text: str, seconds: float, no_speech: float, dropped: bool
) -> None:
    assert _hallucination(text, seconds, no_speech) is dropped


def test_the_language_waits_for_a_sure_detection() -> None:
    sure = LanguageVotes()
    assert sure.add({"en": 0.98, "cy": 0.01}, 3.0) == "en"
    # espeak French, one sentence then three: Spanish first, at 0.5.
    unsure = LanguageVotes()
    assert unsure.add({"es": 0.5, "fr": 0.24}, 3.0) is None
    assert unsure.choose({"fr": 0.92, "es": 0.01}, 9.0) == "fr"
    assert unsure.add({"fr": 0.92, "es": 0.01}, 9.0) == "fr"
    # Never sure: the likeliest after LANGUAGE_EVIDENCE_S of speech.
    vague = LanguageVotes()
    assert vague.add({"fr": 0.4, "es": 0.3}, 6.0) is None
    assert vague.add({"fr": 0.4, "es": 0.3}, 6.0) == "fr"


# -- Whisper streams ------------------------------------------------------------------


def test_a_sentence_gives_partials_then_one_final(
    engine: WhisperStreamingEngine, voices: dict[str, np.ndarray]
) -> None:
    audio = np.concatenate([silence(1), voices["first"], silence(1)])
    run = feed(engine.open_stream(None), audio)

    partials = [u for u in run.updates if not u.final]
    assert partials and run.updates.index(partials[-1]) < run.updates.index(run.finals[0])
    assert len(run.finals) == 1
    final = run.finals[0]
    assert {u.utterance for u in run.updates} == {0}
    assert {u.language for u in run.updates[-2:]} == {"en"}
    assert wer(FIRST, final.text) < MAX_WER, final.text
    speech_start, speech_end = speech_bounds(voices["first"], round(SAMPLE_RATE))
    assert abs(final.start - speech_start) < 0.5 and abs(final.end - speech_end) < 0.5
    latency = run.final_latency(speech_end, engine.endpoint.end_silence_s)
    realtime = run.realtime_latency(speech_end)
    print(f"final latency {latency:.2f} s ({realtime:.2f} s in real time), partials:")
    print("\n".join(f"  {p.end:5.2f} {p.text}" for p in partials))
    assert latency < MAX_FINAL_LATENCY_S


def test_two_sentences_make_two_utterances(
    engine: WhisperStreamingEngine, voices: dict[str, np.ndarray]
) -> None:
    audio = np.concatenate([silence(1), voices["first"], silence(1.5), voices["second"]])
    run = feed(engine.open_stream("en"), np.concatenate([audio, silence(1)]))
    assert [u.utterance for u in run.finals] == [0, 1]
    assert wer(FIRST, run.finals[0].text) < MAX_WER
    assert wer(SECOND, run.finals[1].text) < MAX_WER
    # Updates come in order: nothing about utterance 0 after its final.
    assert [u.utterance for u in run.updates] == sorted(u.utterance for u in run.updates)
    assert run.finals[0].end <= run.finals[1].start


def sentence_audio(voice: np.ndarray) -> np.ndarray:
    start, end = speech_bounds(voice)
    return voice[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]


def test_continuous_speech_gets_a_final_per_sentence_without_a_pause(
    engine: WhisperStreamingEngine, voices: dict[str, np.ndarray]
) -> None:
    """Three sentences back to back (no pause at all): each has its final before the next
    one ends, cut near its end, with its words."""
    said = [FIRST, SECOND, FIRST]
    parts = [sentence_audio(voices["first"]), sentence_audio(voices["second"])]
    parts.append(parts[0])
    ends = np.cumsum([len(p) for p in parts]) / SAMPLE_RATE
    audio = np.concatenate([silence(0.5), *parts, silence(1)])
    run = feed(engine.open_stream("en"), audio)
    finals = run.finals
    print("\n".join(f"{u.start:5.2f}-{u.end:5.2f} {u.text}" for u in finals))
    assert len(finals) == len(said), [u.text for u in finals]
    for final, text, end in zip(finals, said, ends + 0.5, strict=True):
        assert abs(final.end - end) < 0.4, (final, end)
        assert wer(text, final.text) <= 0.3, final.text
    # The first came while the speech went on; none waited for the end of the stream's
    # speech plus 1 s (Whisper may read a comma at a sentence end without a pause: that
    # sentence ends at the next sentence end, or 5 s into its utterance).
    arrived = [e / SAMPLE_RATE for e, u in zip(run.ends, run.updates, strict=True) if u.final]
    assert arrived[0] < ends[1] + 0.5 and arrived[1] < ends[2] + 0.5 + 1.0, arrived


def test_a_stream_that_starts_mid_sentence_shows_no_fragment_first(
    engine: WhisperStreamingEngine, voices: dict[str, np.ndarray]
) -> None:
    """The speaker was talking when the stream started: the first partial waits for a second
    of speech, and the sentence after is captioned whole (with or without the fragment)."""
    first = sentence_audio(voices["first"])
    clipped = first[round(1.2 * SAMPLE_RATE) :]  # "…port before Friday."
    audio = np.concatenate([clipped, silence(0.2), sentence_audio(voices["second"]), silence(1)])
    run = feed(engine.open_stream("en"), audio)
    partials = [u for u in run.updates if not u.final]
    assert partials and partials[0].end >= 1.0
    heard = normalise(" ".join(u.text for u in run.finals))
    assert normalise(SECOND) in heard and heard.endswith(normalise(SECOND)), heard


def test_silence_gives_nothing(engine: WhisperStreamingEngine) -> None:
    noise = np.random.default_rng(1).normal(0, 0.001, 3 * SAMPLE_RATE).astype(np.float32)
    run = feed(engine.open_stream(None), np.concatenate([silence(2), noise]))
    assert run.updates == []


def test_close_makes_the_utterance_under_way_final(
    finals_only: WhisperStreamingEngine, voices: dict[str, np.ndarray]
) -> None:
    stream = finals_only.open_stream("en")
    updates = stream.accept(np.concatenate([silence(0.5), voices["first"]]))
    assert not any(u.final for u in updates)
    [final] = stream.close()
    assert final.final and wer(FIRST, final.text) < MAX_WER
    assert stream.close() == []
    with pytest.raises(RuntimeError):
        stream.accept(silence(0.1))


@pytest.mark.parametrize("samples", [np.zeros((2, 320), np.float32), np.zeros(320, np.int16)])
def test_accept_wants_mono_float_samples(
    finals_only: WhisperStreamingEngine, samples: np.ndarray
) -> None:
    stream = finals_only.open_stream("en")
    assert stream.accept(np.zeros(0, np.float32)) == []
    with pytest.raises(ValueError, match="mono float"):
        stream.accept(samples)
    with pytest.raises(ValueError, match="language"):
        finals_only.open_stream("klingon")


def test_continuous_speech_is_cut_at_max_utterance(
    finals_only: WhisperStreamingEngine, voices: dict[str, np.ndarray]
) -> None:
    speech = np.concatenate([voices[f"long{i}"] for i in range(len(LONG))])  # ~21 s, no pause
    run = feed(finals_only.open_stream("en"), np.concatenate([silence(0.5), speech, silence(1)]))
    assert [u.utterance for u in run.finals] == [0, 1]
    first, second = run.finals
    maximum = finals_only.endpoint.max_utterance_s
    assert maximum - finals_only.endpoint.cut_search_s <= first.end - first.start <= maximum
    assert second.start == first.end
    assert wer(" ".join(LONG), f"{first.text} {second.text}") < 0.3


def test_french_is_detected(
    finals_only: WhisperStreamingEngine, voices: dict[str, np.ndarray]
) -> None:
    # espeak's French is barely intelligible: one 3 s sentence is often taken for Spanish;
    # three said in a row (~9 s, one utterance) are detected as French at 0.92.
    run = feed(finals_only.open_stream(None), np.concatenate([voices["french"], silence(1)]))
    [final] = run.finals
    assert final.language == "fr" and final.text


def test_streams_decode_in_parallel_threads(
    finals_only: WhisperStreamingEngine, voices: dict[str, np.ndarray]
) -> None:
    audios = [np.concatenate([silence(0.3), voices[n], silence(1)]) for n in ("first", "second")]

    def finals(audio: np.ndarray) -> list[str]:
        return [u.text for u in feed(finals_only.open_stream("en"), audio).finals]

    alone = [finals(a) for a in audios]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(finals, audios * 2))
    assert together == alone * 2


# -- update rules, with a stand-in for Whisper -----------------------------------------


class ScriptedEngine:
    """Answers decodes from a script: (partial text, final text) per utterance."""

    def __init__(self, script: list[tuple[str, str]]) -> None:
        self.endpoint = EndpointOptions()
        self.partial_every_s = 0.5
        self.early_finals = False  # one final decode per utterance, in script order
        self.commit_after_s = 8.0
        self.script = script
        self.finals = 0

    def decode_partial(self, audio: np.ndarray, **_: Any) -> Decoded:
        return Decoded(self.script[self.finals][0], "en", None)

    def decode_final(self, audio: np.ndarray, **_: Any) -> Decoded:
        self.finals += 1
        return Decoded(self.script[self.finals - 1][1], "en", None)


def test_no_text_gives_no_final_and_retracted_partials_an_empty_one(
    voices: dict[str, np.ndarray],
) -> None:
    # Utterance 1: nothing at all; 2: partials then nothing; 3: text. (Texts as long as the
    # 2.8 s said: a word or two for that long is taken for misread audio.)
    engine = ScriptedEngine(
        [("", ""), ("a cough or two", ""), ("Hello there", "Hello there, everyone.")]
    )
    pause = silence(1.5)
    audio = np.concatenate([pause, voices["first"], pause, voices["first"], pause, voices["first"]])
    stream = WhisperCaptionStream(engine, None)  # type: ignore[arg-type]
    run = feed(stream, np.concatenate([audio, pause]))
    assert [(u.utterance, u.text) for u in run.finals] == [(0, ""), (1, "Hello there, everyone.")]
    assert {u.text for u in run.updates if not u.final} == {"a cough or two", "Hello there"}


# -- plug-ins -------------------------------------------------------------------------


class PluggedEngine:
    def __init__(self, model_dir: Path, **options: Any) -> None:
        self.model_dir, self.options = model_dir, options

    def open_stream(self, language: str | None = None) -> CaptionStream:
        raise NotImplementedError


def test_load_engine(tmp_path: Path) -> None:
    plugged = load_engine(f"{__name__}:PluggedEngine", tmp_path, rate=3)
    assert isinstance(plugged, PluggedEngine)
    assert plugged.model_dir == tmp_path and plugged.options == {"rate": 3}
    for builtin in ("", "whisper"):  # the built-in engine checks its model folder first
        with pytest.raises(ModelError, match=r"lacks model\.bin"):
            load_engine(builtin, tmp_path)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kyutai", "expected 'whisper' or 'package.module:ClassName'"),
        ("visio.speech.streaming:", "expected"),
        ("no_such_module_here:Engine", "cannot import no_such_module_here"),
        ("visio.speech.streaming:NoSuchEngine", "has no class NoSuchEngine"),
        ("pathlib:PurePath", "has no open_stream method"),
    ],
)
def test_load_engine_rejects_a_bad_spec(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_engine(spec, tmp_path)
