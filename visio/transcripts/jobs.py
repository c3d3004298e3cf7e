"""The job runner: transcribes queued captures one at a time, in a child process each.

Jobs live in the database (the captures table), so a queued or interrupted job survives
a server restart: at start, jobs left running by a stopped server are queued again
(up to `transcription_attempts` tries), and captures of meetings cut by the stop are
queued too. Several servers or workers may share the queue: claiming is atomic.
It also deletes captures whose retention period is over.

This is the embedded default. At scale (`job_queue = "procrastinate"`) the server runs
no jobs: `visio worker` processes run the same job code, one capture at a time through
`run_capture` (visio/transcripts/queue.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Protocol

from visio.config import Settings
from visio.db import Capture, CaptureStatus, Store

log = logging.getLogger(__name__)
IDLE_POLL_S = 30.0  # other processes may queue jobs too
SWEEP_EVERY_S = 600.0
ORPHAN_AGE_S = 3600.0  # a capture folder with no row, untouched this long, is left over
PROGRESS_EVERY_S = 1.0


def _now() -> datetime:
    return datetime.now(UTC)


class Jobs(Protocol):
    """What the server hands queued captures to: the JobRunner below (embedded), or the
    job queue's client (visio/transcripts/queue.py)."""

    async def start(self) -> None: ...

    def wake(self, capture_id: str | None = None) -> None: ...

    async def stop(self) -> None: ...


class JobRunner:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_sweep = 0.0

    async def start(self) -> None:
        await self.recover()
        self._task = asyncio.create_task(self._loop())

    def wake(self, capture_id: str | None = None) -> None:
        """A capture was queued (any queued capture is taken in turn, whichever it is)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop now (the job's child is killed); a job cut here is queued again at the next
        start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def recover(self, *, running: bool = True) -> None:
        """Queue again what a stopped server left capturing, and running (unless `running`
        is false: with a job queue, workers recover their own jobs)."""
        statuses: tuple[CaptureStatus, ...] = (
            ("running", "capturing") if running else ("capturing",)
        )
        for capture in await self.store.captures_in(*statuses):
            if capture.status == "capturing":
                await self.store.update_capture(capture.id, status="queued", ended_at=_now())
            else:
                await self.interrupted(capture)

    async def interrupted(self, capture: Capture) -> bool:
        """Queue again a job cut by a stop (True), unless it was cut too often (failed)."""
        if capture.attempts >= self.settings.transcription_attempts:
            await self.fail(capture, f"interrupted {capture.attempts} times by server restarts")
            return False
        return await self.store.update_capture(
            capture.id, when_status="running", status="queued", progress=0.0
        )

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep_when_due()
                capture = await self.store.claim_capture()
                if capture is not None:
                    await self._run(capture)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job runner error")
            self._wake.clear()
            # Not asyncio.wait_for: in Python 3.11 it loses a cancel that comes as the wake
            # does (a meeting ending at shutdown), and stop() then waits forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_POLL_S):
                    await self._wake.wait()

    # -- one job ------------------------------------------------------------------------

    async def run_capture(self, capture_id: str) -> bool:
        """Run the job of this capture if it is queued (claimed atomically): what a queue's
        worker does. False if it is not queued (done, taken, deleted)."""
        capture = await self.store.claim_capture(capture_id)
        if capture is None:
            return False
        await self._run(capture)
        return True

    def _command(self, capture: Capture) -> list[str]:
        settings = self.settings
        command = [
            sys.executable, "-m", "visio.transcripts.worker",
            str(settings.capture_root / capture.id),
            "--language", capture.language,
            "--models", str(settings.models_dir),
            "--threads", str(settings.speech_threads),
            "--memory-mb", str(settings.transcription_memory_mb),
        ]  # fmt: skip
        if settings.speech_model_dir:
            command += ["--model-dir", settings.speech_model_dir]
        if settings.diarizer:
            command += ["--diarizer", settings.diarizer]
        if capture.transcribe:
            command.append("--transcribe")
        if capture.record:
            command.append("--record")
        return command

    async def _run(self, capture: Capture) -> None:
        log.info("transcription started", extra={"capture": capture.id, "room": capture.room_id})
        started = time.monotonic()
        child = await asyncio.create_subprocess_exec(
            *self._command(capture),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # so that a stop kills its threads and children too
        )
        errors: deque[str] = deque(maxlen=20)
        stderr_task = asyncio.create_task(_collect(child.stderr, errors))
        try:
            report = await self._follow(capture, child)
            code = await child.wait()
            await stderr_task
        finally:
            if child.returncode is None:  # cut by a stop (cancelled)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                await child.wait()
        if report.get("deleted"):
            self._deleted_meanwhile(capture)
            return
        if code == 0 and report.get("done"):
            if not await self._succeed(capture, report.get("problems") or []):
                self._deleted_meanwhile(capture)
                return
            log.info(
                "transcription done",
                extra={"capture": capture.id, "seconds": round(time.monotonic() - started, 1)},
            )
            return
        reason = report.get("error") or _crash_reason(code, errors)
        if not await self.fail(capture, str(reason)):
            self._deleted_meanwhile(capture)
            return
        log.warning("transcription failed", extra={"capture": capture.id, "error": reason})

    def _deleted_meanwhile(self, capture: Capture) -> None:
        """Its room (or the capture) was deleted while the worker ran: what the worker
        wrote has no row left to expire it, so it goes now (audit L10)."""
        delete_files(self.settings, capture.id)
        log.info("capture deleted while transcribed", extra={"capture": capture.id})

    async def _follow(
        self, capture: Capture, child: asyncio.subprocess.Process
    ) -> dict[str, object]:
        """Read the worker's reports, saving its progress now and then; return the last."""
        assert child.stdout is not None
        last: dict[str, object] = {}
        saved_at = 0.0
        async for line in child.stdout:
            try:
                report = json.loads(line)
            except ValueError:
                continue  # a library printing on stdout
            if not isinstance(report, dict):
                continue
            last = report
            progress = report.get("progress")
            if isinstance(progress, float | int) and time.monotonic() - saved_at > PROGRESS_EVERY_S:
                saved_at = time.monotonic()
                if not await self.store.update_capture(capture.id, progress=float(progress)):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)  # deleted: no use going on
                    return {"deleted": True}
        return last

    async def _succeed(self, capture: Capture, problems: list[str]) -> bool:
        if problems:
            log.warning("tracks not used", extra={"capture": capture.id, "problems": problems})
        return await self.store.update_capture(
            capture.id,
            status="done",
            progress=1.0,
            error=("Some tracks could not be used: " + "; ".join(problems)) if problems else None,
            expires_at=self._expiry(),
        )

    async def fail(self, capture: Capture, reason: str) -> bool:
        return await self.store.update_capture(
            capture.id, status="failed", error=reason[:2000], expires_at=self._expiry()
        )

    def _expiry(self) -> datetime:
        return _now() + timedelta(days=self.settings.retention_days)

    # -- retention -----------------------------------------------------------------------

    async def sweep_when_due(self) -> None:
        if time.monotonic() - self._last_sweep < SWEEP_EVERY_S:
            return
        self._last_sweep = time.monotonic()
        await self.sweep()

    async def sweep(self) -> int:
        """Delete the captures (files and records) whose retention period is over."""
        expired = await self.store.expired_captures()
        for capture in expired:
            delete_files(self.settings, capture.id)
            await self.store.delete_capture(capture.id)
            log.info("capture expired", extra={"capture": capture.id, "room": capture.room_id})
        await self.sweep_orphans()
        await self.purge_rooms()
        return len(expired)

    async def purge_rooms(self) -> int:
        """Delete the rooms nobody used for `room_retention_days` (rooms without an owner:
        `ownerless_room_retention_days`), unless permanent or still holding captures."""
        settings = self.settings
        now = _now()

        def cutoff(days: float) -> datetime | None:
            return now - timedelta(days=days) if days > 0 else None

        unused = await self.store.unused_rooms(
            cutoff(settings.room_retention_days), cutoff(settings.ownerless_room_retention_days)
        )
        for room_id in unused:
            await self.store.delete_room(room_id)
        if unused:
            log.info("unused rooms deleted", extra={"rooms": len(unused)})
        return len(unused)

    async def sweep_orphans(self, older_than_s: float = ORPHAN_AGE_S) -> int:
        """Delete capture folders that no capture row points at any more (a room deleted
        while a worker, here or on another machine, was still writing)."""
        root = self.settings.capture_root
        if not root.is_dir():
            return 0
        swept = 0
        for folder in root.iterdir():
            try:
                untouched_s = time.time() - folder.stat().st_mtime
            except OSError:
                continue
            if not folder.is_dir() or untouched_s < older_than_s:
                continue
            if await self.store.get_capture(folder.name) is None:
                shutil.rmtree(folder, ignore_errors=True)
                if folder.exists():
                    log.warning("orphan capture folder not deleted", extra={"folder": str(folder)})
                    continue
                log.info("orphan capture folder deleted", extra={"capture": folder.name})
                swept += 1
        return swept


def delete_files(settings: Settings, capture_id: str) -> None:
    shutil.rmtree(settings.capture_root / capture_id, ignore_errors=True)


async def _collect(stream: asyncio.StreamReader | None, into: deque[str]) -> None:
    if stream is None:
        return
    async for line in stream:
        text = line.decode(errors="replace").strip()
        if text:
            into.append(text)


def _crash_reason(code: int, errors: deque[str]) -> str:
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    detail = f": {errors[-1]}" if errors else ""
    return f"the transcription worker {how}{detail}"
