"""Starting and stopping captures in running meetings, and handing them to the job runner.

A moderator turns transcription or recording on: Janus records every publication of the
meeting from then on, and everyone sees it in the room's state. When the meeting ends
the capture is queued for transcription (and mixing, for a recording).

While a capture runs, a guard (audit M8) watches it every few seconds:
- free space in captures_dir under `capture_min_free_mb`: the capture stops, the
  moderators are told (`disk_full`), and it is logged; none starts until space is back;
- video: Janus 1.1's VideoRoom records every stream of a publisher (it has no per-stream
  recording). Transcription uses only the audio: unless Record is (or was) on in the
  capture, or `capture_video`, the video files are emptied as they are written (so they
  hold a few seconds at most, as sparse files) and deleted when the meeting ends. Once
  Record is on, the video is kept to the end of the meeting: the job makes the meeting's
  video from it. Record switched on during a transcription-only capture restarts the
  recording of every publication into fresh files, since the ones being emptied are
  unusable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from visio.conference.meeting import Meeting
from visio.conference.records import CaptureRecord
from visio.config import Settings
from visio.db import Store
from visio.protocol import ProtocolError
from visio.transcripts.capture import RAW, CaptureSession, Track, read_manifest

log = logging.getLogger(__name__)
CaptureKind = Literal["transcription", "recording"]
GUARD_EVERY_S = 2.0
DISK_FULL = "the server is short of disk space for recordings"
NO_SOUND_BYTES = 1024  # a recording's header and a few packets at most: no sound worth keeping


class Captures:
    def __init__(self, store: Store, settings: Settings, on_queued: Callable[[str], None]) -> None:
        self.store = store
        self.settings = settings
        self.root = settings.capture_root
        self._on_queued = on_queued
        self._guards: dict[str, asyncio.Task[None]] = {}

    def folder(self, capture_id: str) -> Path:
        return self.root / capture_id

    async def switch(self, meeting: Meeting, kind: CaptureKind, on: bool) -> None:
        """Turn transcription or recording on or off; tell everyone in the meeting."""
        capture = meeting.capture
        if on and self.short_of_disk():
            log.error("capture refused: disk space low", extra={"room": meeting.room_id})
            raise ProtocolError("disk_full", f"{DISK_FULL}; nothing is captured")
        if capture is None:
            if not on:
                return
            capture = await self._open(meeting)
        was_active = capture.active
        setattr(capture, kind, on)
        if on:
            await self.store.update_capture(capture.capture_id, **{_column(kind): True})
        if kind == "recording" and on and not self._keeps_video(capture):
            capture.keep_video = True
            capture.save()
            if was_active:  # the video files so far were emptied: start fresh ones
                await meeting.record_everyone(False)
                delete_video(capture.folder)
                drop_unrecorded(capture)
            await meeting.record_everyone(True)
        elif capture.active != was_active:
            await meeting.record_everyone(capture.active)
        meeting.journal.meeting(meeting)
        meeting.broadcast({"type": "room", "room": meeting.room_info()})
        log.info(
            "capture switched",
            extra={"room": meeting.room_id, "capture": capture.capture_id, kind: on},
        )
        if capture.active:
            self._guard(meeting)

    # -- the guard: disk space and video ---------------------------------------------------

    def _keeps_video(self, capture: CaptureSession) -> bool:
        return capture.keep_video or self.settings.capture_video

    def short_of_disk(self) -> bool:
        root = self.root if self.root.exists() else self.root.parent
        try:
            free = shutil.disk_usage(root).free
        except OSError:
            return False  # cannot tell: Janus' own errors will
        return free < self.settings.capture_min_free_mb * 1024 * 1024

    def _guard(self, meeting: Meeting) -> None:
        running = self._guards.get(meeting.room_id)
        if running is None or running.done():
            self._guards[meeting.room_id] = asyncio.create_task(self._watch(meeting))

    async def _watch(self, meeting: Meeting) -> None:
        try:
            while not meeting.closed and meeting.capture is not None and meeting.capture.active:
                if not self._keeps_video(meeting.capture):
                    empty_video(meeting.capture.folder)
                if self.short_of_disk():
                    await self._stop_for_disk(meeting)
                    return
                await asyncio.sleep(GUARD_EVERY_S)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("capture guard failed", extra={"room": meeting.room_id})

    async def _stop_for_disk(self, meeting: Meeting) -> None:
        assert meeting.capture is not None
        log.error(
            "capture stopped: disk space low",
            extra={"room": meeting.room_id, "capture": meeting.capture.capture_id},
        )
        for kind in ("transcription", "recording"):
            if meeting.capture is not None and getattr(meeting.capture, kind):
                await self.switch(meeting, kind, False)  # type: ignore[arg-type]
        frame = {"type": "error", "code": "disk_full", "message": f"{DISK_FULL}: capture stopped"}
        for moderator in meeting.moderators():
            moderator.send(frame)

    async def _open(self, meeting: Meeting) -> CaptureSession:
        policy = await self.store.policy(meeting.room_id)
        language = policy.language if policy is not None else "auto"
        record = await self.store.create_capture(
            meeting.room_id, meeting.name, language, transcribe=False, record=False
        )
        capture = CaptureSession(record.id, self.folder(record.id), meeting.name, language)
        capture.max_tracks = self.settings.capture_max_tracks
        capture.save()
        meeting.capture = capture
        return capture

    def restore(self, meeting: Meeting, record: CaptureRecord | None) -> None:
        """The capture of a meeting taken over from another process: Janus goes on
        recording the same publications; the manifest on the shared folder has the tracks."""
        if record is None:
            return
        folder = self.folder(record.id)
        capture = CaptureSession(
            record.id,
            folder,
            record.title,
            record.language,
            started_at=record.started_at,
            transcription=record.transcription,
            recording=record.recording,
            max_tracks=self.settings.capture_max_tracks,
        )
        try:
            manifest = read_manifest(folder)
            capture.tracks = [Track(**t) for t in manifest.get("tracks", [])]
            capture.keep_video = bool(manifest.get("video", False))
        except (OSError, ValueError, TypeError) as exc:
            log.warning(
                "capture manifest unreadable", extra={"capture": record.id, "error": str(exc)}
            )
        meeting.capture = capture
        if capture.active:
            self._guard(meeting)

    async def meeting_ended(self, meeting: Meeting) -> None:
        """Queue what the meeting captured (Janus has closed its files by now)."""
        capture, meeting.capture = meeting.capture, None
        guard = self._guards.pop(meeting.room_id, None)
        if guard is not None:
            guard.cancel()
        if capture is None:
            return
        if not self._keeps_video(capture):
            delete_video(capture.folder)
        capture.save()
        if not capture.tracks:
            await self.store.delete_capture(capture.capture_id)
            shutil.rmtree(capture.folder, ignore_errors=True)
            return
        await self.store.update_capture(
            capture.capture_id, status="queued", ended_at=datetime.now(UTC)
        )
        log.info("capture queued", extra={"room": meeting.room_id, "capture": capture.capture_id})
        self._on_queued(capture.capture_id)


def _column(kind: CaptureKind) -> str:
    return "transcribe" if kind == "transcription" else "record"


def empty_video(folder: Path) -> None:
    """Empty the video files Janus writes: their space is given back at once, and what
    Janus writes next lands past a hole (a sparse file of a few seconds)."""
    for path in (folder / RAW).glob("*-video-*.mjr"):
        with contextlib.suppress(OSError):
            os.truncate(path, 0)


def drop_unrecorded(capture: CaptureSession) -> None:
    """Forget the tracks stopped before any sound was written (Record switched on just
    after transcription): they would only be reported as unusable."""
    kept = []
    for track in capture.tracks:
        files = list((capture.folder / RAW).glob(f"{track.base}-*.mjr"))
        audio = [path for path in files if "-audio-" in path.name]
        if audio and max(_size(path) for path in audio) >= NO_SOUND_BYTES:
            kept.append(track)
            continue
        for path in files:
            with contextlib.suppress(OSError):
                path.unlink()
    capture.tracks = kept
    capture.save()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def delete_video(folder: Path) -> None:
    for path in (folder / RAW).glob("*-video-*.mjr"):
        with contextlib.suppress(OSError):
            path.unlink()
