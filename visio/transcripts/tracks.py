"""Turning a capture folder's Janus recordings into audio files laid on one timeline.

Each `.mjr` file's header says when its first packet was written; that, relative to the
capture's start, places the track on the meeting timeline. `janus-pp-rec` turns the
packets into an Ogg/Opus file (filling gaps with silence), which PyAV decodes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visio.transcripts.capture import RAW, read_manifest, speaker_label

WORK = "work"  # converted audio, deleted with the raw files


class TrackError(Exception):
    """A recording that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class AudioSource:
    path: Path  # an audio (or video) file ffmpeg can decode
    speaker: str  # who speaks in it (a track may still hold several voices)
    source: str  # what it is: "Alice: microphone", a file name…
    offset: float  # seconds from the start of the timeline to the start of the file
    participant: str = ""  # their id in the meeting, for a capture's tracks
    target: str = "camera"  # camera | screen: which publication it came from


def capture_sources(folder: Path) -> tuple[list[AudioSource], list[str]]:
    """Every usable audio track of a capture, and a note for each track that is not."""
    sources: list[AudioSource] = []
    problems: list[str] = []
    for recording in _recordings(folder, "audio"):
        track = recording.track
        label = "screen" if track["target"] == "screen" else "microphone"
        try:
            path, started = convert(recording.mjr, folder / WORK)
        except TrackError as exc:
            problems.append(f"{track['name']}'s {label}: {exc}")
            continue
        sources.append(
            AudioSource(
                path,
                speaker_label(track["name"], track.get("guest", False), track["target"]),
                f"{track['name']}: {label}",
                recording.offset(started),
                track["participant"],
                track["target"],
            )
        )
    return sources, problems


@dataclass(frozen=True)
class VideoSource:
    path: Path  # a WebM file ffmpeg can decode
    participant: str
    label: str  # the name on its tile
    target: str  # camera | screen
    offset: float  # seconds from the start of the timeline
    duration: float


def capture_videos(folder: Path) -> tuple[list[VideoSource], list[str]]:
    """Every usable video track of a capture, and a note for each that is not."""
    videos: list[VideoSource] = []
    problems: list[str] = []
    for recording in _recordings(folder, "video"):
        track = recording.track
        try:
            path, started = convert_video(recording.mjr, folder / WORK)
            duration = video_duration(path)
        except TrackError as exc:
            label = "screen" if track["target"] == "screen" else "camera"
            problems.append(f"{track['name']}'s {label}: {exc}")
            continue
        videos.append(
            VideoSource(
                path,
                track["participant"],
                speaker_label(track["name"], track.get("guest", False), track["target"]),
                track["target"],
                recording.offset(started),
                duration,
            )
        )
    return videos, problems


@dataclass(frozen=True)
class _Recording:
    """One Janus recording of a capture: a track of one publication."""

    track: dict[str, Any]  # its entry in the capture's manifest
    mjr: Path
    zero: float  # when the capture started (wall clock, s)

    def offset(self, started: float) -> float:
        """Where it goes on the timeline, from the time of its first packet (0: none
        written, so when its recording was asked for)."""
        if not started:
            return self.track["requested_at"] - self.zero
        return max(0.0, started - self.zero)


def _recordings(folder: Path, media: str) -> Iterator[_Recording]:
    """The capture's recordings of one media ("audio", "video"), track by track."""
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError) as exc:
        raise TrackError(f"the capture's manifest cannot be read: {exc}") from exc
    zero = float(manifest["started_at"])
    (folder / WORK).mkdir(exist_ok=True)
    for track in manifest["tracks"]:
        for mjr in sorted((folder / RAW).glob(f"{track['base']}-{media}-*.mjr")):
            yield _Recording(track, mjr, zero)


def convert_video(mjr: Path, into: Path) -> tuple[Path, float]:
    """The track as a WebM file, and the wall-clock time of its first packet (s)."""
    return _convert(mjr, into, _VIDEO)


def video_duration(path: Path) -> float:
    """How long a video file plays, from decoding it: one that cannot be decoded says so
    here, not in the middle of the meeting's rendering. A frame damaged by packets lost on
    the way is no reason to leave a camera out (the renderer skips it too)."""
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0",
         "-f", "null", "-"],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no video stream"])[-1]
        raise TrackError(f"{path.name} cannot be decoded: {reason[-200:]}")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    try:
        duration = float(json.loads(probe.stdout)["format"]["duration"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TrackError(f"{path.name} has no readable duration") from exc
    if duration <= 0:
        raise TrackError(f"{path.name} holds no video frames")
    return duration


def mjr_header(mjr: Path) -> dict[str, object]:
    """The JSON header janus-pp-rec reads from a recording."""
    result = _pp_rec(mjr, ["--json", str(mjr)])
    try:
        header = json.loads(result.stdout)
    except ValueError as exc:
        raise TrackError(f"{mjr.name} has no readable header") from exc
    if not isinstance(header, dict):
        raise TrackError(f"{mjr.name} has no readable header")
    return header


def convert(mjr: Path, into: Path) -> tuple[Path, float]:
    """The track as an Ogg/Opus file, and the wall-clock time of its first packet (s)."""
    return _convert(mjr, into, _AUDIO)


@dataclass(frozen=True)
class _Kind:
    """What a recording of one media must hold, and what janus-pp-rec turns it into."""

    header_type: str  # "a" | "v" in the recording's header
    codecs: tuple[str, ...]
    suffix: str
    named: str  # for messages: "an Opus audio recording"
    content: str  # "audio packets"


_AUDIO = _Kind("a", ("opus",), ".opus", "an Opus audio recording", "audio packets")
_VIDEO = _Kind("v", ("vp8", "vp9"), ".webm", "a VP8 or VP9 video recording", "video frames")


def _convert(mjr: Path, into: Path, kind: _Kind) -> tuple[Path, float]:
    if not mjr.stat().st_size:
        raise TrackError(f"{mjr.name} is empty")
    header = mjr_header(mjr)
    if header.get("t") != kind.header_type or header.get("c") not in kind.codecs:
        raise TrackError(f"{mjr.name} is not {kind.named}")
    target = into / (mjr.stem + kind.suffix)
    _pp_rec(mjr, [str(mjr), str(target)])
    if not target.exists() or target.stat().st_size == 0:
        raise TrackError(f"{mjr.name} holds no {kind.content}")
    first_written = header.get("u") or header.get("s") or 0
    return target, float(first_written) / 1e6  # type: ignore[arg-type]


def _pp_rec(mjr: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("janus-pp-rec")
    if binary is None:
        raise TrackError("janus-pp-rec is not installed (Debian package janus-tools)")
    result = subprocess.run(
        [binary, "--debug-level", "2", *args], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        reason = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["?"]
        raise TrackError(f"janus-pp-rec failed on {mjr.name}: {reason[0]}")
    return result


def file_sources(paths: list[Path]) -> list[AudioSource]:
    """Files given on the command line: one speaker each, named after the file."""
    return [AudioSource(path, path.stem, path.name, 0.0) for path in paths]
