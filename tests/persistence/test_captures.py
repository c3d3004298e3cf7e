"""Captures as jobs, on each backend: claiming, recovery after a restart, retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from visio.config import Settings
from visio.transcripts.jobs import JobRunner


async def queued(store, room_id: str = "team-room", **fields):
    if await store.get_room(room_id) is None:
        await store.create_room(room_id=room_id)
    capture = await store.create_capture(room_id, "Team", "auto", transcribe=True, record=False)
    await store.update_capture(
        capture.id, **{"status": "queued", "ended_at": datetime.now(UTC), **fields}
    )
    return capture


def runner(store, tmp_path: Path, **settings) -> JobRunner:
    return JobRunner(Settings(data_dir=tmp_path, **settings), store)


async def test_each_queued_capture_is_claimed_once(store):
    captures = [await queued(store) for _ in range(4)]
    claimed = await asyncio.gather(*(store.claim_capture() for _ in range(6)))
    ids = [c.id for c in claimed if c is not None]
    assert sorted(ids) == sorted(c.id for c in captures)
    for capture in claimed:
        if capture is not None:
            assert (capture.status, capture.attempts) == ("running", 1)
    assert await store.claim_capture() is None


async def test_a_restart_queues_cut_jobs_again_until_attempts_run_out(store, tmp_path):
    fresh = await queued(store)
    tired = await queued(store, attempts=2)
    cut_meeting = await store.create_capture("team-room", "T", "en", transcribe=True, record=False)
    for capture in (fresh, tired):
        await store.update_capture(capture.id, status="running")
    await runner(store, tmp_path, transcription_attempts=2).recover()
    assert (await store.get_capture(fresh.id)).status == "queued"
    failed = await store.get_capture(tired.id)
    assert failed.status == "failed" and "interrupted 2 times" in failed.error
    assert failed.expires_at is not None  # its audio does not stay for ever
    assert (await store.get_capture(cut_meeting.id)).status == "queued"


async def test_retention_deletes_files_and_records_of_expired_captures(store, tmp_path):
    old = await queued(store, status="done", expires_at=datetime.now(UTC) - timedelta(hours=1))
    young = await queued(store, status="done", expires_at=datetime.now(UTC) + timedelta(days=1))
    waiting = await queued(store)
    for capture in (old, young, waiting):
        (tmp_path / "captures" / capture.id).mkdir(parents=True)
        (tmp_path / "captures" / capture.id / "transcript.json").write_text("{}")
    assert await runner(store, tmp_path).sweep() == 1
    assert await store.get_capture(old.id) is None
    assert not (tmp_path / "captures" / old.id).exists()
    for kept in (young, waiting):
        assert await store.get_capture(kept.id) is not None
        assert (tmp_path / "captures" / kept.id / "transcript.json").exists()


async def test_deleting_a_room_deletes_its_captures(store):
    capture = await queued(store, room_id="gone-room")
    other = await queued(store, room_id="kept-room")
    await store.delete_room("gone-room")
    assert await store.get_capture(capture.id) is None
    assert await store.get_capture(other.id) is not None
    assert [c.id for c in await store.captures_of("kept-room")] == [other.id]
