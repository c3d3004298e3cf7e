"""The job queue at scale (job_queue = "procrastinate") on a throwaway PostgreSQL.

Workers run the real job code: the child process `python -m visio.transcripts.worker`.
Capture folders hold nothing it can transcribe, so each job fails fast with the child's
own reason; a job that must last (to stop or kill its worker in the middle) reads a
manifest that is a named pipe, which blocks until the test writes to it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from visio.config import Settings
from visio.db import Capture, Store
from visio.server import Services
from visio.testing.postgres import PostgresServer
from visio.transcripts import queue as queue_module
from visio.transcripts.capture import CaptureSession
from visio.transcripts.queue import MIGRATIONS_TABLE, TASK, TranscriptionQueue, run_worker

_databases = itertools.count(1)
FAST = {"housekeeping_every_s": 0.2, "stalled_after_s": 1.0, "fetch_job_polling_interval": 0.2}
INCOMPLETE = "the capture folder is incomplete"  # no manifest.json
NOTHING = "nothing to record: no audio was captured"  # a manifest with no track


@pytest.fixture
async def settings(postgres: PostgresServer, tmp_path: Path) -> Settings:
    name = f"queue_{next(_databases)}"
    await postgres.create_database(name)
    return Settings(data_dir=tmp_path, database_url=postgres.url(name), job_queue="procrastinate")


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    opened = Store(settings.sqlalchemy_url)
    await opened.migrate()
    yield opened
    await opened.close()


@pytest.fixture
async def queue(settings: Settings, store: Store) -> AsyncIterator[TranscriptionQueue]:
    """The web server's side: it defers jobs and runs none."""
    opened = TranscriptionQueue(settings, store)
    await opened.start()
    yield opened
    await opened.stop()


async def queued_capture(store: Store, settings: Settings, pipe: bool = False) -> Capture:
    """A queued capture (a recording) whose folder has no manifest, or a named pipe in its
    place."""
    if await store.get_room("team-room") is None:
        await store.create_room(room_id="team-room")
    capture = await store.create_capture("team-room", "Team", "en", transcribe=False, record=True)
    folder = settings.capture_root / capture.id
    folder.mkdir(parents=True)
    if pipe:
        os.mkfifo(folder / "manifest.json")
    await store.update_capture(capture.id, status="queued", ended_at=datetime.now(UTC))
    return capture


async def until(check: Callable[[], Awaitable[object]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout:g}s")
        await asyncio.sleep(0.05)


async def status_is(store: Store, capture_id: str, *statuses: str) -> bool:
    capture = await store.get_capture(capture_id)
    return capture is not None and capture.status in statuses


async def jobs(queue: TranscriptionQueue, status: str | None = None) -> list[str]:
    found = await queue.app.job_manager.list_jobs_async(task=TASK, status=status)
    return [str(job.status) for job in found]


def job_children(pid: int) -> list[psutil.Process]:
    """The job's child processes (`python -m visio.transcripts.worker`) of a worker."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "visio.transcripts.worker" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # gone (or going) meanwhile: e.g. ldconfig run by ctypes
            continue
    return found


def release(pipe: Path, text: str = "not JSON") -> None:
    """Let the child blocked on the manifest read it (blocks until one opens the pipe)."""
    with open(pipe, "w") as writer:
        writer.write(text)


async def test_a_worker_runs_the_job_code_and_a_retry_runs_it_again(queue, store, settings):
    capture = await queued_capture(store, settings)
    assert await queue.defer(capture.id)
    await run_worker(settings, wait=False, install_signal_handlers=False, **FAST)

    failed = await store.get_capture(capture.id)
    assert failed.status == "failed" and INCOMPLETE in failed.error
    assert failed.attempts == 1 and failed.expires_at is not None
    assert await jobs(queue) == []  # done jobs leave procrastinate's table

    # A manifest with no track this time; then what the retry endpoint does: queue the
    # capture again and wake the queue.
    (settings.capture_root / capture.id / "manifest.json").write_text(
        json.dumps({"started_at": 0, "tracks": []})
    )
    await store.update_capture(
        capture.id, status="queued", error=None, progress=0.0, attempts=0, expires_at=None
    )
    queue.wake(capture.id)
    await until(lambda: _equals(jobs(queue, "todo"), ["todo"]))
    await run_worker(settings, wait=False, install_signal_handlers=False, **FAST)

    again = await store.get_capture(capture.id)
    assert (again.status, again.error, again.attempts) == ("failed", NOTHING, 1)
    assert again.progress == pytest.approx(0.02)  # the child's progress report was saved


async def _equals(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


async def test_a_meeting_that_ends_on_the_server_is_transcribed_by_a_worker(settings, store):
    settings = settings.model_copy(update={"janus_urls": ["ws://127.0.0.1:9"]})
    services = Services(settings)  # the web server's, not started: no Janus here
    assert isinstance(services.jobs, TranscriptionQueue)
    await services.jobs.start()
    try:
        await store.create_room(room_id="team-room")
        capture = await store.create_capture(
            "team-room", "Team", "en", transcribe=False, record=True
        )
        folder = settings.capture_root / capture.id
        session = CaptureSession(capture.id, folder, "Team", "en", recording=True)
        session.new_track("p1", "Ann", "camera", 1)  # Janus wrote nothing: no .mjr
        meeting = SimpleNamespace(room_id="team-room", capture=session)
        await services.captures.meeting_ended(meeting)  # type: ignore[arg-type]
        await until(lambda: _equals(jobs(services.jobs), ["todo"]))
    finally:
        await services.jobs.stop()
        await services.store.close()
    await run_worker(settings, wait=False, install_signal_handlers=False, **FAST)
    done = await store.get_capture(capture.id)
    assert (done.status, done.error) == ("failed", NOTHING)


async def test_a_capture_deferred_twice_runs_once(queue, store, settings):
    capture = await queued_capture(store, settings)
    assert await queue.defer(capture.id)
    assert not await queue.defer(capture.id)  # one waits already (queueing lock)
    queue.wake(capture.id)
    await asyncio.sleep(0.1)
    assert await jobs(queue) == ["todo"]
    await run_worker(
        settings,
        wait=False,  # it stops when nothing is left to start: let it finish the job
        shutdown_graceful_timeout=None,
        install_signal_handlers=False,
        concurrency=2,
        **FAST,
    )
    done = await store.get_capture(capture.id)
    assert (done.status, done.attempts) == ("failed", 1)


async def test_two_jobs_of_one_capture_never_run_at_once(queue, store, settings):
    capture = await queued_capture(store, settings, pipe=True)
    assert await queue.defer(capture.id)
    worker = asyncio.create_task(
        run_worker(settings, install_signal_handlers=False, concurrency=2, **FAST)
    )
    try:
        await until(lambda: status_is(store, capture.id, "running"))
        assert await queue.defer(capture.id)  # a second job may wait while one runs…
        await asyncio.sleep(0.6)  # …but the worker, free for it, must not start it (lock)
        assert sorted(await jobs(queue)) == ["doing", "todo"]
        await asyncio.to_thread(release, settings.capture_root / capture.id / "manifest.json")
        await until(lambda: _equals(jobs(queue), []))  # the second one found nothing to do
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    done = await store.get_capture(capture.id)
    assert (done.status, done.attempts) == ("failed", 1)
    assert "Expecting value" in done.error  # what the child made of "not JSON"


@pytest.fixture
async def worker_process(
    settings: Settings,
) -> AsyncIterator[Callable[[], Awaitable[asyncio.subprocess.Process]]]:
    """Starts `visio worker`'s code in a process of its own, with short timings."""
    code = (
        "import asyncio; from visio.config import load_settings; "
        "from visio.transcripts.queue import run_worker; "
        f"asyncio.run(run_worker(load_settings(), **{FAST!r}))"
    )
    env = {
        **os.environ,
        "VISIO_DATA_DIR": str(settings.data_dir),
        "VISIO_DATABASE_URL": settings.database_url,
        "VISIO_JOB_QUEUE": "procrastinate",
        "VISIO_LOG_LEVEL": "WARNING",
    }
    env.pop("VISIO_CONFIG", None)
    started: list[asyncio.subprocess.Process] = []

    async def start() -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, env=env, stdin=asyncio.subprocess.DEVNULL
        )
        started.append(process)
        return process

    yield start
    for process in started:  # a failed test's
        if process.returncode is None:
            for child in job_children(process.pid):
                child.kill()
            process.kill()
            await process.wait()


async def test_jobs_survive_a_stopped_and_a_killed_worker(queue, store, settings, worker_process):
    capture = await queued_capture(store, settings, pipe=True)
    pipe = settings.capture_root / capture.id / "manifest.json"
    assert await queue.defer(capture.id)

    # SIGTERM: the worker cuts its job (its child is killed) and queues it again.
    first = await worker_process()
    await until(lambda: _has_child(first.pid))
    children = job_children(first.pid)
    first.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(first.wait(), 30) == 0
    assert not any(child.is_running() for child in children)
    cut = await store.get_capture(capture.id)
    assert (cut.status, cut.attempts) == ("queued", 1)
    assert "todo" in await jobs(queue)

    # SIGKILL: the job stays "running" until a live worker sees the dead one's silence.
    second = await worker_process()
    await until(lambda: _has_child(second.pid))
    orphans = job_children(second.pid)
    second.kill()
    await second.wait()
    for orphan in orphans:  # in production they die at their next progress report
        orphan.kill()
    assert (await store.get_capture(capture.id)).status == "running"
    pipe.unlink()  # the next run fails fast

    worker = asyncio.create_task(run_worker(settings, install_signal_handlers=False, **FAST))
    try:
        await until(lambda: status_is(store, capture.id, "failed"))
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    done = await store.get_capture(capture.id)
    assert done.attempts == 3 and INCOMPLETE in done.error


async def _has_child(pid: int) -> bool:
    return bool(job_children(pid))


async def test_captures_left_running_by_no_job_are_queued_again(queue, store, settings):
    """E.g. by the embedded runner, before a switch to the queue."""
    capture = await queued_capture(store, settings)
    await store.update_capture(capture.id, status="running", attempts=1)
    assert await queue.recover_stalled() == 1
    assert (await store.get_capture(capture.id)).status == "queued"
    assert await jobs(queue) == ["todo"]


async def test_the_server_defers_queued_captures_at_start(settings, store):
    """A defer lost in a crash, or captures queued before the switch to the queue."""
    waiting = await queued_capture(store, settings)
    cut_meeting = await store.create_capture("team-room", "T", "en", transcribe=True, record=False)
    running = await queued_capture(store, settings)
    await store.update_capture(running.id, status="running")
    server = TranscriptionQueue(settings, store)
    await server.start()
    try:
        assert (await store.get_capture(cut_meeting.id)).status == "queued"
        assert (await store.get_capture(running.id)).status == "running"  # workers' business
        found = await server.app.job_manager.list_jobs_async(task=TASK)
        assert sorted(job.lock for job in found) == sorted([waiting.id, cut_meeting.id])
    finally:
        await server.stop()


async def test_the_schema_is_applied_once_then_upgraded(settings, store, monkeypatch):
    first, second = TranscriptionQueue(settings, store), TranscriptionQueue(settings, store)
    await asyncio.gather(first.open(), second.open())  # together: one waits for the other
    await second.close()
    try:
        folder = Path(first.app.schema_manager.get_migrations_path())
        migrations = await asyncio.to_thread(lambda: list(folder.glob("*.sql")))
        assert len(await noted(first)) == len(migrations) > 30

        # A newer procrastinate brings a migration file: the next start applies it, once.
        shipped = queue_module._migration_files
        newer = "99.00.00_01_pre_probe.sql"
        monkeypatch.setattr(
            queue_module,
            "_migration_files",
            lambda path: {**shipped(path), newer: "CREATE TABLE probe (id int)"},
        )
        for _ in range(2):
            upgraded = TranscriptionQueue(settings, store)
            await upgraded.open()
            await upgraded.close()
        assert newer in await noted(first)
        async with first.connector.pool.connection() as connection:
            await connection.execute("SELECT * FROM probe")
    finally:
        await first.close()


async def noted(queue: TranscriptionQueue) -> set[str]:
    async with queue.connector.pool.connection() as connection:
        cursor = await connection.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")
        return {row[0] for row in await cursor.fetchall()}
