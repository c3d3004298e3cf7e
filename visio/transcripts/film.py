"""From a recorded capture's folder to `recording.mp4`: its tracks, gathered for video.py.

A track that cannot be used (a video that will not convert or decode, an audio track that
will not decode) is left out and noted; the video is made of the rest. A capture with no
usable video at all (only microphones were published) gets no video: its audio recording
says everything.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from visio.speech.audio import SAMPLE_RATE, AudioError, load_audio
from visio.transcripts.tracks import WORK, AudioSource, capture_videos
from visio.transcripts.video import (
    Clip,
    Progress,
    Sound,
    Voice,
    loudness,
    render,
    speech_spans,
)

VIDEO = "recording.mp4"
CAPTIONS = "transcript.srt"


def film_capture(
    folder: Path,
    sources: list[AudioSource],
    problems: list[str],
    threads: int = 2,
    progress: Progress = lambda _: None,
) -> Path | None:
    """Render the capture's video into the folder; None when it has no usable video.
    Notes about the tracks left out are added to `problems`."""
    videos, unusable = capture_videos(folder)
    problems.extend(unusable)
    if not videos:
        return None
    clips = [
        Clip(v.path, v.participant, v.label, v.target == "screen", v.offset, v.offset + v.duration)
        for v in videos
    ]
    voices, sounds, heard_until = _listen(sources, problems)
    duration = max([clip.end for clip in clips] + [heard_until])
    captions = folder / CAPTIONS
    work = folder / WORK / "video"
    try:
        return render(
            duration,
            clips,
            voices,
            sounds,
            folder / VIDEO,
            work,
            captions if captions.is_file() else None,
            threads,
            progress,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for video in videos:
            video.path.unlink(missing_ok=True)  # made again from the raw files if need be


def _listen(
    sources: list[AudioSource], problems: list[str]
) -> tuple[list[Voice], list[Sound], float]:
    """Who speaks when (microphones only: a screen share's sound is nobody's turn), the
    tracks to mix, and where the last one ends. One track is decoded at a time."""
    spans: dict[str, list[tuple[float, float]]] = {}
    names: dict[str, str] = {}
    sounds: list[Sound] = []
    heard_until = 0.0
    for source in sources:
        try:
            samples = load_audio(source.path)
        except AudioError as exc:
            problems.append(f"{source.source}: {exc.reason}")
            continue
        sounds.append(Sound(source.path, source.offset))
        heard_until = max(heard_until, source.offset + len(samples) / SAMPLE_RATE)
        if source.target == "screen" or not source.participant:
            continue
        found = speech_spans(loudness(samples, SAMPLE_RATE), offset=source.offset)
        spans.setdefault(source.participant, []).extend(found)
        names.setdefault(source.participant, source.speaker)
        del samples
    voices = [Voice(p, names[p], tuple(sorted(found))) for p, found in spans.items()]
    return voices, sounds, heard_until
