"""The whole transcription pipeline on a synthetic meeting: speed, memory, accuracy.

N speakers (distinct espeak-ng voices) take turns for M minutes; each has their own track
(speech when they talk, silence otherwise), as Janus records a meeting. The tracks go
through the same pipeline as a meeting's job (faster-whisper, per-track speaker check,
merge), in this process. Prints the real-time factor (processing time / meeting length),
peak memory, word error rate, and how many sentences went to the right speaker.

    .venv/bin/python bench/meeting_transcription.py --minutes 10 --speakers 4
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

import jiwer
import numpy as np
from _harness import machine, table

from visio.speech.audio import SAMPLE_RATE, load_audio
from visio.speech.model import resolve_model_dir
from visio.speech.recognizer import Recognizer
from visio.speech.speakers import load_diarizer
from visio.testing.speech import speak
from visio.transcripts import pipeline
from visio.transcripts.tracks import AudioSource

VOICES = [("en-us", 40), ("en-gb+f3", 75), ("en-us+m3", 25), ("en-gb-x-rp+f2", 60)]
SENTENCES = [
    "Let us start with the budget for the coming year.",
    "The new office opens in the spring if the works end on time.",
    "I have sent the report to every team leader this morning.",
    "We need two more people to answer the phone in the afternoon.",
    "The training sessions will take place every Tuesday in March.",
    "Could you check the figures before we publish them on Friday?",
    "Our partners asked for a meeting next week about the contract.",
    "The server room needs a new air conditioning unit this summer.",
    "Please book the large room for the general assembly in June.",
    "The survey shows that most agents prefer to work from home twice a week.",
    "We will review the security rules with the whole department.",
    "The translation of the guide into English is almost finished.",
    "Nobody objected to the new schedule for the help desk.",
    "I suggest we postpone the decision until we have the final numbers.",
    "The mayor wants a short summary of the project before the council.",
    "Let us meet again in two weeks to see how far we got.",
]


def build_meeting(folder: Path, minutes: float, speakers: int, seed: int = 1):
    """Per-speaker tracks and the reference [(speaker, start, text)]."""
    rng = random.Random(seed)
    length = int(minutes * 60 * SAMPLE_RATE)
    tracks = [np.zeros(length, dtype=np.float32) for _ in range(speakers)]
    cache: dict[tuple[int, str], np.ndarray] = {}
    reference = []
    cursor = SAMPLE_RATE
    previous = -1
    while True:
        who = rng.choice([s for s in range(speakers) if s != previous])
        text = rng.choice(SENTENCES)
        if (who, text) not in cache:
            voice, pitch = VOICES[who % len(VOICES)]
            wav = speak(
                text, folder / f"s{who}-{SENTENCES.index(text)}.wav", voice=voice, pitch=pitch
            )
            cache[who, text] = load_audio(wav)
        speech = cache[who, text]
        if cursor + len(speech) >= length:
            break
        tracks[who][cursor : cursor + len(speech)] = speech
        reference.append((f"Speaker {who + 1}", cursor / SAMPLE_RATE, text))
        cursor += len(speech) + int(rng.uniform(0.4, 1.5) * SAMPLE_RATE)
        previous = who
    paths = []
    for index, samples in enumerate(tracks):
        path = folder / f"speaker-{index + 1}.wav"
        _write_wav(path, samples)
        paths.append(path)
    return paths, reference


def _write_wav(path: Path, samples: np.ndarray) -> None:
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())


def attribution(reference, segments) -> float:
    """Share of reference sentences whose midpoint falls in a segment of the right speaker."""
    right = 0
    for speaker, start, _ in reference:
        middle = start + 1.0
        owners = {s.speaker for s in segments if s.start - 0.5 <= middle <= s.end + 0.5}
        right += owners == {speaker}
    return right / len(reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--speakers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="visio-bench-") as scratch:
        folder = Path(scratch)
        print(f"building a {args.minutes:g}-minute meeting of {args.speakers} speakers…")
        paths, reference = build_meeting(folder, args.minutes, args.speakers)
        sources = [AudioSource(p, f"Speaker {i + 1}", p.name, 0.0) for i, p in enumerate(paths)]
        model = resolve_model_dir(None, folder / "models")
        started = time.monotonic()
        recognizer = Recognizer(model, threads=args.threads)
        loaded = time.monotonic()
        transcript = pipeline.transcribe(
            sources, recognizer, load_diarizer(""), pipeline.Options(language="auto")
        )
        done = time.monotonic()
    meeting_s = args.minutes * 60
    truth = jiwer.RemovePunctuation()(" ".join(t for _, _, t in reference).lower())
    heard = jiwer.RemovePunctuation()(" ".join(s.text for s in transcript.segments).lower())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        ("meeting", f"{meeting_s:.0f} s, {args.speakers} speakers, {len(reference)} sentences"),
        ("model load", f"{loaded - started:.1f} s"),
        ("processing", f"{done - loaded:.1f} s"),
        ("real-time factor", f"{(done - started) / meeting_s:.3f} ({args.threads} threads)"),
        ("peak memory", f"{peak_mb:.0f} MB"),
        ("language", transcript.language),
        ("word error rate", f"{jiwer.wer(truth, heard):.1%}"),
        ("sentences to the right speaker", f"{attribution(reference, transcript.segments):.1%}"),
        ("speakers found", ", ".join(transcript.speakers)),
    ]
    print(table(["figure", "value"], rows, title=f"Meeting transcription on {machine()}"))


if __name__ == "__main__":
    main()
