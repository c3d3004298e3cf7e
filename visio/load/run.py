"""A load run: bring participants in by steps, hold, measure, stop when quality falls.

Every run is bounded: in participants (`max_participants`), in time (`max_seconds`,
checked before each step and enforced around the whole run), and every join and every
answer from a worker has a timeout. A fixed run is a ramp of one step.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from visio.load.media import encode_media
from visio.load.pool import PoolStats, WorkerLost, WorkerPool
from visio.load.report import Limits, Report, Step, judge, median, percentile
from visio.load.resources import MachineUsage, Watched, Window, watch
from visio.load.rooms import RoomRefused
from visio.load.scenarios import MeetingShape, SmallMeetings, Webinar
from visio.load.seats import JoinResult, Seat


@dataclass
class Plan:
    urls: list[str]
    scenario: str = "small"
    participants: int = 30  # a fixed run's size, a ramp's first step, churn's population
    ramp: bool = False
    step: int = 30
    max_participants: int = 600
    hold_s: float = 15.0
    settle_s: float = 3.0
    shape: MeetingShape = field(default_factory=MeetingShape)
    churn_per_s: float = 1.0  # participants replaced (one leaves, one joins) per second
    workers: int = 2
    join_rate: float = 10.0  # joins started per second, all workers together
    join_concurrency: int = 8  # joins in flight per worker
    join_timeout_s: float = 15.0
    max_seconds: float = 900.0
    limits: Limits = field(default_factory=Limits)
    server_pids: list[int] = field(default_factory=list)
    janus_pids: list[int] = field(default_factory=list)

    @classmethod
    def from_options(
        cls, options: Any, urls: list[str], server_pids: list[int], janus_pids: list[int]
    ) -> Plan:
        """The plan that the options of `visio load` (and of the benches) describe."""
        return cls(
            urls=urls,
            scenario=options.scenario,
            participants=options.participants,
            ramp=options.ramp,
            step=options.step,
            max_participants=options.max_participants,
            hold_s=options.hold,
            settle_s=options.settle,
            shape=MeetingShape(options.meeting_size, options.cameras, options.turn),
            churn_per_s=options.churn_rate,
            workers=options.workers,
            join_rate=options.join_rate,
            join_timeout_s=getattr(options, "join_timeout", cls.join_timeout_s),
            max_seconds=options.max_seconds,
            limits=Limits(options.loss_limit, options.join_p95_limit),
            server_pids=server_pids,
            janus_pids=janus_pids,
        )


async def run(plan: Plan, progress=print) -> Report:
    """Run the plan; the report is complete even when the deadline cuts it short."""
    media = encode_media()
    pool = WorkerPool(
        plan.workers, media, plan.join_concurrency, plan.join_timeout_s, plan.join_rate
    )
    runner = _Runner(plan, pool, progress)
    try:
        await pool.start()
        runner.watched = (
            watch("server", plan.server_pids)
            + watch("janus", plan.janus_pids)
            + watch("client", pool.pids)
        )
        await asyncio.wait_for(runner.ramp(), plan.max_seconds)
    except TimeoutError:
        runner.stopped_because = f"the run's time limit ({plan.max_seconds:.0f} s)"
    except (RoomRefused, WorkerLost) as exc:
        runner.stopped_because = str(exc)
    finally:
        await pool.stop()
    return Report(
        scenario=plan.scenario,
        shape=_shape(plan),
        urls=plan.urls,
        steps=runner.steps,
        stopped_because=runner.stopped_because,
        media=f"VP8 {media.video_kbps:.0f} kbit/s at {media.fps} fps, "
        f"Opus {media.speech_kbps:.0f} kbit/s talking, DTX silent",
    )


def _shape(plan: Plan) -> str:
    shape = plan.shape
    if plan.scenario == "webinar":
        return "one speaker (camera + microphone), viewers publish nothing"
    meetings = (
        f"meetings of {shape.size}, every microphone on (DTX), one talker at a time "
        f"({shape.turn_s:.0f} s turns), {shape.cameras} cameras at 320x180"
    )
    if plan.scenario == "churn":
        return f"{meetings}; {plan.churn_per_s:g} participants replaced per second"
    return meetings


class _Runner:
    def __init__(self, plan: Plan, pool: WorkerPool, progress) -> None:
        self.plan, self.pool, self.progress = plan, pool, progress
        self.watched: list[Watched] = []
        self.steps: list[Step] = []
        self.live: list[str] = []  # keys of joined seats
        self.stopped_because = "not started"
        self.started = time.monotonic()
        if plan.scenario == "webinar":
            self.scenario: SmallMeetings | Webinar = Webinar(plan.urls)
        else:
            self.scenario = SmallMeetings(plan.urls, plan.shape)

    async def ramp(self) -> None:
        plan = self.plan
        size = min(plan.participants, plan.max_participants)
        while True:
            joins = await self._bring_in(size - len(self.live))
            churn = plan.scenario == "churn"
            # Under churn, the joins judged are the replacements (and the fill's failures).
            step = await self._measure([r for r in joins if r.error] if churn else joins, churn)
            self.steps.append(step)
            self.progress(_progress_line(step))
            if not step.good:
                self.stopped_because = "quality fell: " + "; ".join(step.problems)
                if step.clients_saturated:
                    self.stopped_because += " (the load clients were saturated)"
                return
            if not plan.ramp:
                self.stopped_because = "fixed run done"
                return
            if size >= plan.max_participants:
                self.stopped_because = f"reached the maximum ({plan.max_participants})"
                return
            if self._time_left() < 2 * (plan.settle_s + plan.hold_s) + plan.join_timeout_s:
                self.stopped_because = "no time left for another step"
                return
            size = min(size + plan.step, plan.max_participants)

    def _time_left(self) -> float:
        return self.plan.max_seconds - (time.monotonic() - self.started)

    async def _bring_in(self, count: int) -> list[JoinResult]:
        results: list[JoinResult] = []
        if count <= 0:
            return results
        for batch in await self.scenario.add(count):
            joined = await self.pool.join(batch)
            self.live += [r.key for r in joined if r.error is None]
            results += joined
        return results

    async def _measure(self, joins: list[JoinResult], churn: bool) -> Step:
        await asyncio.sleep(self.plan.settle_s)
        before = await self.pool.snapshot()
        window = Window(self.watched)
        if churn:
            joins = joins + await self._churn(self.plan.hold_s)
        else:
            await asyncio.sleep(self.plan.hold_s)
        after = await self.pool.snapshot()
        usages, wall, machine = window.close()
        return _step(joins, before, after, usages, wall, machine, self.plan.limits)

    async def _churn(self, seconds: float) -> list[JoinResult]:
        """Replace participants at the plan's rate for `seconds`; the joins it made."""
        assert isinstance(self.scenario, SmallMeetings)
        results: list[JoinResult] = []
        in_flight: set[asyncio.Task[None]] = set()

        async def replace(key: str) -> None:
            await self.pool.leave([key])
            newcomer: Seat = self.scenario.replacement(key)  # type: ignore[union-attr]
            joined = await self.pool.join([newcomer])
            results.extend(joined)
            self.live += [r.key for r in joined if r.error is None]

        period = 1 / self.plan.churn_per_s
        deadline = time.monotonic() + seconds
        next_at = time.monotonic()
        while next_at < deadline and self.live:
            key = self.live.pop(random.randrange(len(self.live)))
            task = asyncio.create_task(replace(key))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*in_flight, return_exceptions=True),
                self.plan.join_timeout_s + 10,
            )
        return results


def _step(
    joins: list[JoinResult],
    before: PoolStats,
    after: PoolStats,
    usages,
    wall: float,
    machine: MachineUsage,
    limits: Limits,
) -> Step:
    start, end = before.total, after.total
    audio, video = end.audio.minus(start.audio), end.video.minus(start.video)
    times = [r.seconds for r in joins if r.seconds is not None]
    failures = Counter(r.error for r in joins if r.error is not None)
    janus_seconds = sum(u.cpu_seconds for u in usages if u.role == "janus")
    received = audio.packets + video.packets
    step = Step(
        participants=end.clients,
        held=end.held,
        joins=len(joins),
        join_failures=dict(failures),
        join_p50_s=median(times),
        join_p95_s=percentile(times, 0.95),
        join_max_s=max(times, default=float("nan")),
        window_s=wall,
        audio_packets_per_s=audio.packets / wall,
        video_packets_per_s=video.packets / wall,
        video_frames_per_s=video.frames / wall,
        loss_percent=_loss(audio.expected + video.expected, received),
        audio_loss_percent=_loss(audio.expected, audio.packets),
        video_loss_percent=_loss(video.expected, video.packets),
        jitter_median_ms=median(end.jitters_ms),
        jitter_p95_ms=percentile(end.jitters_ms, 0.95),
        errors=dict(end.errors - start.errors),
        keyframes_per_s=(end.keyframes_sent - start.keyframes_sent) / wall,
        processes=usages,
        machine_busy_percent=machine.busy_percent,
        softirq_percent=machine.softirq_percent,
        others_percent=max(  # the two clocks differ by a tick or two: never below 0
            0.0,
            machine.busy_percent * machine.cores
            - machine.softirq_percent
            - sum(u.cpu_percent for u in usages),
        ),
        client_lag_p95_ms=percentile(end.loop_lag_ms, 0.95),
        janus_packets_per_core_s=received / janus_seconds if janus_seconds > 0 else float("nan"),
        join_phases=_phases([r for r in joins if r.seconds is not None]),
        unhandled=dict(end.unhandled - start.unhandled),
        silent=end.silent[:10],
    )
    judge(step, limits)
    return step


PHASES = ("open", "joined", "offer", "published", "media")


def _phases(joins: list[JoinResult]) -> dict[str, tuple[float, float]]:
    phases = {}
    for name in PHASES:
        times = [r.phases[name] for r in joins if name in r.phases]
        if times:
            phases[name] = (median(times), percentile(times, 0.95))
    return phases


def _loss(expected: int, received: int) -> float:
    if expected <= 0:
        return 0.0
    return 100.0 * max(0, expected - received) / expected


def _progress_line(step: Step) -> str:
    verdict = "ok" if step.good else "; ".join(step.problems)
    return (
        f"  {step.held}/{step.participants} held, join p95 {step.join_p95_s:.2f} s, "
        f"loss {step.loss_percent:.2f} %, janus {step.cpu('janus'):.0f} %, "
        f"clients {step.cpu('client'):.0f} %: {verdict}"
    )
