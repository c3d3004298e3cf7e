"""Starting and stopping captures in running meetings, and handing them to the job runner.

A moderator turns transcription or recording on: Janus records every publication of the
meeting from then on, and everyone sees it in the room's state. When the meeting ends
the capture is queued for transcription (and mixing, for a recording).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from visio.conference.meeting import Meeting
from visio.conference.records import CaptureRecord
from visio.db import Store
from visio.transcripts.capture import CaptureSession, Track, read_manifest

log = logging.getLogger(__name__)
CaptureKind = Literal["transcription", "recording"]


class Captures:
    def __init__(self, store: Store, root: Path, on_queued: Callable[[str], None]) -> None:
        self.store = store
        self.root = root
        self._on_queued = on_queued

    def folder(self, capture_id: str) -> Path:
        return self.root / capture_id

    async def switch(self, meeting: Meeting, kind: CaptureKind, on: bool) -> None:
        """Turn transcription or recording on or off; tell everyone in the meeting."""
        capture = meeting.capture
        if capture is None:
            if not on:
                return
            capture = await self._open(meeting)
        was_active = capture.active
        setattr(capture, kind, on)
        if on:
            await self.store.update_capture(capture.capture_id, **{_column(kind): True})
        if capture.active != was_active:
            await meeting.record_everyone(capture.active)
        meeting.journal.meeting(meeting)
        meeting.broadcast({"type": "room", "room": meeting.room_info()})
        log.info(
            "capture switched",
            extra={"room": meeting.room_id, "capture": capture.capture_id, kind: on},
        )

    async def _open(self, meeting: Meeting) -> CaptureSession:
        policy = await self.store.policy(meeting.room_id)
        language = policy.language if policy is not None else "auto"
        record = await self.store.create_capture(
            meeting.room_id, meeting.name, language, transcribe=False, record=False
        )
        capture = CaptureSession(record.id, self.folder(record.id), meeting.name, language)
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
        )
        try:
            capture.tracks = [Track(**t) for t in read_manifest(folder).get("tracks", [])]
        except (OSError, ValueError, TypeError) as exc:
            log.warning(
                "capture manifest unreadable", extra={"capture": record.id, "error": str(exc)}
            )
        meeting.capture = capture

    async def meeting_ended(self, meeting: Meeting) -> None:
        """Queue what the meeting captured (Janus has closed its files by now)."""
        capture, meeting.capture = meeting.capture, None
        if capture is None:
            return
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
