"""The load workers, seen from the coordinator: start them, spread seats, add their figures.

Clients run in several processes so that the load generator uses every core (one
Python event loop holds one). A meeting's seats stay in one worker (they join one
after the other); meetings go to the worker with the fewest clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from visio.load.media import EncodedMedia
from visio.load.seats import JoinResult, Seat
from visio.load.worker import Command, Join, Leave, Snapshot, Stop, WorkerStats, run_worker

START_TIMEOUT_S = 60.0
ANSWER_TIMEOUT_S = 30.0


class WorkerLost(RuntimeError):
    pass


class _Worker:
    def __init__(
        self,
        index: int,
        media: EncodedMedia,
        concurrency: int,
        join_timeout: float,
        interval: float,
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a running event loop
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=run_worker,
            args=(child, media, concurrency, join_timeout, interval),
            name=f"visio-load-worker-{index}",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.numbers = itertools.count()
        self.clients = 0
        self.reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def start_reading(self, threads: ThreadPoolExecutor) -> None:
        self.reader = asyncio.create_task(self._read(threads))

    async def _read(self, threads: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                number, result = await loop.run_in_executor(threads, self.conn.recv)
                future = self.pending.pop(number, None)
                if future is not None and not future.done():
                    future.set_result(result)
        except (EOFError, OSError):
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(WorkerLost(f"load worker {self.pid} ended"))

    async def ask(self, command: Command, timeout: float) -> Any:
        number = next(self.numbers)
        future = self.pending[number] = asyncio.get_running_loop().create_future()
        try:
            self.conn.send((number, command))
        except OSError as exc:
            raise WorkerLost(f"load worker {self.pid}: {exc}") from None
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self.pending.pop(number, None)

    async def stop(self) -> None:
        with contextlib.suppress(WorkerLost, TimeoutError):
            await self.ask(Stop(), 20)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()
        if self.reader is not None:
            self.reader.cancel()


@dataclass
class PoolStats:
    workers: list[WorkerStats]

    @property
    def total(self) -> WorkerStats:
        total = WorkerStats()
        for stats in self.workers:
            total.clients += stats.clients
            total.held += stats.held
            total.silent += stats.silent
            total.audio += stats.audio
            total.video += stats.video
            total.jitters_ms += stats.jitters_ms
            total.errors.update(stats.errors)
            total.keyframes_sent += stats.keyframes_sent
            total.loop_lag_ms += stats.loop_lag_ms
            total.unhandled.update(stats.unhandled)
        return total


class WorkerPool:
    def __init__(
        self,
        count: int,
        media: EncodedMedia,
        concurrency: int = 8,
        join_timeout: float = 15.0,
        join_rate: float = 10.0,
    ) -> None:
        self.count, self.media = count, media
        self.concurrency, self.join_timeout = concurrency, join_timeout
        self.interval = count / join_rate  # each worker starts its share of the joins
        self.workers: list[_Worker] = []
        self.placed: dict[str, _Worker] = {}  # seat key -> its worker
        self.readers = ThreadPoolExecutor(count, thread_name_prefix="load-pipe")  # one each

    async def start(self) -> None:
        self.workers = [
            _Worker(i, self.media, self.concurrency, self.join_timeout, self.interval)
            for i in range(self.count)
        ]
        for worker in self.workers:
            worker.start_reading(self.readers)
        # The first answer also proves the worker has imported aiortc and runs.
        await asyncio.gather(*(w.ask(Snapshot(), START_TIMEOUT_S) for w in self.workers))

    @property
    def pids(self) -> list[int]:
        return [worker.pid for worker in self.workers]

    async def join(self, seats: list[Seat]) -> list[JoinResult]:
        batches: dict[_Worker, list[Seat]] = {}
        for group in _groups(seats):
            worker = min(self.workers, key=lambda w: w.clients)
            worker.clients += len(group)
            batches.setdefault(worker, []).extend(group)
            for seat in group:
                self.placed[seat.key] = worker
        # Joins are paced, and those of one group follow each other: allow for both.
        longest = max((len(group) for group in _groups(seats)), default=1)
        timeout = ANSWER_TIMEOUT_S + longest * (self.join_timeout + 5)
        answers = await asyncio.gather(
            *(
                worker.ask(Join(tuple(batch)), timeout + len(batch) * self.interval)
                for worker, batch in batches.items()
            )
        )
        results: list[JoinResult] = [result for answer in answers for result in answer]
        for result in results:
            if result.error is not None:
                self._forget(result.key)
        return results

    async def leave(self, keys: list[str]) -> None:
        by_worker: dict[_Worker, list[str]] = {}
        for key in keys:
            worker = self.placed.get(key)
            if worker is not None:
                by_worker.setdefault(worker, []).append(key)
                self._forget(key)
        await asyncio.gather(
            *(w.ask(Leave(tuple(ks)), ANSWER_TIMEOUT_S) for w, ks in by_worker.items())
        )

    def _forget(self, key: str) -> None:
        worker = self.placed.pop(key, None)
        if worker is not None:
            worker.clients -= 1

    async def snapshot(self) -> PoolStats:
        answers = await asyncio.gather(*(w.ask(Snapshot(), ANSWER_TIMEOUT_S) for w in self.workers))
        return PoolStats(list(answers))

    async def stop(self) -> None:
        await asyncio.gather(*(worker.stop() for worker in self.workers))
        self.readers.shutdown(wait=False)


def _groups(seats: list[Seat]) -> list[list[Seat]]:
    groups: dict[str, list[Seat]] = {}
    for seat in seats:
        groups.setdefault(seat.group, []).append(seat)
    return list(groups.values())
