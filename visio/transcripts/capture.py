"""The live capture of one meeting: which tracks Janus records, where, and since when.

Janus writes one `.mjr` file per track of each recorded publisher into the capture's
folder. The manifest written next to them says whose each file is, so the transcription
job (possibly on another machine) needs nothing but the folder.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
RAW = "raw"  # Janus' .mjr files


def nothing_captured() -> dict[str, bool]:
    """The capture state of a meeting nobody transcribes or records."""
    return {"transcription": False, "recording": False}


@dataclass(frozen=True)
class Track:
    participant: str  # participant id in the meeting
    name: str  # their display name when the track started
    target: str  # camera | screen
    base: str  # file stem inside raw/: Janus adds -audio-0.mjr, -video-1.mjr…
    requested_at: float  # wall-clock time (s) when recording was asked for
    guest: bool = False  # not signed in: the transcript says so (a name proves nothing)


def speaker_label(name: str, guest: bool, target: str) -> str:
    """How a transcript or a caption names a speaker: guests are marked, since anyone can
    type any name (audit M6), and a screen share's sound is told apart."""
    return name + (" (guest)" if guest else "") + (" (screen)" if target == "screen" else "")


@dataclass
class CaptureSession:
    """A running meeting's capture; it outlives stops and restarts within the meeting."""

    capture_id: str
    folder: Path
    title: str
    language: str
    started_at: float = field(default_factory=time.time)
    transcription: bool = False
    recording: bool = False
    tracks: list[Track] = field(default_factory=list)
    max_tracks: int = 10**9
    over_cap: int = 0  # publications not recorded, past max_tracks
    keep_video: bool = False  # Record was on: the video is kept, to the end, for its video

    @property
    def active(self) -> bool:
        """Whether Janus should be recording right now."""
        return self.transcription or self.recording

    def state(self) -> dict[str, bool]:
        return {"transcription": self.transcription, "recording": self.recording}

    def new_track(
        self, participant: str, name: str, target: str, feed_id: int, guest: bool = False
    ) -> str | None:
        """Register a track about to be recorded; return the base path to give Janus, or
        None past `max_tracks` (it is not recorded)."""
        if len(self.tracks) >= self.max_tracks:
            self.over_cap += 1
            return None
        raw = self.folder / RAW
        raw.mkdir(parents=True, exist_ok=True)
        base = f"{participant}-{target}-{feed_id}-{len(self.tracks)}"
        self.tracks.append(Track(participant, name, target, base, time.time(), guest))
        self.save()
        return str(raw / base)

    def save(self) -> None:
        write_manifest(
            self.folder,
            {
                "capture": self.capture_id,
                "title": self.title,
                "language": self.language,
                "started_at": self.started_at,
                "video": self.keep_video,
                "tracks": [asdict(track) for track in self.tracks],
            },
        )


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".manifest-")
    with os.fdopen(fd, "w") as handle:
        json.dump(manifest, handle, indent=1)
    os.replace(temporary, folder / MANIFEST)


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_text())
