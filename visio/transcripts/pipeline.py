"""From audio sources to a written transcript: recognise, attribute, merge, write.

The same pipeline serves meeting captures (one source per participant track, placed on
the meeting timeline) and `visio transcribe FILE…` (one source per file).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from visio.speech.audio import SAMPLE_RATE, AudioError, load_audio
from visio.speech.recognizer import Recognized, Recognizer
from visio.speech.speakers import Diarizer, Turn
from visio.transcripts.formats import write_all
from visio.transcripts.merge import TrackText, merge
from visio.transcripts.tracks import AudioSource
from visio.transcripts.transcript import Segment, Transcript, words_text

log = logging.getLogger(__name__)
Progress = Callable[[float], None]
MIN_SPEECH_FOR_SPEAKERS_S = 4.0  # shorter tracks are not worth looking for several voices
MAX_SPEAKERS_PER_TRACK = 6
LANGUAGE_PROBE_S = 30


class PipelineError(Exception):
    """The job cannot produce a transcript; the message says why, for the people waiting."""


@dataclass
class Options:
    language: str = "auto"  # auto | en | fr | any Whisper language code
    title: str = ""
    started_at: str = ""  # ISO time of the timeline's zero
    problems: list[str] = field(default_factory=list)  # tracks already found unusable


def transcribe(
    sources: list[AudioSource],
    recognizer: Recognizer,
    diarizer: Diarizer | None,
    options: Options,
    progress: Progress = lambda _: None,
) -> Transcript:
    """Recognise every source, attribute each sentence, and merge them on one timeline.

    One track's audio is in memory at a time (a day-long capture of ten people would not
    fit at once); the longest goes first, so that it is the one the language is heard on.
    """
    weights = [_weight(source) for source in sources]
    total = sum(weights) or 1
    done = 0
    language: str | None = None
    texts: dict[int, TrackText] = {}
    duration = 0.0
    for index in sorted(range(len(sources)), key=lambda i: weights[i], reverse=True):
        source, share = sources[index], weights[index] / total
        audio = _load(source, options.problems)
        if audio is not None:
            if language is None:
                language = _meeting_language(audio, recognizer, options.language)

            def track_progress(fraction: float, done: int = done, share: float = share) -> None:
                progress(min(1.0, done / total + fraction * share))

            texts[index] = _track_text(
                source, audio, recognizer, diarizer, language, track_progress
            )
            duration = max(duration, source.offset + len(audio) / SAMPLE_RATE)
            del audio
        done += weights[index]
        progress(done / total)
    if language is None:
        reasons = "; ".join(options.problems) or "no audio was captured"
        raise PipelineError(f"nothing to transcribe: {reasons}")
    return Transcript(
        title=options.title,
        language=language,
        duration=round(duration, 3),
        segments=merge(texts[i] for i in sorted(texts)),  # in capture order
        started_at=options.started_at,
    )


def _weight(source: AudioSource) -> int:
    """A track's share of the work, from its size on disk (decoding it would load it)."""
    try:
        return max(1, source.path.stat().st_size)
    except OSError:
        return 1


def _load(source: AudioSource, problems: list[str]) -> np.ndarray | None:
    try:
        return load_audio(source.path)
    except AudioError as exc:
        problems.append(f"{source.source}: {exc.reason}")
        return None


def _meeting_language(audio: np.ndarray, recognizer: Recognizer, wanted: str) -> str:
    """The room's language, or the one Whisper hears on the longest track."""
    if wanted and wanted != "auto":
        return wanted
    if not len(audio):
        return "en"
    language, _ = recognizer.detect_language(_speech_sample(audio))
    return language or "en"


def _speech_sample(audio: np.ndarray) -> np.ndarray:
    """Up to LANGUAGE_PROBE_S of the loudest stretch: tracks are mostly silence."""
    window = LANGUAGE_PROBE_S * SAMPLE_RATE
    if len(audio) <= window:
        return audio
    hop = SAMPLE_RATE
    energy = np.convolve(audio[::hop] ** 2, np.ones(LANGUAGE_PROBE_S), mode="valid")
    start = int(np.argmax(energy)) * hop
    return audio[start : start + window]


def _track_text(
    source: AudioSource,
    audio: np.ndarray,
    recognizer: Recognizer,
    diarizer: Diarizer | None,
    language: str,
    progress: Progress,
) -> TrackText:
    recognition = recognizer.transcribe(audio, language, progress=progress)
    segments = [_segment(r, source) for r in recognition.segments]
    speech_s = sum(s.end - s.start for s in segments)
    if diarizer is not None and speech_s >= MIN_SPEECH_FOR_SPEAKERS_S:
        turns = diarizer.diarize(audio, max_speakers=MAX_SPEAKERS_PER_TRACK)
        if len({turn.speaker for turn in turns}) > 1:
            segments = attribute(segments, turns, source.speaker)
    return TrackText(source.speaker, source.source, source.offset, segments)


def _segment(recognized: Recognized, source: AudioSource) -> Segment:
    return Segment(
        speaker=source.speaker,
        start=recognized.start,
        end=recognized.end,
        text=recognized.text.strip(),
        words=tuple(recognized.words),
        source=source.source,
    )


def attribute(segments: list[Segment], turns: list[Turn], name: str) -> list[Segment]:
    """Split segments where the voice changes; label voices "Name (speaker N)"."""
    attributed: list[Segment] = []
    for segment in segments:
        if not segment.words:
            speaker = _speaker_at(turns, (segment.start + segment.end) / 2)
            attributed.append(replace(segment, speaker=_label(name, speaker)))
            continue
        run: list = []
        run_speaker = None
        for word in segment.words:
            speaker = _speaker_at(turns, (word.start + word.end) / 2)
            if run and speaker != run_speaker:
                attributed.append(_run_segment(segment, run, _label(name, run_speaker)))
                run = []
            run.append(word)
            run_speaker = speaker
        attributed.append(_run_segment(segment, run, _label(name, run_speaker)))
    return attributed


def _run_segment(segment: Segment, words: list, speaker: str) -> Segment:
    text = words_text(words)
    return replace(
        segment,
        speaker=speaker,
        start=words[0].start,
        end=words[-1].end,
        text=text,
        words=tuple(words),
    )


def _speaker_at(turns: list[Turn], moment: float) -> int | None:
    """The turn covering the moment, or else the nearest one."""
    if not turns:
        return None
    for turn in turns:
        if turn.start <= moment <= turn.end:
            return turn.speaker
    nearest = min(turns, key=lambda t: min(abs(t.start - moment), abs(t.end - moment)))
    return nearest.speaker


def _label(name: str, speaker: int | None) -> str:
    return name if speaker is None else f"{name} (speaker {speaker + 1})"


def write_outputs(
    transcript: Transcript, folder: Path, stem: str = "transcript"
) -> dict[str, Path]:
    """transcript.json, .vtt, .srt, .md and .docx in the folder (made if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_all(transcript, folder, stem)


def mix_recording(sources: list[AudioSource], target: Path) -> Path:
    """One playable Ogg/Opus file of the meeting: every track delayed to its place, mixed."""
    if not sources:
        raise PipelineError("nothing to record: no audio was captured")
    inputs: list[str] = []
    chains: list[str] = []
    for index, source in enumerate(sources):
        inputs += ["-i", str(source.path)]
        delay = round(source.offset * 1000)
        chains.append(f"[{index}:a]aresample=48000,adelay={delay}:all=1[a{index}]")
    labels = "".join(f"[a{index}]" for index in range(len(sources)))
    graph = ";".join(chains) + f";{labels}amix=inputs={len(sources)}:normalize=0[out]"
    temporary = target.with_suffix(".part.ogg")
    command = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-y", *inputs,
        "-filter_complex", graph, "-map", "[out]", "-c:a", "libopus", "-b:a", "48k",
        str(temporary),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        temporary.unlink(missing_ok=True)
        raise PipelineError(f"mixing the recording failed: {result.stderr.strip()[-300:]}")
    temporary.replace(target)
    return target


def now_iso(timestamp: float | None = None) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC) if timestamp else datetime.now(UTC)
    return moment.isoformat(timespec="seconds")


def remove_audio(folder: Path) -> None:
    """Delete the raw and converted audio of a capture (kept only for recordings)."""
    for name in ("raw", "work"):
        shutil.rmtree(folder / name, ignore_errors=True)
