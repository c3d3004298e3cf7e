"""The HTTP API of transcripts and recordings: list, download, retry, delete.

A room's owner and its members (admins included) see its captures; the owner and admins
retry or delete them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel

from visio import audit
from visio.api import your_role
from visio.auth.identity import require_user
from visio.config import Settings
from visio.db import Capture, Store, User
from visio.transcripts.jobs import Jobs, delete_files

FILES = {
    "transcript.json": ("json", "application/json"),
    "transcript.vtt": ("vtt", "text/vtt; charset=utf-8"),
    "transcript.srt": ("srt", "application/x-subrip; charset=utf-8"),
    "transcript.md": ("md", "text/markdown; charset=utf-8"),
    "transcript.docx": (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    "recording.ogg": ("ogg", "audio/ogg"),
    "recording.mp4": ("mp4", "video/mp4"),
}


# "Bob's microphone: <why>" (a track that would not convert), "Bob: screen: <why>" (one
# that would not decode), "Bob's camera: <why>" (a video left out of the meeting's video):
# who is named to the room's members; why stays in the log.
TRACK = re.compile(r"([^;:,()]+?)(?:'s |: )(microphone|camera|screen)\b")
SAID_AS_IS = ("interrupted ", "stopped by an operator")


def public_error(status: str, error: str | None) -> str | None:
    """What members are told of a job's trouble: which tracks, not paths or tool output
    (audit L6). The whole reason is in the server's log and the database."""
    if not error:
        return None
    tracks = sorted({f"{name.strip()}'s {label}" for name, label in TRACK.findall(error)})
    named = f": {', '.join(tracks)}" if tracks else ""
    if status == "done":
        return f"Some tracks could not be used{named}"
    if error.startswith(("nothing to transcribe", "nothing to record")):
        unread = f" ({', '.join(tracks)} could not be read)" if tracks else ""
        return f"{error.split(':')[0]}: no usable audio was captured{unread}"
    if error.startswith(SAID_AS_IS):
        return error
    if "speech model" in error or "speech_model_dir" in error:  # the operator's to fix
        return "no usable speech model on this server: its operator should check speech_model_dir"
    return "the transcription failed; the server's log says why"


class CaptureFile(BaseModel):
    name: str
    format: str
    size: int
    url: str


class CaptureOut(BaseModel):
    id: str
    room: str
    title: str
    language: str
    transcription: bool
    recording: bool
    status: Literal["capturing", "queued", "running", "done", "failed"]
    progress: float
    error: str | None
    started_at: datetime
    ended_at: datetime | None
    expires_at: datetime | None
    files: list[CaptureFile]
    can_manage: bool


def captures_router(settings: Settings, store: Store, runner: Jobs) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["transcripts"])

    async def role_for(room_id: str, user: User) -> str:
        policy = await store.policy(room_id) if len(room_id) <= 64 else None
        if policy is None:
            raise HTTPException(404, "no such room")
        role = your_role(policy.owner_id, user, policy.roles)
        if role is None:
            raise HTTPException(403, "only the room's owner and members see its transcripts")
        return role

    async def capture_for(capture_id: str, user: User, manage: bool = False) -> Capture:
        capture = await store.get_capture(capture_id) if len(capture_id) <= 32 else None
        if capture is None:
            raise HTTPException(404, "no such transcript")
        role = await role_for(capture.room_id, user)
        if manage and role not in ("owner", "admin"):
            raise HTTPException(403, "only the room's owner and admins may do this")
        return capture

    def out(capture: Capture, role: str) -> CaptureOut:
        folder = settings.capture_root / capture.id
        files = []
        if capture.status == "done":
            for name, (kind, _) in FILES.items():
                path = folder / name
                if path.is_file():
                    url = f"/api/captures/{capture.id}/files/{name}"
                    files.append(
                        CaptureFile(name=name, format=kind, size=path.stat().st_size, url=url)
                    )
        return CaptureOut(
            id=capture.id,
            room=capture.room_id,
            title=capture.title,
            language=capture.language,
            transcription=capture.transcribe,
            recording=capture.record,
            status=capture.status,  # type: ignore[arg-type]
            progress=round(capture.progress, 3),
            error=public_error(capture.status, capture.error),
            started_at=capture.started_at,
            ended_at=capture.ended_at,
            expires_at=capture.expires_at,
            files=files,
            can_manage=role in ("owner", "admin"),
        )

    @router.get("/rooms/{room_id}/captures", response_model=list[CaptureOut])
    async def room_captures(request: Request, room_id: str) -> list[CaptureOut]:
        user = await require_user(request, store)
        role = await role_for(room_id, user)
        return [out(c, role) for c in await store.captures_of(room_id)]

    @router.get("/captures/{capture_id}", response_model=CaptureOut)
    async def one_capture(request: Request, capture_id: str) -> CaptureOut:
        user = await require_user(request, store)
        capture = await capture_for(capture_id, user)
        return out(capture, await role_for(capture.room_id, user))

    @router.get("/captures/{capture_id}/files/{name}")
    async def download(request: Request, capture_id: str, name: str) -> FileResponse:
        user = await require_user(request, store)
        capture = await capture_for(capture_id, user)
        path = settings.capture_root / capture.id / name
        if name not in FILES or capture.status != "done" or not path.is_file():
            raise HTTPException(404, "no such file")
        by = audit.by_request(request, user)
        audit.record("capture_downloaded", by, room=capture.room_id, capture=capture.id, file=name)
        return FileResponse(path, media_type=FILES[name][1], filename=download_name(capture, name))

    @router.post("/captures/{capture_id}/retry", response_model=CaptureOut)
    async def retry(request: Request, capture_id: str) -> CaptureOut:
        user = await require_user(request, store)
        capture = await capture_for(capture_id, user, manage=True)
        if capture.status != "failed":
            raise HTTPException(
                409, f"only a failed job can be retried (this one is {capture.status})"
            )
        if not (settings.capture_root / capture.id / "manifest.json").is_file():
            raise HTTPException(409, "the captured audio is gone (deleted or expired)")
        await store.update_capture(
            capture.id, status="queued", error=None, progress=0.0, attempts=0, expires_at=None
        )
        runner.wake(capture.id)
        refreshed = await store.get_capture(capture.id)
        assert refreshed is not None
        return out(refreshed, "owner")

    @router.delete("/captures/{capture_id}", status_code=204)
    async def delete(request: Request, capture_id: str) -> Response:
        user = await require_user(request, store)
        capture = await capture_for(capture_id, user, manage=True)
        if capture.status in ("capturing", "running"):
            raise HTTPException(409, f"the capture is {capture.status}; delete it once that ends")
        delete_files(settings, capture.id)
        await store.delete_capture(capture.id)
        by = audit.by_request(request, user)
        audit.record("capture_deleted", by, room=capture.room_id, capture=capture.id)
        return Response(status_code=204)

    return router


def download_name(capture: Capture, name: str) -> str:
    """`Weekly sync 2026-12-04.vtt`: readable, and safe in a header."""
    title = re.sub(r"[^\w .-]+", "", capture.title).strip() or "meeting"
    day = capture.started_at.strftime("%Y-%m-%d")
    suffix = name.rsplit(".", 1)[-1]
    kind = "recording" if name.startswith("recording") else "transcript"
    return f"{title} {day} {kind}.{suffix}"
