"""One load worker process: an event loop of load clients, driven over a pipe.

The coordinator (`visio.load.pool`) sends numbered requests (join seats, leave, take a
snapshot, stop); each runs as a task of its own, so a snapshot is answered while joins
are in progress, and the answer carries the request's number.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from visio.load.client import JoinFailed, LoadClient
from visio.load.media import EncodedMedia
from visio.load.rtpstats import StreamTotals
from visio.load.seats import JoinResult, Seat

LAG_PROBE_S = 0.1


@dataclass(frozen=True)
class Join:
    seats: tuple[Seat, ...]


@dataclass(frozen=True)
class Leave:
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Snapshot:
    pass


@dataclass(frozen=True)
class Stop:
    pass


Command = Join | Leave | Snapshot | Stop


@dataclass
class WorkerStats:
    """Cumulative counts (clients that left included) and the state right now."""

    clients: int = 0
    held: int = 0  # clients alive that receive media, or need not
    silent: list[str] = field(default_factory=list)  # the others: their seat keys
    audio: StreamTotals = field(default_factory=StreamTotals)
    video: StreamTotals = field(default_factory=StreamTotals)
    jitters_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # after joining: dropped, down
    keyframes_sent: int = 0
    loop_lag_ms: list[float] = field(default_factory=list)  # since the previous snapshot
    # Exceptions no task handled, by type: aioice choking on a datagram, say. Counted, not
    # printed: a traceback per packet would drown the report.
    unhandled: Counter[str] = field(default_factory=Counter)


def run_worker(
    conn: Connection, media: EncodedMedia, concurrency: int, join_timeout: float, interval: float
):
    """Entry point of the worker process; it starts a join every `interval` s at most."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator stops us cleanly
    _raise_file_limit()
    worker = Worker(conn, media, concurrency, join_timeout, interval)
    try:  # uvloop (uvicorn's) wakes a task per packet faster: ~15 % less client CPU here
        import uvloop
    except ImportError:
        asyncio.run(worker.run())
    else:
        uvloop.run(worker.run())


def _raise_file_limit() -> None:
    """Each peer connection holds a UDP socket per local address: hundreds of clients
    need more than the usual 1024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Worker:
    def __init__(
        self,
        conn: Connection,
        media: EncodedMedia,
        concurrency: int,
        join_timeout: float,
        interval: float,
    ) -> None:
        self.conn = conn
        self.media = media
        self.join_timeout = join_timeout
        self.concurrency = concurrency
        self.interval = interval
        self.next_join = 0.0
        self.clients: dict[str, tuple[Seat, LoadClient]] = {}
        self.retired = WorkerStats()  # what the clients that left had received
        self.lags: list[float] = []
        self.unhandled: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        self.joining = asyncio.Semaphore(self.concurrency)
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._on_unhandled)
        lag_probe = asyncio.create_task(self._probe_lag())
        try:
            while True:
                try:
                    number, command = await loop.run_in_executor(None, self.conn.recv)
                except (EOFError, OSError):
                    break  # the coordinator is gone
                if isinstance(command, Stop):
                    await self._close_all()
                    self.conn.send((number, None))
                    break
                task = asyncio.create_task(self._answer(number, command))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        finally:
            lag_probe.cancel()
            await self._close_all()

    async def _answer(self, number: int, command: Command) -> None:
        result: Any
        if isinstance(command, Join):
            result = await self._join(command.seats)
        elif isinstance(command, Leave):
            result = await self._leave(command.keys)
        else:
            result = self._snapshot()
        with contextlib.suppress(OSError):
            self.conn.send((number, result))

    def _on_unhandled(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exception = context.get("exception")
        self.unhandled[type(exception).__name__ if exception else "no exception"] += 1

    async def _probe_lag(self) -> None:
        """How late the loop wakes up: the clients' own saturation shows here first."""
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_PROBE_S)
            self.lags.append(1000 * (time.monotonic() - before - LAG_PROBE_S))

    # -- joining and leaving ------------------------------------------------------

    async def _join(self, seats: tuple[Seat, ...]) -> list[JoinResult]:
        groups: dict[str, list[Seat]] = {}
        for seat in seats:
            groups.setdefault(seat.group, []).append(seat)
        done = await asyncio.gather(*(self._join_group(group) for group in groups.values()))
        return [result for results in done for result in results]

    async def _join_group(self, seats: list[Seat]) -> list[JoinResult]:
        return [await self._join_one(seat) for seat in seats]

    async def _pace(self) -> None:
        """People arrive one after the other, not all in the same instant."""
        now = time.monotonic()
        start = max(now, self.next_join)
        self.next_join = start + self.interval
        await asyncio.sleep(start - now)

    async def _join_one(self, seat: Seat) -> JoinResult:
        await self._pace()
        async with self.joining:
            client = LoadClient(seat.url, seat.room, seat.name, seat.role, self.media)
            try:
                await client.join(self.join_timeout, seat.wait_for_media)
            except JoinFailed as failure:
                await client.close()
                return JoinResult(seat.key, None, failure.code, client.join_phases)
            except Exception as exc:  # aiortc's, say: one client fails, not the worker
                await client.close()
                return JoinResult(seat.key, None, f"client_error {type(exc).__name__}")
            self.clients[seat.key] = (seat, client)
            seconds = client.join_time if seat.wait_for_media else None
            return JoinResult(seat.key, seconds, phases=client.join_phases)

    async def _leave(self, keys: tuple[str, ...]) -> int:
        leaving = [self.clients.pop(key) for key in keys if key in self.clients]
        for _, client in leaving:
            self._retire(client)
        await asyncio.gather(*(client.leave() for _, client in leaving))
        return len(leaving)

    def _retire(self, client: LoadClient) -> None:
        self.retired.audio += client.totals("audio")
        self.retired.video += client.totals("video")
        self.retired.errors.update(client.errors)
        if client.video_track is not None:
            self.retired.keyframes_sent += client.video_track.keyframes_sent

    async def _close_all(self) -> None:
        clients = [client for _, client in self.clients.values()]
        self.clients.clear()
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)

    # -- figures ------------------------------------------------------------------

    def _snapshot(self) -> WorkerStats:
        now = time.monotonic()
        stats = WorkerStats(
            audio=StreamTotals(**vars(self.retired.audio)),
            video=StreamTotals(**vars(self.retired.video)),
            errors=Counter(self.retired.errors),
            keyframes_sent=self.retired.keyframes_sent,
        )
        for seat, client in self.clients.values():
            stats.clients += 1
            if not client.errors and (client.receiving(now) or not seat.receives):
                stats.held += 1
            else:
                stats.silent.append(seat.key)
            stats.audio += client.totals("audio")
            stats.video += client.totals("video")
            stats.jitters_ms += client.jitters_ms(now)
            stats.errors.update(client.errors)
            if client.video_track is not None:
                stats.keyframes_sent += client.video_track.keyframes_sent
        stats.loop_lag_ms, self.lags = self.lags, []
        stats.unhandled = Counter(self.unhandled)
        return stats
