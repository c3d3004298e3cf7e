"""Speaker diarization quality, speed and memory: EmbeddingDiarizer on a mixed-voice track.

The track is N minutes of espeak-ng English sentences by several voices (default three
clearly different ones: en-us, its variant Alicia, and de+f2), as a shared room
microphone would carry them: each sentence is by another voice than the previous one 80 %
of the time, at 130 to 180 words/min. It runs twice: with pauses of 0.3 to 1.5 s between
sentences, and with back-to-back turns (0 to 0.15 s), the hard case for window
embeddings. The reference turns are the sentences' own extents. It measures:

- diarization error rate (missed + false alarm + confusion over reference speech, best
  speaker mapping) with the usual 0.25 s collar and without it, and the speakers found;
- speaker encoder load time (resemblyzer's weights, read without torch);
- wall time of `diarize` and its real-time factor, with the VAD's share;
- peak RSS of this process.

No server, no namespace, no root needed:
    .venv/bin/python bench/diarization.py [--minutes 3] [--voices en-us,en+Alicia,de+f2]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import numpy as np
import psutil

from visio.speech.audio import SAMPLE_RATE, load_audio
from visio.speech.speakers import EmbeddingDiarizer, Turn, diarization_error_rate, speech_regions
from visio.speech.voice_encoder import VoiceEncoder
from visio.testing.speech import speak

SENTENCES = [
    "Good morning everyone, thank you for joining the call.",
    "Let us start with a quick review of last week's action items.",
    "The new release is almost ready, we are fixing the last few bugs.",
    "Can you share your screen so that everybody can see the chart?",
    "I think we should move the deadline to the end of the month.",
    "The customer asked for a simpler way to invite external guests.",
    "Yes, I agree.",
    "We need more people on the support team during the holidays.",
    "Please send me the figures before Friday so I can prepare the report.",
    "Okay, thanks.",
    "Does anyone have a question before we move on to the next topic?",
    "I will write a short summary and share it with the whole team.",
    "The servers in the second data center will be updated tonight.",
    "Our users like the new interface, but they want a dark theme.",
    "Thank you all, see you next week at the same time.",
]
SCENARIOS = {"pauses 0.3-1.5 s": (0.3, 1.5), "back-to-back 0-0.15 s": (0.0, 0.15)}


def make_track(
    minutes: float, voices: list[str], pauses: tuple[float, float], folder: Path, seed: int
) -> tuple[np.ndarray, list[Turn]]:
    """The samples and the reference turns (one per sentence)."""
    rng = random.Random(seed)
    parts: list[np.ndarray] = []
    reference: list[Turn] = []
    speaker, t = 0, 0.0
    while t < minutes * 60:
        if reference and rng.random() < 0.8:
            speaker = rng.choice([s for s in range(len(voices)) if s != speaker])
        path = folder / f"{len(reference)}.wav"
        speak(rng.choice(SENTENCES), path, voice=voices[speaker], speed=rng.randint(130, 180))
        speech = trim(load_audio(path))
        pause = np.zeros(round(rng.uniform(*pauses) * SAMPLE_RATE), dtype=np.float32)
        parts += [pause, speech]
        t += len(pause) / SAMPLE_RATE
        reference.append(Turn(t, t + len(speech) / SAMPLE_RATE, speaker))
        t += len(speech) / SAMPLE_RATE
    return np.concatenate(parts), reference


def trim(audio: np.ndarray) -> np.ndarray:
    """Without espeak's leading and trailing silence."""
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0] : loud[-1] + 1]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run(
    diarizer: EmbeddingDiarizer, audio: np.ndarray, reference: list[Turn], max_speakers: int
) -> list[str]:
    duration = len(audio) / SAMPLE_RATE
    speech = sum(t.end - t.start for t in reference)
    started = time.monotonic()
    speech_regions(audio)
    vad = time.monotonic() - started
    cpu_before = sum(psutil.Process().cpu_times()[:2])
    started = time.monotonic()
    turns = diarizer.diarize(audio, max_speakers=max_speakers)
    wall = time.monotonic() - started
    cpu = sum(psutil.Process().cpu_times()[:2]) - cpu_before
    found = len({t.speaker for t in turns})
    return [
        f"{duration:.0f} s ({speech:.0f} s speech)",
        f"{len({t.speaker for t in reference})} / {found}",
        f"{len(reference)} / {len(turns)}",
        f"{diarization_error_rate(reference, turns):.3f}",
        f"{diarization_error_rate(reference, turns, collar=0.0):.3f}",
        f"{wall:.2f} s (VAD {vad:.2f} s), CPU {cpu:.2f} s",
        f"{wall / duration:.4f}",
    ]


def main(args: argparse.Namespace) -> int:
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]
    process = psutil.Process()
    rss_before = process.memory_info().rss / 2**20
    started = time.monotonic()
    encoder = VoiceEncoder.load()
    load = time.monotonic() - started
    rss_loaded = process.memory_info().rss / 2**20
    diarizer = EmbeddingDiarizer(encoder=encoder)
    diarizer.diarize(np.zeros(SAMPLE_RATE, dtype=np.float32))  # loads Silero VAD

    rows = []
    with tempfile.TemporaryDirectory(prefix="visio-bench-") as scratch:
        for name, pauses in SCENARIOS.items():
            folder = Path(scratch) / str(len(rows))
            folder.mkdir()
            audio, reference = make_track(args.minutes, voices, pauses, folder, args.seed)
            rows.append([name, *run(diarizer, audio, reference, args.max_speakers)])

    print()
    print(f"Diarization — {args.minutes:g} min, voices {', '.join(voices)} — {h.machine()}")
    headers = ["track", "audio", "speakers ref / found", "turns ref / found", "DER", "DER 0 collar"]
    print(h.table([*headers, "diarize wall time", "real-time factor"], rows))
    print(
        f"encoder load {load:.2f} s; RSS before {rss_before:.0f} MiB, encoder loaded "
        f"{rss_loaded:.0f} MiB, peak {peak_rss_mib():.0f} MiB"
    )
    print(
        f"options: threshold {diarizer.threshold}, min_contrast {diarizer.min_contrast}, "
        f"windows {diarizer.window_s} s every {diarizer.hop_s} s, max_speakers {args.max_speakers}"
    )
    return 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="track length, min (3)")
    parser.add_argument(
        "--voices", default="en-us,en+Alicia,de+f2", help="espeak-ng voices, comma-separated"
    )
    parser.add_argument("--max-speakers", type=int, default=8, help="diarize() cap (8)")
    parser.add_argument("--seed", type=int, default=1, help="sentence, voice and pause draw (1)")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main(parse()))
