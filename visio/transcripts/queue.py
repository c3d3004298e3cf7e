"""Transcription jobs at scale: a procrastinate queue in the PostgreSQL database, run by
`visio worker` processes (`job_queue = "procrastinate"`).

The web server runs no job then: when a capture is queued it defers a procrastinate job
`visio.transcribe_capture(capture_id=…)` on the queue "transcription". Workers, on any
machine that reads the shared captures folder, run it with the embedded runner's own
code (JobRunner.run_capture: the same atomic claim, the same child process). The
captures table stays the one truth about each job (status, progress, error, attempts:
what the web app shows); procrastinate's tables only say which capture to run next and
which worker runs it.

- One job per capture at a time: each job has the capture id as its `lock` (no two run
  at once) and `queueing_lock` (no two wait at once).
- Restarts: jobs wait in PostgreSQL. A worker stopped (SIGTERM) kills its job's child
  and queues the job again; a worker that dies (SIGKILL, crash, lost machine) stops
  sending heartbeats, and after `STALLED_AFTER_S` another worker's housekeeping queues
  its job again. Either way it is one of `transcription_attempts` tries.
- Housekeeping (at a worker's start and every `HOUSEKEEPING_EVERY_S`, one worker at a
  time): jobs of dead workers, queued captures that have no job (a defer lost in a
  crash, captures queued before the switch to this mode), captures left running by no
  job, and retention.
- procrastinate's schema is created at start, and brought up to the installed
  procrastinate's version with its own migration files (see `TranscriptionQueue.open`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import procrastinate
from procrastinate import exceptions as queue_errors
from procrastinate.job_context import AbortReason, JobContext
from procrastinate.jobs import Status
from psycopg.conninfo import make_conninfo
from sqlalchemy import text
from sqlalchemy.engine import make_url

from visio.config import ConfigError, Settings
from visio.db import Store
from visio.transcripts.jobs import JobRunner

log = logging.getLogger(__name__)

QUEUE = "transcription"
TASK = "visio.transcribe_capture"
HOUSEKEEPING_EVERY_S = 30.0
STALLED_AFTER_S = 30.0  # a worker silent this long is dead: its job runs again
HEARTBEAT_EVERY_S = 10.0
# PostgreSQL advisory lock keys ("visio" and a number): one schema change at a time, one
# housekeeper at a time.
SCHEMA_LOCK = 0x766973696F0001
HOUSEKEEPING_LOCK = 0x766973696F0002
MIGRATIONS_TABLE = "visio_procrastinate_migrations"

# libpq connection parameters that may come in a SQLAlchemy URL's query string.
LIBPQ_PARAMETERS = {
    "host", "hostaddr", "port", "sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl",
    "sslpassword", "application_name", "connect_timeout", "options", "target_session_attrs",
    "passfile", "service", "gssencmode", "channel_binding", "keepalives",
}  # fmt: skip


def conninfo(database_url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (any driver)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigError("job_queue = procrastinate needs a PostgreSQL database_url")
    parameters: dict[str, Any] = {
        "dbname": url.database,
        "user": url.username,
        "password": url.password,
        "host": url.host,
        "port": url.port,
    }
    for key, value in url.query.items():
        value = value[-1] if isinstance(value, tuple) else value
        if key == "ssl":  # asyncpg's name
            key, value = "sslmode", "require" if value.lower() in ("true", "1") else value
        if key in LIBPQ_PARAMETERS:
            parameters[key] = value
    return make_conninfo(**{k: str(v) for k, v in parameters.items() if v not in (None, "")})


class TranscriptionQueue:
    """The queue as the web server sees it (start, wake, stop: the Jobs protocol), and the
    job a worker runs with it (`run_worker`)."""

    def __init__(self, settings: Settings, store: Store, pool_size: int = 4) -> None:
        self.settings = settings
        self.store = store
        self.runner = JobRunner(settings, store)
        self.connector = procrastinate.PsycopgConnector(
            conninfo=conninfo(settings.sqlalchemy_url), min_size=1, max_size=pool_size
        )
        self.app = procrastinate.App(connector=self.connector)
        self._deferring: set[asyncio.Task[bool]] = set()
        self._running: set[str] = set()  # captures whose job runs in this process

        @self.app.task(name=TASK, queue=QUEUE, pass_context=True)
        async def transcribe_capture(context: JobContext, capture_id: str) -> None:
            await self._transcribe(context, capture_id)

        self.task = transcribe_capture

    # -- opening -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, and create or upgrade procrastinate's schema.

        procrastinate's schema.sql makes a fresh install; its migration files (named by
        version) upgrade an existing one. Applied files are noted in a table of ours, so
        that a newer procrastinate's files are applied at the next start. One process at
        a time (an advisory lock), in one transaction: servers and workers may start
        together. Only this mode creates these tables: not an Alembic migration, which
        would put them in every PostgreSQL database, and tie Visio's schema history to
        the installed procrastinate's.
        """
        await self.app.open_async()
        schema = self.app.schema_manager
        migrations = await asyncio.to_thread(_migration_files, schema.get_migrations_path())
        async with self.connector.pool.connection() as connection:
            async with connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                await connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                    "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                cursor = await connection.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")
                applied = {row[0] for row in await cursor.fetchall()}
                cursor = await connection.execute("SELECT to_regclass('procrastinate_jobs')")
                row = await cursor.fetchone()
                installed = row is not None and row[0] is not None
                if not installed:
                    await connection.execute(schema.get_schema())
                    log.info("job queue schema created")
                elif applied:  # else installed by other means: taken as up to date
                    for name, sql in migrations.items():
                        if name not in applied:
                            await connection.execute(sql)
                            log.info("job queue schema migrated", extra={"file": name})
                async with connection.cursor() as cursor:
                    await cursor.executemany(
                        f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (%s) "
                        "ON CONFLICT (name) DO NOTHING",
                        [(name,) for name in migrations if name not in applied],
                    )

    async def close(self) -> None:
        await self.app.close_async()

    # -- the web server's side (Jobs) ----------------------------------------------------

    async def start(self) -> None:
        """Open; queue the captures of meetings cut by a stop, and defer what waits."""
        await self.open()
        await self.runner.recover(running=False)  # running ones are the workers' business
        await self.defer_queued()

    def wake(self, capture_id: str | None = None) -> None:
        """A capture was queued: defer its job (soon; housekeeping defers it if this fails)."""
        if capture_id is None:
            return
        task = asyncio.create_task(self._defer_logged(capture_id))
        self._deferring.add(task)
        task.add_done_callback(self._deferring.discard)

    async def stop(self) -> None:
        if self._deferring:
            await asyncio.wait(self._deferring, timeout=5.0)
        await self.close()

    async def _defer_logged(self, capture_id: str) -> bool:
        try:
            return await self.defer(capture_id)
        except Exception:
            log.exception("could not defer a transcription job", extra={"capture": capture_id})
            return False

    async def defer(self, capture_id: str) -> bool:
        """Defer the job of a queued capture; False if one waits for it already."""
        configured = self.task.configure(lock=capture_id, queueing_lock=capture_id)
        try:
            job_id = await configured.defer_async(capture_id=capture_id)
        except queue_errors.AlreadyEnqueued:
            return False
        log.info("transcription job deferred", extra={"capture": capture_id, "job": job_id})
        return True

    async def defer_queued(self) -> int:
        """Defer a job for each queued capture that has none waiting or running."""
        queued = await self.store.captures_in("queued")
        if not queued:
            return 0
        pending = await self._jobs_of("todo") | await self._jobs_of("doing")
        count = 0
        for capture in queued:
            if capture.id not in pending and await self.defer(capture.id):
                count += 1
        return count

    async def _jobs_of(self, status: str) -> set[str]:
        jobs = await self.app.job_manager.list_jobs_async(task=TASK, status=status)
        return {job.lock for job in jobs if job.lock}

    # -- the worker's side ---------------------------------------------------------------

    async def _transcribe(self, context: JobContext, capture_id: str) -> None:
        self._running.add(capture_id)
        try:
            if not await self.runner.run_capture(capture_id):
                log.info("capture not queued: nothing to run", extra={"capture": capture_id})
        except asyncio.CancelledError:  # the worker stops, or the job was aborted
            capture = await self.store.get_capture(capture_id)
            if capture is not None and capture.status == "running":
                if context.abort_reason() == AbortReason.USER_REQUEST:
                    await self.runner.fail(capture, "stopped by an operator")
                elif await self.runner.interrupted(capture):
                    await self.defer(capture_id)
            raise
        finally:
            self._running.discard(capture_id)

    async def housekeeping(self, stalled_after_s: float = STALLED_AFTER_S) -> None:
        """Recover cut jobs, defer lost ones, apply retention: one worker at a time."""
        async with _advisory_lock(self.store, HOUSEKEEPING_LOCK) as ours:
            if not ours:
                return
            await self.recover_stalled(stalled_after_s)
            await self.defer_queued()
            await self.runner.sweep_when_due()

    async def recover_stalled(self, stalled_after_s: float = STALLED_AFTER_S) -> int:
        """Queue again the jobs of dead workers, and captures left running by no job.

        A worker is taken for dead when its heartbeat is `stalled_after_s` old; never this
        one (its heartbeat may be late, its jobs are alive)."""
        recovered = 0
        manager = self.app.job_manager
        for job in await manager.get_stalled_jobs(
            task_name=TASK, seconds_since_heartbeat=stalled_after_s
        ):
            capture_id = str(job.task_kwargs.get("capture_id"))
            if capture_id in self._running:
                continue
            capture = await self.store.get_capture(capture_id)
            if capture is not None and capture.status == "running":
                await self.runner.interrupted(capture)
            log.warning("job of a dead worker queued again", extra={"capture": capture_id})
            try:
                await manager.retry_job(job)  # it does nothing if the capture is not queued
            except queue_errors.UniqueViolation:  # another job of this capture waits
                await manager.finish_job(job, status=Status.FAILED, delete_job=False)
            recovered += 1
        # Read before the running jobs: a capture is running only while a job runs it.
        running = await self.store.captures_in("running")
        if running:
            running_jobs = await self._jobs_of("doing")
            for capture in running:
                if capture.id in running_jobs or capture.id in self._running:
                    continue
                if await self.runner.interrupted(capture):
                    log.warning("capture left running queued again", extra={"capture": capture.id})
                    await self.defer(capture.id)
                    recovered += 1
        return recovered

    async def keep_house(
        self, every_s: float, stalled_after_s: float, stopping: asyncio.Event
    ) -> None:
        """Housekeeping every `every_s` until `stopping` is set (an event, not a
        cancellation: on Python 3.11 a cancellation can be lost in a database call)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), every_s)
            if stopping.is_set():
                return
            try:
                await self.housekeeping(stalled_after_s)
            except Exception:
                log.exception("job queue housekeeping error")


def _migration_files(folder: str) -> dict[str, str]:
    """procrastinate's migration files, in order (their names start with the version)."""
    return {path.name: path.read_text() for path in sorted(Path(folder).glob("*.sql"))}


@contextlib.asynccontextmanager
async def _advisory_lock(store: Store, key: int) -> AsyncIterator[bool]:
    """Whether this process holds the PostgreSQL session lock `key` (not waiting for it)."""
    async with store.engine.connect() as connection:
        ours = bool(await connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
        await connection.commit()
        try:
            yield ours
        finally:
            if ours:
                await connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await connection.commit()


async def run_worker(
    settings: Settings,
    *,
    concurrency: int = 1,
    housekeeping_every_s: float = HOUSEKEEPING_EVERY_S,
    stalled_after_s: float = STALLED_AFTER_S,
    **options: Any,
) -> None:
    """`visio worker`: run transcription jobs until stopped (SIGTERM or SIGINT: the jobs
    running are cut and queued again). `options` go to procrastinate's worker."""
    store = Store(settings.sqlalchemy_url)
    queue = TranscriptionQueue(settings, store, pool_size=concurrency + 4)
    worker_options: dict[str, Any] = {
        "queues": [QUEUE],
        "name": f"visio-{socket.gethostname()}-{os.getpid()}",
        "concurrency": concurrency,
        "update_heartbeat_interval": min(HEARTBEAT_EVERY_S, stalled_after_s / 3),
        "stalled_worker_timeout": stalled_after_s,
        "shutdown_graceful_timeout": 0,  # a transcription may take an hour: cut it
        "delete_jobs": "successful",  # the captures table keeps the story
        **options,
    }
    try:
        await store.migrate()
        await queue.open()
        await queue.housekeeping(stalled_after_s)
        stopping = asyncio.Event()
        keeper = asyncio.create_task(
            queue.keep_house(housekeeping_every_s, stalled_after_s, stopping)
        )
        log.info(
            "transcription worker ready",
            extra={"worker": worker_options["name"], "concurrency": concurrency},
        )
        try:
            await queue.app.run_worker_async(**worker_options)
        finally:
            stopping.set()
            if not (await asyncio.wait({keeper}, timeout=30.0))[0]:
                keeper.cancel()  # stuck in the database
                await asyncio.wait({keeper}, timeout=5.0)
    finally:
        await queue.close()
        await store.close()
