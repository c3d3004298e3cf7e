"""Live captions: decode cost per window size, and latency of K speakers in real time.

Part 1, decode cost (no pacing): the median wall time of one decode of 2, 3 and 5 s of
espeak-ng English, done by faster-whisper's `transcribe` (greedy, no fallback: its encoder
window is always 30 s, even with `chunk_length`), by the engine's own decode with a 30 s
window (the audio padded with silence, as Whisper was trained), and by the engine as it
runs (a window sized to the audio plus 1 s of silence); and the CPU cost of Silero VAD.

Part 2, real time: K speakers at once, one thread each, as the server will call the
engine. Each thread plays its own script (espeak-ng sentences, pauses of 1.5 to 2.5 s,
shifted at random so that the speakers overlap) at real speed: every 20 ms it passes
whatever audio is due to `accept()`, so a thread that was held up by a decode passes the
backlog in one call, as the server would after reading its queue. Times are taken on one
clock: sample s of a script is due at its start + s / 16000.

- final latency: wall time the final of a sentence arrives, minus the time its last
  speech sample (above 1 % of full scale) was due. It includes end_silence_s.
- word latency: end of a word → first update (partial or final) whose text covers it.
  A word's end is approximated by synthesising the sentence's first words alone with
  espeak-ng and taking where that speech ends (espeak is deterministic and reads left to
  right; the lengthening of a last word makes ends ~0.1 s late, so these latencies are a
  little low). An update covers the first k words of the sentence when at least 75 % of
  them are matched in order (difflib) and the k-th is.
- CPU per stream: CPU time of this process / wall time / K, in % of one core.

No server, no namespace, no root needed:
    .venv/bin/python bench/caption_latency.py [--streams 1,2,3,4] [--threads 1] [--workers 2]
"""

from __future__ import annotations

import argparse
import difflib
import math
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import numpy as np
import psutil
from faster_whisper import WhisperModel

from visio.speech import streaming
from visio.speech.audio import SAMPLE_RATE, load_audio
from visio.speech.model import resolve_model_dir
from visio.speech.streaming import CaptionUpdate, WhisperStreamingEngine
from visio.speech.vad import Endpointer
from visio.testing.speech import speak

SENTENCES = [
    "Please send me the report before Friday.",
    "Let us meet again next Tuesday morning.",
    "Thank you all, see you next week.",
    "Can everybody see my screen now?",
    "We need more people on the support team.",
    "The budget for the training program has been approved.",
    "Please send your slides to the project manager before the end of the day.",
    "Our users like the new interface, but they want a dark theme.",
]
CHUNK = 320  # 20 ms
TARGET_P90_S = 1.5
COVERED_SHARE = 0.75


def normalise(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.casefold()).split()


def speech_end(samples: np.ndarray) -> float:
    return (int(np.flatnonzero(np.abs(samples) > 0.01)[-1]) + 1) / SAMPLE_RATE


@dataclass
class Sentence:
    text: str
    audio: np.ndarray
    word_ends: list[float]  # s from the start of `audio`


def synthesise(folder: Path) -> list[Sentence]:
    out = []
    for i, text in enumerate(SENTENCES):
        words = text.split()
        ends = []
        for k in range(1, len(words) + 1):
            prefix = load_audio(speak(" ".join(words[:k]), folder / f"{i}-{k}.wav"))
            ends.append(speech_end(prefix))
        audio = load_audio(speak(text, folder / f"{i}.wav"))
        out.append(Sentence(text, audio, ends))
    return out


# -- part 1: decode cost --------------------------------------------------------------


def median_ms(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def transcribe(model: WhisperModel, audio: np.ndarray, chunk_length: int | None) -> None:
    """faster-whisper's own way: greedy, no timestamps, no fallback, as for a partial."""
    segments, _ = model.transcribe(
        audio,
        language="en",
        beam_size=1,
        temperature=0.0,
        without_timestamps=True,
        condition_on_previous_text=False,
        chunk_length=chunk_length,
    )
    list(segments)


def padded_to_30_s(engine: WhisperStreamingEngine, audio: np.ndarray) -> None:
    """The engine's partial decode with Whisper's 30 s window: audio + silence, cut at 30 s."""
    with mock.patch.object(streaming, "TAIL_PAD_S", 30.0):
        engine.decode_partial(audio, language="en")


def decode_costs(
    model_dir: Path, engine: WhisperStreamingEngine, audio: np.ndarray, args: argparse.Namespace
) -> list[list[object]]:
    model = WhisperModel(
        str(model_dir), device="cpu", compute_type="int8", cpu_threads=args.threads
    )
    rows: list[list[object]] = []
    for seconds in (2, 3, 5):
        piece = audio[: seconds * SAMPLE_RATE]
        cases: list[tuple[str, Callable[[], object]]] = [
            ("faster-whisper transcribe, 30 s window", partial(transcribe, model, piece, None)),
            (
                f"transcribe(chunk_length={seconds + 1})",
                partial(transcribe, model, piece, seconds + 1),
            ),
        ]
        cases += [
            ("engine's partial, 30 s window", partial(padded_to_30_s, engine, piece)),
            (
                "engine's partial, sized window",
                partial(engine.decode_partial, piece, language="en"),
            ),
            (
                f"engine's final, sized window, beam {engine.final_beam_size}",
                partial(engine.decode_final, piece, language="en"),
            ),
        ]
        for i, (name, action) in enumerate(cases):
            rows.append([f"{seconds} s" if i == 0 else "", name, median_ms(action, args.repeats)])
    return rows


def vad_cost(audio: np.ndarray) -> float:
    """CPU time of Silero VAD, in % of one core for one stream in real time."""
    endpointer = Endpointer()
    began = time.process_time()
    for start in range(0, len(audio), CHUNK):
        endpointer.feed(audio[start : start + CHUNK])
    return 100 * (time.process_time() - began) / (len(audio) / SAMPLE_RATE)


# -- part 2: real time ----------------------------------------------------------------


@dataclass
class Speaker:
    sentences: list[Sentence]
    offsets: list[int]  # where each sentence starts in the script, samples
    audio: np.ndarray
    arrivals: list[tuple[float, CaptionUpdate]] = field(default_factory=list)  # (s, update)


def script(sentences: list[Sentence], count: int, rng: random.Random) -> Speaker:
    chosen = [rng.choice(sentences) for _ in range(count)]
    parts = [np.zeros(round(rng.uniform(0.2, 2.0) * SAMPLE_RATE), dtype=np.float32)]
    offsets = []
    for sentence in chosen:
        offsets.append(sum(len(p) for p in parts))
        pause = np.zeros(round(rng.uniform(1.5, 2.5) * SAMPLE_RATE), dtype=np.float32)
        parts += [sentence.audio, pause]
    return Speaker(chosen, offsets, np.concatenate(parts))


def play(
    engine: WhisperStreamingEngine,
    speaker: Speaker,
    barrier: threading.Barrier,
    language: str | None = "en",
) -> None:
    stream = engine.open_stream(language)
    barrier.wait()
    began = time.perf_counter()
    fed = 0
    while fed < len(speaker.audio):
        elapsed = int((time.perf_counter() - began) * SAMPLE_RATE)
        due = min(len(speaker.audio), elapsed // CHUNK * CHUNK)
        if due <= fed:
            time.sleep(max(0.0, (fed + CHUNK) / SAMPLE_RATE - (time.perf_counter() - began)))
            continue
        updates = stream.accept(speaker.audio[fed:due])
        now = time.perf_counter() - began
        speaker.arrivals += [(now, u) for u in updates]
        fed = due
    now = time.perf_counter() - began
    speaker.arrivals += [(now, u) for u in stream.close()]


def covered(reference: list[str], text: str) -> int:
    """How many first words of `reference` `text` covers (see the module docstring)."""
    said = normalise(text)
    matched = [False] * len(reference)
    for block in difflib.SequenceMatcher(None, reference, said).get_matching_blocks():
        for i in range(block.a, block.a + block.size):
            matched[i] = True
    best = 0
    for k in range(1, len(reference) + 1):
        if matched[k - 1] and sum(matched[:k]) >= COVERED_SHARE * k:
            best = k
    return best


@dataclass
class Latencies:
    finals: list[float] = field(default_factory=list)
    words: list[float] = field(default_factory=list)
    words_in_partials: int = 0
    missing_finals: int = 0


def latencies(speaker: Speaker) -> Latencies:
    out = Latencies()
    by_utterance: dict[int, list[tuple[float, CaptionUpdate]]] = {}
    for arrival in speaker.arrivals:
        by_utterance.setdefault(arrival[1].utterance, []).append(arrival)
    for index, (sentence, offset) in enumerate(
        zip(speaker.sentences, speaker.offsets, strict=True)
    ):
        updates = by_utterance.get(index, [])
        finals = [at for at, u in updates if u.final]
        if len(finals) != 1:
            out.missing_finals += 1
            continue
        start = offset / SAMPLE_RATE
        out.finals.append(finals[0] - start - speech_end(sentence.audio))
        reference = normalise(sentence.text)
        for k, end in enumerate(sentence.word_ends, start=1):
            first = next(((at, u) for at, u in updates if covered(reference, u.text) >= k), None)
            if first is not None:
                out.words.append(first[0] - start - end)
                out.words_in_partials += not first[1].final
    return out


def run_streams(
    engine: WhisperStreamingEngine, sentences: list[Sentence], k: int, args: argparse.Namespace
) -> list[object]:
    rng = random.Random(args.seed + k)
    speakers = [script(sentences, args.sentences, rng) for _ in range(k)]
    barrier = threading.Barrier(k + 1)
    threads = [threading.Thread(target=play, args=(engine, s, barrier)) for s in speakers]
    for thread in threads:
        thread.start()
    process = psutil.Process()
    barrier.wait()
    cpu, began = h.cpu_seconds(process), time.perf_counter()
    for thread in threads:
        thread.join()
    cpu, wall = h.cpu_seconds(process) - cpu, time.perf_counter() - began
    total = Latencies()
    for speaker in speakers:
        found = latencies(speaker)
        total.finals += found.finals
        total.words += found.words
        total.words_in_partials += found.words_in_partials
        total.missing_finals += found.missing_finals
    return [
        k,
        len(total.finals),
        statistics.median(total.finals) if total.finals else math.nan,
        h.percentile(total.finals, 0.9) if total.finals else math.nan,
        max(total.finals, default=math.nan),
        statistics.median(total.words) if total.words else math.nan,
        h.percentile(total.words, 0.9) if total.words else math.nan,
        f"{total.words_in_partials}/{len(total.words)}",
        total.missing_finals,
        100 * cpu / wall / k,
        psutil.getloadavg()[0],
    ]


def main(args: argparse.Namespace) -> int:
    streams = sorted(int(k) for k in args.streams.split(","))
    with tempfile.TemporaryDirectory(prefix="visio-bench-") as scratch:
        folder = Path(scratch)
        model_dir = resolve_model_dir(None, folder / "cache")
        sentences = synthesise(folder)
        engine = WhisperStreamingEngine(
            model_dir,
            threads=args.threads,
            workers=args.workers,
            partial_every_s=args.partial_every,
            final_beam_size=args.beam,
        )
        long = np.concatenate([s.audio for s in sentences])
        engine.decode_final(long[: 3 * SAMPLE_RATE], language="en")
        print(f"\nLive captions — {h.machine()}")
        if args.repeats:
            rows = decode_costs(model_dir, engine, long, args)
            print(h.table(["audio", "decode", "median ms"], rows, "Decode cost, one decode"))
            print(f"Silero VAD: {vad_cost(long):.2f} % of a core per stream\n")
        rows = []
        for k in streams:
            rows.append(run_streams(engine, sentences, k, args))
            print(f"  K={k} done (load average {psutil.getloadavg()[0]:.1f})", flush=True)
    headers = ["K", "finals", "final med s", "final p90", "final max", "word med s", "word p90"]
    headers += ["words 1st in partial", "missed", "CPU %/stream", "load"]
    print(h.table(headers, rows, "Real-time streams"))
    largest = 0
    for row in rows:  # ascending K: the first one over the target ends the run
        if not row[3] <= TARGET_P90_S:
            break
        largest = row[0]
    print(f"largest K with p90 final latency <= {TARGET_P90_S} s: {largest}")
    print(
        f"options: {args.threads} thread(s) per decode, {args.workers} workers, partial every "
        f"{args.partial_every} s, final beam {args.beam}, {args.sentences} sentences per speaker"
    )
    return 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", default="1,2,3,4", help="K values to run (1,2,3,4)")
    parser.add_argument("--sentences", type=int, default=8, help="per speaker (8)")
    parser.add_argument("--threads", type=int, default=1, help="CTranslate2 threads/decode (1)")
    parser.add_argument("--workers", type=int, default=2, help="decodes at once (2)")
    parser.add_argument("--partial-every", type=float, default=0.5, help="s of speech (0.5)")
    parser.add_argument("--beam", type=int, default=1, help="beam size of finals (1)")
    parser.add_argument("--repeats", type=int, default=5, help="decode-cost repeats, 0: skip")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main(parse()))
