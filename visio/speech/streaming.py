"""Live captions: streaming speech recognition behind a small, pluggable interface.

The server feeds each speaker's audio, 16 kHz mono float32 chunks of any size, in order,
to a `CaptionStream` opened on a shared `StreamingEngine`, and gets `CaptionUpdate`s back:
partial text while the person speaks, then one final line per utterance: when they pause,
or, with the built-in engine, as soon as a sentence is said, pause or not.

Update rules, for every engine:

- utterances are numbered 0, 1, 2… per stream; a partial for utterance n is replaced by
  later partials and by the final of the same n;
- each utterance that showed text gets exactly one final. One without any text produces
  nothing and does not use up a number. If partials were shown but the final finds no
  speech after all (a cough, a hallucination caught by the guards), the final has empty
  text: it retracts the partials;
- `start` and `end` are stream times in seconds (samples fed before them / 16000);
- `close()` flushes: the utterance under way becomes final.

A stream is used by one thread at a time (calls are serialised by a lock); an engine is
shared by every stream and must allow one thread per active speaker.

Plugging in another engine (Kyutai STT, sherpa-onnx, Vosk… with weights the operator
supplies): write a class whose constructor takes `(model_dir: Path, **options)` and which
has `open_stream(language: str | None) -> CaptionStream`, where the stream has
`accept(samples) -> list[CaptionUpdate]` and `close() -> list[CaptionUpdate]` and follows
the rules above, then configure `"package.module:ClassName"` (see `load_engine`). A true
streaming model can emit partials as it goes; `visio.speech.vad.Endpointer` is there if it
needs endpointing.

The built-in engine, `WhisperStreamingEngine`, re-decodes the utterance so far with
Whisper (faster-whisper's CTranslate2 model) every `partial_every_s` of new voiced audio.
Its final is decoded as soon as a pause is `pad_s` (0.2 s) long, while Silero VAD waits
for `end_silence_s` (0.5 s) to decide that the utterance ended; if the speaker goes on,
that decode was just one more partial. Whisper is trained on 30 s windows
and faster-whisper always pads to one (its `chunk_length` resizes the feature extractor,
not the encoder input, and mutates the shared model), so this engine computes the
features itself and encodes a window sized to the audio plus `TAIL_PAD_S` of silence:
about 5 times cheaper on 3 s of speech. Without that tail, Whisper loops or drops the last
word. Partials decode with a repetition penalty, which stops the loops Whisper falls into
on audio cut mid-word; finals decode without it, and again with it only when the text
looks looped.

Where the built-in engine ends an utterance (each decode's words are timed by Whisper's
cross-attention, `find_alignment`, ~10 % of a decode):

- at a pause of `end_silence_s` (0.5 s), as the VAD decides;
- at a stable sentence end (local agreement): when a decode has a sentence end (. ? !)
  followed by another word, or by a pause the VAD heard (`pad_s`), and the words up to it
  are the same in the previous decode (case and punctuation aside), they become the
  final. The cut is the quietest 90 ms between that word and the next; the next utterance
  starts `OVERLAP_S` before it, without the words said there. Whisper ends any audio cut
  short with a full stop: one at the very end of a decode is not a sentence end;
- past `CLAUSE_AFTER_S` (2 s) of voiced audio, at an agreed comma followed by a word: a
  sentence said without a pause is often written with a comma at its end;
- past `commit_after_s` (5 s) of voiced audio with no sentence end, at the best agreed
  word boundary: after a comma, else at the widest gap between words;
- past `max_utterance_s` (15 s), at the quietest point the VAD finds (a last resort).

Guards for the first seconds of a stream and for speech that starts mid-sentence: no
partial before `FIRST_PARTIAL_S` of voiced audio; Whisper's usual inventions ("you",
"Thank you.") on audio too long for them or likely not speech are dropped; a partial that
loops or that Whisper is unsure of (average log-probability < -1) is not shown; a text far
too short for the speech heard (a word for seconds of it: the audio began inside a word)
is not shown, and at a stream's start the utterance then starts again after that word; a
stream that began in speech drops a fragment of fewer than `FIRST_WORDS` words before its
first sentence end. No decode is conditioned on earlier text (no prompt): a wrong partial
cannot seed the next.
"""

from __future__ import annotations

import importlib
import math
import threading
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

from visio.speech.audio import SAMPLE_RATE
from visio.speech.model import ModelError, check_model_dir
from visio.speech.recognizer import (
    COMPRESSION_RATIO,
    LOW_LOGPROB,
    NO_SPEECH_PROB,
    collapse_repetitions,
)
from visio.speech.vad import Boundary, Endpointer, EndpointOptions, SpeechEnd, SpeechStart
from visio.speech.words import Word

TAIL_PAD_S = 1.0  # of silence after the audio, inside the encoder window
MAX_WINDOW_FRAMES = 3000  # Whisper's 30 s (10 ms frames)
MAX_UTTERANCE_S = 28.0  # padded by the VAD and TAIL_PAD_S, it still fits in 30 s
TOKENS_PER_SECOND = 8  # a cap on the text decoded: fast French (250 words/min) needs ~6.5
EXTRA_TOKENS = 10
MAX_LENGTH = 448  # Whisper's decoder positions, prompt included
LOOP_PENALTY = 1.2  # repetition penalty for partials and for a final that looped
LOOP_PHRASE_WORDS = 3  # a phrase of this many words said twice in one utterance: looped
# A stream whose language is not given takes the one Whisper detects on its first utterance
# when it is this sure; otherwise it keeps weighing the detections of the next utterances
# (by their duration) until one is this sure or LANGUAGE_EVIDENCE_S of speech were heard.
# espeak-ng French, 3 s at a time, is taken for Spanish or Thai at 0.5 to 0.6.
LANGUAGE_CONFIDENCE = 0.7
LANGUAGE_EVIDENCE_S = 10.0
KEEP_IDLE_S = 1.0  # audio kept between utterances: a start reaches back start_s + pad_s
# Ending an utterance before a pause (see the module docstring):
SENTENCE_ENDS = ".?!。？！"
CUT_RANGE_S = 0.16  # the cut is the quietest point between two words, in at least this
OVERLAP_S = 0.2  # audio before the cut decoded again with the next utterance
MIN_COMMIT_S = 0.5  # no shorter final is cut off the front of an utterance
# A stream that starts in speech (its first utterance starts before CLIPPED_START) likely
# starts mid-sentence: fewer words than FIRST_WORDS before the first sentence end are dropped.
FIRST_WORDS = 3
CLIPPED_START = round(0.3 * SAMPLE_RATE)
COMMIT_AFTER_S = 5.0  # of voiced audio without a sentence end: cut at the best agreed word
# Of voiced audio before an agreed comma followed by a word ends an utterance: Whisper often
# writes a comma where a sentence ends without a pause ("before Friday, let us meet").
CLAUSE_AFTER_S = 2.0
CLAUSE_MIN_WORDS = 4  # no final of fewer words is cut at a comma ("Good, children…")
# Guards for the first seconds of a stream, and for audio that starts inside a word:
FIRST_PARTIAL_S = 1.0  # voiced audio before a stream shows its first partial
SECONDS_PER_WORD = 1.5  # fewer words than this allows, over MIN_CHECKED_S, is misread audio
MIN_CHECKED_S = 2.0
SKIP_FROM_S, SKIP_TO_S = 0.15, 0.8  # where misread audio's new start is looked for
# Whisper's favourite inventions, on noise or clipped words (casefolded, without punctuation):
# dropped when the audio is longer than anyone takes to say them, or likely not speech.
HALLUCINATIONS = frozenset(
    {
        "you", "it", "so", "the", "a", "i", "oh", "bye", "bye bye", "okay", "hmm", "uh", "um",
        "thank you", "thanks", "thank you very much", "thanks for watching",
        "thank you for watching", "thank you so much for watching", "please subscribe",
        "subtitles by the amara org community", "merci", "merci d'avoir regardé",
        "sous titres réalisés para la communauté d'amara org",
    }
)  # fmt: skip
HALLUCINATION_MIN_S = 2.0
PARTIAL_MIN_LOGPROB = LOW_LOGPROB  # a partial less sure than this is not shown
HALLUCINATION_NO_SPEECH = 0.3


@dataclass(frozen=True)
class CaptionUpdate:
    utterance: int  # 0, 1, 2… per stream
    text: str
    final: bool
    start: float  # stream time, s
    end: float
    language: str


@runtime_checkable
class CaptionStream(Protocol):
    def accept(self, samples: np.ndarray) -> list[CaptionUpdate]: ...

    def close(self) -> list[CaptionUpdate]: ...


@runtime_checkable
class StreamingEngine(Protocol):
    def open_stream(self, language: str | None = None) -> CaptionStream: ...


def load_engine(spec: str, model_dir: Path, **options: Any) -> StreamingEngine:
    """The engine `spec` names: "" or "whisper" for the built-in one, else
    "package.module:ClassName", called as ClassName(model_dir, **options)."""
    if spec.strip() in ("", "whisper"):
        return WhisperStreamingEngine(model_dir, **options)
    module_name, _, class_name = spec.strip().partition(":")
    if not module_name or not class_name.isidentifier():
        raise ValueError(
            f"bad captions engine {spec!r}: expected 'whisper' or 'package.module:ClassName'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"captions engine {spec!r}: cannot import {module_name}: {exc}") from exc
    factory = getattr(module, class_name, None)
    if not callable(factory):
        raise ValueError(f"captions engine {spec!r}: {module_name} has no class {class_name}")
    engine = factory(model_dir, **options)
    if not isinstance(engine, StreamingEngine):
        raise ValueError(f"captions engine {spec!r}: {class_name} has no open_stream method")
    return engine


@dataclass(frozen=True)
class Decoded:
    text: str
    language: str
    languages: dict[str, float] | None  # what Whisper detected, when it had to
    # The words with their times in the decoded audio (s), each as Whisper spells it, with
    # its leading space; empty when the text was not aligned.
    words: tuple[Word, ...] = ()


class LanguageVotes:
    """Whisper's language detections on a stream's utterances, weighted by duration."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._seconds = 0.0

    def choose(self, detected: dict[str, float], seconds: float) -> str:
        """The likeliest language, given the evidence so far and this detection."""
        scores = dict(self._sums)
        for language, probability in detected.items():
            scores[language] = scores.get(language, 0.0) + probability * seconds
        return max(scores, key=scores.__getitem__)

    def add(self, detected: dict[str, float], seconds: float) -> str | None:
        """Count an utterance's detection; the language once it is settled, else None."""
        for language, probability in detected.items():
            self._sums[language] = self._sums.get(language, 0.0) + probability * seconds
        self._seconds += seconds
        best = max(self._sums, key=self._sums.__getitem__)
        confident = self._sums[best] >= LANGUAGE_CONFIDENCE * self._seconds
        return best if confident or self._seconds >= LANGUAGE_EVIDENCE_S else None


class WhisperStreamingEngine:
    """One Whisper model (CTranslate2, int8, CPU) shared by every stream.

    `workers` decodes run at once, each on `threads` cores: the CPU this engine uses is
    bounded by workers * threads cores, whatever the number of speakers. Finals queue for
    a worker; partials are skipped while none is free, so that they degrade first.
    Partials are greedy; finals use `final_beam_size` (beam 5 misread fewer words of
    espeak-ng speech but costs ~40 % more per decode: bench/caption_latency.py --beam 5).
    `early_finals` False decodes finals only once the VAD has decided (for tests).
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        threads: int = 1,
        workers: int = 2,
        partial_every_s: float = 0.5,
        final_beam_size: int = 1,
        early_finals: bool = True,
        end_silence_s: float = 0.5,
        max_utterance_s: float = 15.0,
        commit_after_s: float = COMMIT_AFTER_S,
        endpoint: EndpointOptions | None = None,
        languages: Sequence[str] = (),
    ) -> None:
        if partial_every_s <= 0:
            raise ValueError("partial_every_s must be > 0")
        if not 0 < max_utterance_s <= MAX_UTTERANCE_S:
            raise ValueError(f"max_utterance_s must be in (0, {MAX_UTTERANCE_S:g}]")
        self.model_dir = check_model_dir(Path(model_dir))
        self.partial_every_s = partial_every_s
        self.final_beam_size = final_beam_size
        self.early_finals = early_finals
        self.commit_after_s = commit_after_s
        # A stream in no set language is detected among these only (all, when empty):
        # one short utterance is easily heard as a language nobody in the room speaks.
        self.languages = tuple(languages)
        self.endpoint = replace(
            endpoint or EndpointOptions(),
            end_silence_s=end_silence_s,
            max_utterance_s=max_utterance_s,
        )
        try:
            self._model = WhisperModel(
                str(self.model_dir),
                device="cpu",
                compute_type="int8",
                cpu_threads=threads,
                num_workers=workers,
            )
        except Exception as exc:  # CTranslate2 and tokenizers raise plain RuntimeError/Exception
            raise ModelError(f"cannot load the speech model in {self.model_dir}: {exc}") from exc
        self._tokenizers: dict[str, tuple[Tokenizer, list[int]]] = {}
        self._workers = _Workers(workers)

    def open_stream(self, language: str | None = None) -> WhisperCaptionStream:
        if language and language not in self._model.supported_languages:
            raise ValueError(f"the speech model does not know the language {language!r}")
        return WhisperCaptionStream(self, language or None)

    def decode_final(
        self, audio: np.ndarray, *, language: str | None, votes: LanguageVotes | None = None
    ) -> Decoded:
        """Whisper's text for `audio` (one utterance), with the loop and silence guards.

        `language` None: detected, weighing in the stream's earlier detections (`votes`).
        Waits for a free worker.
        """
        self._workers.take(wait=True)
        try:
            return self._decode(audio, language, True, votes or LanguageVotes())
        finally:
            self._workers.give()

    def decode_partial(
        self, audio: np.ndarray, *, language: str | None, votes: LanguageVotes | None = None
    ) -> Decoded | None:
        """Like decode_final, greedy and penalising repetitions; None, without decoding, when
        every worker is busy or a final waits for one: partials never delay finals."""
        if not self._workers.take(wait=False):
            return None
        try:
            return self._decode(audio, language, False, votes or LanguageVotes())
        finally:
            self._workers.give()

    def _decode(
        self, audio: np.ndarray, language: str | None, final: bool, votes: LanguageVotes
    ) -> Decoded:
        encoded = self._encode(audio)
        seconds = len(audio) / SAMPLE_RATE
        detected = None
        if language is None:
            results = self._model.model.detect_language(encoded)[0]
            detected = _among({token[2:-2]: float(p) for token, p in results}, self.languages)
            language = votes.choose(detected, seconds)
        beam = self.final_beam_size if final else 1
        penalty = 1.0 if final else LOOP_PENALTY
        tokens, logprob = self._generate(encoded, language, seconds, beam, penalty)
        tokenizer = self._tokenizer(language)[0]
        if final and _looped(tokenizer.decode(tokens)):
            tokens, logprob = self._generate(encoded, language, seconds, beam, LOOP_PENALTY)
        text = tokenizer.decode(tokens).strip()
        if not any(c.isalnum() for c in text):
            text = ""
        words = self._align(encoded, tokenizer, tokens, len(audio)) if text else ()
        if not final and (_looped(text) or logprob < PARTIAL_MIN_LOGPROB):
            # A partial Whisper is unsure of, or looping on: not shown, but its words still
            # count for agreement (two decodes agreeing is a better judge than one's score).
            return Decoded("", language, detected, () if _looped(text) else words)
        collapsed = collapse_repetitions(text)
        return Decoded(collapsed, language, detected, words if collapsed == text else ())

    def _align(
        self,
        encoded: ctranslate2.StorageView,
        tokenizer: Tokenizer,
        tokens: list[int],
        samples: int,
    ) -> tuple[Word, ...]:
        """The words of `tokens` with their times, from Whisper's cross-attention (one more
        decoder pass, ~10 % of a decode)."""
        frames = min(samples // self._model.feature_extractor.hop_length, MAX_WINDOW_FRAMES)
        [aligned] = self._model.find_alignment(tokenizer, [tokens], encoded, frames)
        words: list[Word] = []
        for found in aligned:
            word = Word(float(found["start"]), float(found["end"]), found["word"])
            if words and not any(c.isalnum() for c in word.text):
                # Punctuation, tokenised apart: it belongs to the word before (its times
                # stay that word's, as faster-whisper does).
                words[-1] = replace(words[-1], text=words[-1].text + word.text.strip())
            elif word.text.strip():
                words.append(word)
        return tuple(words)

    def _encode(self, audio: np.ndarray) -> ctranslate2.StorageView:
        tail = np.zeros(round(TAIL_PAD_S * SAMPLE_RATE), dtype=np.float32)
        # Called without chunk_length, the feature extractor changes no shared state.
        features = self._model.feature_extractor(np.concatenate([audio, tail]))[:, :-1]
        frames = min(features.shape[-1] // 2 * 2, MAX_WINDOW_FRAMES)  # the encoder strides 2
        window = np.ascontiguousarray(features[None, :, :frames], dtype=np.float32)
        return self._model.model.encode(ctranslate2.StorageView.from_array(window))

    def _generate(
        self,
        encoded: ctranslate2.StorageView,
        language: str,
        seconds: float,
        beam: int,
        penalty: float,
    ) -> tuple[list[int], float]:
        """The tokens of the text, and their average log-probability."""
        tokenizer, suppressed = self._tokenizer(language)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        budget = TOKENS_PER_SECOND * math.ceil(seconds) + EXTRA_TOKENS
        result = self._model.model.generate(
            encoded,
            [prompt],
            beam_size=beam,
            repetition_penalty=penalty,
            max_length=min(len(prompt) + budget, MAX_LENGTH),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppressed,
        )[0]
        tokens = list(result.sequences_ids[0])
        # As faster-whisper does: the score is the log-probability divided by the length.
        average_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > NO_SPEECH_PROB and average_logprob < LOW_LOGPROB:
            return [], 0.0
        if _hallucination(tokenizer.decode(tokens), seconds, result.no_speech_prob):
            return [], 0.0
        return tokens, average_logprob

    def _tokenizer(self, language: str) -> tuple[Tokenizer, list[int]]:
        cached = self._tokenizers.get(language)
        if cached is None:  # two threads may build the same one: harmless
            tokenizer = Tokenizer(
                self._model.hf_tokenizer,
                self._model.model.is_multilingual,
                task="transcribe",
                language=language,
            )
            cached = tokenizer, list(get_suppressed_tokens(tokenizer, [-1]))
            self._tokenizers[language] = cached
        return cached


class _Workers:
    """Decoding slots: CTranslate2 runs `count` decodes at once and queues the others."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiting = 0  # finals waiting for a slot
        self._changed = threading.Condition()

    def take(self, *, wait: bool) -> bool:
        with self._changed:
            if not wait:
                if self._free <= 0 or self._waiting:
                    return False
            else:
                self._waiting += 1
                self._changed.wait_for(lambda: self._free > 0)
                self._waiting -= 1
            self._free -= 1
            return True

    def give(self) -> None:
        with self._changed:
            self._free += 1
            self._changed.notify()


class WhisperCaptionStream:
    """One speaker's audio → caption updates (see the module docstring for the rules)."""

    def __init__(self, engine: WhisperStreamingEngine, language: str | None) -> None:
        self._engine = engine
        self._language = language
        self._votes = LanguageVotes()
        self._endpointer = Endpointer(engine.endpoint)
        self._audio = _Audio()
        self._every = round(engine.partial_every_s * SAMPLE_RATE)
        self._commit_after = round(engine.commit_after_s * SAMPLE_RATE)
        self._first_partial = round(FIRST_PARTIAL_S * SAMPLE_RATE)
        self._utterance = 0
        self._start: int | None = None  # sample where the current utterance starts
        self._decoded_at = 0  # voiced samples of the utterance at its last partial decode
        self._shown = ""  # the last partial text returned for the current utterance
        self._previous: tuple[Word, ...] = ()  # the words of the last decode, for agreement
        # After a commit, the next utterance's audio starts OVERLAP_S before the cut, so that
        # a word clipped by the cut is heard whole; the words said in that overlap belong to
        # the committed final and are left out.
        self._overlap = 0
        self._committed_word = ""  # the last word committed, compared without punctuation
        self._early_finals = engine.early_finals
        self._early: tuple[int, Decoded] | None = None  # (end, decoded) of an early final
        self._heard_text = False  # whether anything was shown yet on this stream
        self._closed = False
        self._lock = threading.Lock()

    def accept(self, samples: np.ndarray) -> list[CaptionUpdate]:
        samples = np.asarray(samples)
        if samples.ndim != 1 or samples.dtype.kind != "f":
            raise ValueError(
                f"expected mono float samples in [-1, 1] (1-D), got {samples.dtype} "
                f"of shape {samples.shape}"
            )
        samples = samples.astype(np.float32, copy=False)
        with self._lock:
            if self._closed:
                raise RuntimeError("accept() on a closed caption stream")
            self._audio.append(samples)
            updates = self._boundaries(self._endpointer.feed(samples))
            # At most one decode per call: a caller that fell behind and passes everything
            # it queued catches up instead of decoding every half second of the backlog.
            updates += self._interim()
            self._forget()
            return updates

    def close(self) -> list[CaptionUpdate]:
        with self._lock:
            if self._closed:
                return []
            self._closed = True
            updates = self._boundaries(self._endpointer.flush())
            self._audio = _Audio()
            return updates

    def _boundaries(self, boundaries: list[Boundary]) -> list[CaptionUpdate]:
        updates: list[CaptionUpdate] = []
        for boundary in boundaries:
            if isinstance(boundary, SpeechStart):
                self._start, self._decoded_at, self._shown = boundary.sample, 0, ""
                self._early, self._previous, self._overlap = None, (), 0
            elif isinstance(boundary, SpeechEnd) and self._start is not None:
                updates += self._final(self._start, boundary.sample)
                self._start = None
        return updates

    def _interim(self) -> list[CaptionUpdate]:
        """A partial every partial_every_s of voiced audio; once a pause is pad_s long, the
        final it would end with (shown as a partial), decoded while the VAD waits for
        end_silence_s: a caller that passes its backlog gets the final that much sooner.
        Either decode may end the utterance early, at a stable sentence end (`_commit`)."""
        if self._start is None:
            return []
        if not self._heard_text and self._endpointer.speech_samples < self._first_partial:
            return []  # a stream's first second is often a clipped word: wait
        start = self._start
        end = self._endpointer.pending_end
        if end is not None and self._early_finals:
            if self._early is not None and self._early[0] == end:
                return []
            decoded = self._decode_final(start, end)
            self._early = end, decoded
        else:
            voiced = self._endpointer.speech_samples
            if end is not None or voiced - self._decoded_at < self._every:
                return []
            end = self._audio.end
            decoded = self._decode_partial(start, end)
            if decoded is None:  # every worker is busy: try again on the next call
                return []
        self._decoded_at = self._endpointer.speech_samples
        if _too_little(decoded, self._decoded_at):
            # Whisper read a word or two in seconds of speech: the audio most likely starts
            # inside a word, when the stream began mid-sentence. Start after that word.
            if self._utterance == 0 and start < CLIPPED_START:
                self._skip(start)
            return []
        committed = self._commit(decoded, start, end)
        if committed:
            return committed
        self._previous = decoded.words
        if not decoded.text or decoded.text == self._shown:
            return []
        self._shown = decoded.text
        self._heard_text = True
        return [self._update(decoded, start + self._overlap, end, final=False)]

    def _commit(self, decoded: Decoded, start: int, end: int) -> list[CaptionUpdate]:
        """The utterance's final up to its last sentence end that the previous decode
        agrees on, and the rest as the next utterance's first partial; [] when there is
        none. Past commit_after_s, any agreed word boundary will do (the best one)."""
        voiced = self._endpointer.speech_samples
        long = voiced >= self._commit_after
        clauses = voiced >= round(CLAUSE_AFTER_S * SAMPLE_RATE)
        paused = end == self._endpointer.pending_end
        cut = _agreed_cut(self._previous, decoded.words, paused=paused, long=long, clauses=clauses)
        if cut is None:
            return []
        done, rest = decoded.words[:cut], decoded.words[cut:]
        audio = self._audio.between(start, end)
        # Whisper's word ends are often early by 0.1-0.2 s, its starts late: the cut is
        # the quietest point between the two words, at least CUT_RANGE_S wide.
        lo = done[-1].end
        hi = rest[0].start if rest else (end - start) / SAMPLE_RATE
        middle, half = (lo + hi) / 2, max(hi - lo, CUT_RANGE_S) / 2
        boundary = start + _quietest(audio, middle - half, middle + half)
        if boundary - start - self._overlap < round(MIN_COMMIT_S * SAMPLE_RATE):
            return []
        if self._utterance == 0 and start < CLIPPED_START and len(done) < FIRST_WORDS:
            updates = []  # the end of a sentence the stream began in: not worth a final
        else:
            done_text = replace(decoded, text=_text(done), words=done)
            updates = self._finish(done_text, start + self._overlap, boundary)
        self._restart(max(boundary - round(OVERLAP_S * SAMPLE_RATE), start))
        self._committed_word = _key(done[-1].text)
        self._overlap = boundary - self._start
        shift = (self._start - start) / SAMPLE_RATE
        self._previous = tuple(replace(w, start=w.start - shift, end=w.end - shift) for w in rest)
        if rest:
            self._shown = _text(rest)
            updates.append(
                self._update(replace(decoded, text=self._shown), boundary, end, final=False)
            )
        return updates

    def _skip(self, start: int) -> None:
        """Move the utterance's start past its first word, to the quietest point between
        SKIP_FROM_S and SKIP_TO_S after it; the utterance keeps its number."""
        audio = self._audio.between(start, self._audio.end)
        if len(audio) < round(SKIP_TO_S * SAMPLE_RATE):
            return
        self._restart(start + _quietest(audio, SKIP_FROM_S, SKIP_TO_S))
        self._overlap = 0

    def _restart(self, sample: int) -> None:
        """The current utterance's audio now starts at `sample`."""
        self._start = sample
        self._endpointer.restart(sample)
        self._decoded_at = 0
        self._early = None
        self._previous = ()

    def _final(self, start: int, end: int) -> list[CaptionUpdate]:
        early, self._early = self._early, None
        decoded = early[1] if early and early[0] == end else self._decode_final(start, end)
        if _too_little(decoded, end - start):
            decoded = replace(decoded, text="")
        return self._finish(decoded, start + self._overlap, end)

    def _finish(self, decoded: Decoded, start: int, end: int) -> list[CaptionUpdate]:
        """The final of the current utterance, if it showed or has text."""
        if self._language is None and decoded.languages is not None:
            self._language = self._votes.add(decoded.languages, (end - start) / SAMPLE_RATE)
        if not decoded.text and not self._shown:
            return []
        update = self._update(decoded, start, end, final=True)
        self._utterance += 1
        self._shown = ""
        self._heard_text = self._heard_text or bool(decoded.text)
        return [update]

    def _decode_final(self, start: int, end: int) -> Decoded:
        audio = self._audio.between(start, end)
        decoded = self._engine.decode_final(audio, language=self._language, votes=self._votes)
        return self._past_overlap(decoded)

    def _decode_partial(self, start: int, end: int) -> Decoded | None:
        audio = self._audio.between(start, end)
        decoded = self._engine.decode_partial(audio, language=self._language, votes=self._votes)
        return None if decoded is None else self._past_overlap(decoded)

    def _past_overlap(self, decoded: Decoded) -> Decoded:
        """`decoded` without the words said in the overlap (see __init__), nor the end of
        the committed final's last word when the cut came before it ("day" of "Friday")."""
        if not self._overlap or not decoded.words:
            return decoded
        overlap = self._overlap / SAMPLE_RATE
        words = [w for w in decoded.words if (w.start + w.end) / 2 >= overlap]
        if words and words[0].start < overlap + CUT_RANGE_S:
            tail = _key(words[0].text)
            if tail and tail != self._committed_word and self._committed_word.endswith(tail):
                words = words[1:]
        return replace(decoded, text=_text(words) if decoded.text else "", words=tuple(words))

    def _update(self, decoded: Decoded, start: int, end: int, *, final: bool) -> CaptionUpdate:
        return CaptionUpdate(
            utterance=self._utterance,
            text=decoded.text,
            final=final,
            start=round(start / SAMPLE_RATE, 3),
            end=round(end / SAMPLE_RATE, 3),
            language=decoded.language,
        )

    def _forget(self) -> None:
        if self._start is not None:
            self._audio.forget_before(self._start)
        else:
            self._audio.forget_before(self._audio.end - round(KEEP_IDLE_S * SAMPLE_RATE))


class _Audio:
    """A stream's recent samples, addressed by their index in the stream."""

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self._origin = 0  # stream index of the first sample held
        self.end = 0  # stream index just past the last sample held

    def append(self, samples: np.ndarray) -> None:
        if len(samples):
            self._chunks.append(samples.copy())
            self.end += len(samples)

    def between(self, start: int, end: int) -> np.ndarray:
        if len(self._chunks) > 1:  # joined once, so later calls do not join it again
            joined = np.concatenate(self._chunks)
            self._chunks = deque([joined])
        held = self._chunks[0] if self._chunks else np.zeros(0, dtype=np.float32)
        return held[max(start - self._origin, 0) : max(end - self._origin, 0)]

    def forget_before(self, sample: int) -> None:
        while self._chunks and self._origin + len(self._chunks[0]) <= sample:
            self._origin += len(self._chunks.popleft())


def _among(detected: dict[str, float], allowed: tuple[str, ...]) -> dict[str, float]:
    """The detection restricted to the allowed languages, as probabilities again."""
    kept = {language: p for language, p in detected.items() if language in allowed}
    total = sum(kept.values())
    if not allowed or total <= 0:
        return detected
    return {language: p / total for language, p in kept.items()}


def _hallucination(text: str, seconds: float, no_speech_prob: float) -> bool:
    """Whether `text` is one of Whisper's inventions rather than what was said."""
    if _key(text) not in HALLUCINATIONS:
        return False
    return seconds >= HALLUCINATION_MIN_S or no_speech_prob > HALLUCINATION_NO_SPEECH


def _too_little(decoded: Decoded, voiced_samples: int) -> bool:
    """Whether the text is far too short for the speech heard (misread audio)."""
    seconds = voiced_samples / SAMPLE_RATE
    if seconds < MIN_CHECKED_S or not decoded.text:
        return False
    units = max(len(decoded.text.split()), len(decoded.text) / 4)  # no spaces in CJK
    return units < seconds / SECONDS_PER_WORD


def _key(text: str) -> str:
    """Text compared case- and punctuation-blind."""
    return " ".join(
        "".join(c for c in w if c.isalnum() or c == "'") for w in text.casefold().split()
    )


def _ends_sentence(word: Word) -> bool:
    return word.text.rstrip().endswith(tuple(SENTENCE_ENDS))


def _ends_clause(word: Word) -> bool:
    return word.text.rstrip().endswith((",", ";", ":", "，"))


def _text(words: Sequence[Word]) -> str:
    return "".join(w.text for w in words).strip()


def _agreed_cut(
    previous: Sequence[Word],
    latest: Sequence[Word],
    *,
    paused: bool,
    long: bool,
    clauses: bool = False,
) -> int | None:
    """How many of `latest`'s words to commit as a final, or None.

    The words must be the same in the previous decode (local agreement: compared without
    case and punctuation, as Whisper hesitates between "Friday." and "Friday,") and end at
    a sentence end in the latest, followed by at least one word, or by a pause the VAD
    heard (`paused`: Whisper ends any audio cut short with a full stop, but not a pause).
    `clauses`: with no such sentence end, an agreed comma followed by a word in the latest
    will do. `long`: the agreed word after a comma, or else before the widest gap, will do;
    the last agreed word stays (its end may still change).
    """
    agreed = 0
    while (
        agreed < min(len(previous), len(latest))
        and _key(previous[agreed].text) == _key(latest[agreed].text)
        and _key(latest[agreed].text)
    ):
        agreed += 1
    cut = None
    for i in range(agreed):
        if _ends_sentence(latest[i]):
            if i < len(latest) - 1 or paused:
                cut = i + 1
    if cut is None and clauses:
        commas = [i + 1 for i in range(CLAUSE_MIN_WORDS - 1, agreed) if _ends_clause(latest[i])]
        cut = commas[-1] if commas and commas[-1] < len(latest) else None
    if cut is not None or not long or agreed < 2:
        return cut
    choices = range(1, min(agreed, len(latest) - 1))
    if not choices:
        return None
    commas = [k for k in choices if _ends_clause(latest[k - 1]) or _ends_clause(previous[k - 1])]
    if commas:
        return commas[-1]
    return max(choices, key=lambda k: latest[k].start - latest[k - 1].end)


def _quietest(audio: np.ndarray, lo_s: float, hi_s: float) -> int:
    """The sample in the quietest 90 ms of `audio` between lo_s and hi_s, nearer the middle
    when it is as quiet (90 ms: the closure of a stop consonant is quiet too, but shorter)."""
    frame = SAMPLE_RATE // 100
    lo = max(0, round(lo_s * SAMPLE_RATE) // frame)
    hi = min(len(audio) // frame, round(hi_s * SAMPLE_RATE) // frame)
    if hi - lo < 1:
        return min(max(round(hi_s * SAMPLE_RATE), 0), len(audio))
    frames = audio[lo * frame : hi * frame].reshape(-1, frame).astype(np.float64)
    energy = np.convolve(np.sqrt(np.mean(frames**2, axis=1)), np.ones(9) / 9, "same")
    distance = np.abs(np.arange(len(energy)) - (len(energy) - 1) / 2) / max(len(energy), 1)
    return (lo + int(np.argmin(energy * (1 + distance)))) * frame + frame // 2


def _looped(text: str) -> bool:
    """Whether `text` repeats itself: too compressible, or a phrase said twice."""
    if not text:
        return False
    encoded = text.encode()
    if len(encoded) / len(zlib.compress(encoded)) > COMPRESSION_RATIO:
        return True
    words = ["".join(c for c in w.casefold() if c.isalnum()) for w in text.split()]
    size = LOOP_PHRASE_WORDS
    phrases = [tuple(words[i : i + size]) for i in range(len(words) - size + 1)]
    return len(phrases) != len(set(phrases))
