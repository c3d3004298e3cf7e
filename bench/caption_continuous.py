"""Live captions on discrete and continuous speech: how soon the right words show, and how
soon after each sentence ends its final comes.

One speaker, played in real time to the engine as the server would (every 20 ms whatever
audio is due; a call held up by a decode passes the backlog in one call, see
`caption_latency.play`). The speech is two espeak-ng sentences, looped:

- discrete: 1.5 s of silence after each sentence (the VAD ends every utterance);
- continuous: 0.2 s pauses, shorter than the VAD's end of utterance (0.5 s);
- no pause: the sentences back to back.

A continuous run starts at a different point of the loop each time (`run * 0.9 s`): the
speaker is already talking, mid-sentence, when the stream starts, as when someone joins a
meeting while the microphone plays.

- first right words: from the first speech sample to the first update (partial or final)
  holding three words in a row of the script, in its order;
- final delay: for each sentence said whole, from its last speech sample (above 1 % of full
  scale) to the first final that ends at it and holds its last two words;
- WER: the finals, joined, against the words of the whole sentences said.

Timings are wall-clock: on a shared machine, other work makes them noisy (say so when
quoting them). No server, no namespace, no root:
    PYTHONPATH=. .venv/bin/python bench/caption_continuous.py [--runs 3] [--loops 3] [--language en]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import jiwer
import numpy as np
import psutil
from caption_latency import Speaker, play

from visio.speech.audio import SAMPLE_RATE, load_audio
from visio.speech.model import resolve_model_dir
from visio.speech.streaming import CaptionUpdate, WhisperStreamingEngine
from visio.testing.speech import speak

SCRIPT = ["Please send me the report before Friday.", "Let us meet again next Tuesday morning."]
PAUSES = {"discrete": 1.5, "continuous": 0.2, "no pause": 0.0}
RUN_SHIFT_S = 0.9  # a continuous run starts this much later in the loop than the previous one
LOUD = 0.01


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.casefold()).split()


def trimmed(audio: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > LOUD)
    return audio[loud[0] : loud[-1] + 1]


@dataclass
class Said:
    text: str
    start: float  # stream time, s
    end: float


def script_audio(
    sentences: list[np.ndarray], pause_s: float, loops: int, skip_s: float
) -> tuple[np.ndarray, list[Said]]:
    """The looped script from `skip_s` on, and the sentences said whole in it."""
    pause = np.zeros(round(pause_s * SAMPLE_RATE), dtype=np.float32)
    parts, said, at = [], [], 0
    for _ in range(loops):
        for text, audio in zip(SCRIPT, sentences, strict=True):
            said.append(
                Said(text, at / SAMPLE_RATE - skip_s, (at + len(audio)) / SAMPLE_RATE - skip_s)
            )
            parts += [audio, pause]
            at += len(audio) + len(pause)
    parts.append(np.zeros(SAMPLE_RATE, dtype=np.float32))  # the last final comes
    audio = np.concatenate(parts)[round(skip_s * SAMPLE_RATE) :]
    return audio, [s for s in said if s.start >= 0]


def first_right_words(arrivals: list[tuple[float, CaptionUpdate]], speech_start: float) -> float:
    script = words(" ".join(SCRIPT)) * 2  # a loop: the last words run into the first
    trigrams = {tuple(script[i : i + 3]) for i in range(len(script) - 2)}
    for at, update in arrivals:
        said = words(update.text)
        if any(tuple(said[i : i + 3]) in trigrams for i in range(len(said) - 2)):
            return at - speech_start
    return float("nan")


def final_delays(arrivals: list[tuple[float, CaptionUpdate]], said: list[Said]) -> list[float]:
    """Per sentence said whole: its final's delay after its end (nan: no such final)."""
    finals = [(at, u) for at, u in arrivals if u.final]
    delays = []
    for sentence in said:
        last_two = " ".join(words(sentence.text)[-2:])
        found = next(
            (
                at
                for at, u in finals
                if u.end >= sentence.end - 0.6
                and u.start <= sentence.end - 0.3
                and last_two in " ".join(words(u.text))
            ),
            None,
        )
        delays.append(float("nan") if found is None else found - sentence.end)
    return delays


def run_once(
    engine: WhisperStreamingEngine, audio: np.ndarray, language: str | None
) -> list[tuple[float, CaptionUpdate]]:
    speaker = Speaker([], [], audio)
    play(engine, speaker, threading.Barrier(1), language)
    return speaker.arrivals


def main(args: argparse.Namespace) -> int:
    language = args.language or None
    with tempfile.TemporaryDirectory(prefix="visio-bench-") as scratch:
        folder = Path(scratch)
        model_dir = resolve_model_dir(None, folder / "cache")
        sentences = [
            trimmed(load_audio(speak(text, folder / f"{i}.wav"))) for i, text in enumerate(SCRIPT)
        ]
        engine = WhisperStreamingEngine(
            model_dir, threads=args.threads, workers=args.workers, partial_every_s=0.5
        )
        engine.decode_final(sentences[0], language="en")  # warm-up
        print(f"\nLive captions on continuous speech — {h.machine()}")
        rows, all_firsts, all_delays = [], {}, {}
        for scenario, pause_s in PAUSES.items():
            for run in range(args.runs):
                skip_s = 0.0 if scenario == "discrete" else run * RUN_SHIFT_S
                audio, said = script_audio(sentences, pause_s, args.loops, skip_s)
                arrivals = run_once(engine, audio, language)
                speech_start = int(np.flatnonzero(np.abs(audio) > LOUD)[0]) / SAMPLE_RATE
                first = first_right_words(arrivals, speech_start)
                delays = final_delays(arrivals, said)
                got = [d for d in delays if d == d]
                heard = " ".join(u.text for _, u in arrivals if u.final)
                reference = " ".join(s.text for s in said)
                error = jiwer.wer(" ".join(words(reference)), " ".join(words(heard)) or "-")
                rows.append(
                    [
                        scenario,
                        run,
                        f"{skip_s:.1f} s",
                        first,
                        f"{len(got)}/{len(delays)}",
                        statistics.median(got) if got else float("nan"),
                        max(got, default=float("nan")),
                        100 * error,
                        psutil.getloadavg()[0],
                    ]
                )
                all_firsts.setdefault(scenario, []).append(first)
                all_delays.setdefault(scenario, []).extend(got)
                print(f"  {scenario} run {run} done", flush=True)
    headers = ["speech", "run", "starts at", "first right words s", "finals"]
    headers += ["final delay med s", "final delay max s", "WER %", "load"]
    print(h.table(headers, rows, "One speaker, real time"))
    for scenario in PAUSES:
        firsts, delays = all_firsts[scenario], all_delays[scenario]
        print(
            f"{scenario}: first right words median {statistics.median(firsts):.2f} s, "
            f"max {max(firsts):.2f} s; final delay median "
            f"{statistics.median(delays) if delays else float('nan'):.2f} s, "
            f"max {max(delays, default=float('nan')):.2f} s"
        )
    print(
        f"options: {args.threads} thread(s) per decode, {args.workers} worker(s), "
        f"language {language or 'detected'}, {args.loops} loops of the script per run"
    )
    return 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="per kind of speech (3)")
    parser.add_argument("--loops", type=int, default=3, help="of the two sentences per run (3)")
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2 threads (2)")
    parser.add_argument("--workers", type=int, default=1, help="decodes at once (1)")
    parser.add_argument("--language", default="", help="the room's language; '' detects it")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main(parse()))
