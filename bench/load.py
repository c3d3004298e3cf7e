"""Load: how many participants one server and its Janus hold, with the `visio load` clients.

Starts a real `visio serve` (embedded Janus, generous per-address limits) in the bench's
network namespace, runs the load tool against it (pre-encoded media, packets counted not
decoded, clients spread over worker processes), and prints its report: participants
held, join p50/p95, loss, jitter, CPU and RSS of the server, Janus and the load clients,
and Janus packets forwarded per second per core.

    .venv/bin/python bench/load.py --ramp                       # small meetings, +30 a step
    .venv/bin/python bench/load.py --scenario webinar --participants 100
    .venv/bin/python bench/load.py --scenario churn --participants 60 --churn-rate 2
    .venv/bin/python bench/load.py --event-loops 0,1,2 --participants 120   # Janus setting

With several `--event-loops` values, the same fixed load runs against a fresh server for
each (0 = Janus' default thread per handle) and a comparison table ends the output.

`--client-cost N` checks what the load clients are for: one speaker (a load client in a
worker process), then N decoding aiortc bots (`VisioClient`), then N counting load
clients, each set in this process alone; this process's CPU per subscriber for each.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import psutil

from visio.client import VisioClient
from visio.load.client import LoadClient, Role
from visio.load.media import ALWAYS_TALKING, encode_media
from visio.load.pool import WorkerPool
from visio.load.report import Report, render
from visio.load.run import Plan, run
from visio.load.scenarios import Webinar

# Every client comes from one address: the per-address limits must not get in the way
# (loopback listed with no limit), nor the busy valve.
GENEROUS_LIMITS = {
    "room_creations_per_minute": 100_000,
    "joins_per_minute": 100_000,
    "lobby_requests_per_minute": 100_000,
    "limit_networks": '{"127.0.0.0/8": 0}',
    "max_joins_per_second": 10_000,
}


def loops_label(event_loops: int | None) -> str:
    if event_loops is None:
        return "default (half the cores)"
    return str(event_loops) if event_loops else "0 (thread per handle)"


async def measure(args: argparse.Namespace, event_loops: int | None) -> Report:
    settings = {} if event_loops is None else {"janus_event_loops": event_loops}
    server = h.start_server(
        max_participants=max(100, args.max_participants + 10), **GENEROUS_LIMITS, **settings
    )
    try:
        janus = h.janus_process(server)
        print(
            f"server {server.base_url} (pid {server.process.pid}), janus pid {janus.pid}, "
            f"event_loops {loops_label(event_loops)}"
        )
        plan = Plan.from_options(args, [server.base_url], [server.process.pid], [janus.pid])
        report = await run(plan)
    finally:
        code = server.stop()
    print(render(report))
    print(f"server exit code {code}")
    h.print_logs(server)
    return report


def compare(reports: dict[int | None, Report]) -> str:
    rows = []
    for loops, report in reports.items():
        step = report.steps[-1] if report.steps else None
        if step is None:
            rows.append([loops_label(loops), "-", "-", "-", "-", "-", "-"])
            continue
        streams = (step.audio_packets_per_s + step.video_packets_per_s) / 1000
        rows.append(
            [
                loops_label(loops),
                f"{step.held}/{step.participants}",
                step.cpu("janus"),
                step.janus_packets_per_core_s,
                step.cpu("janus") / streams if streams else float("nan"),
                step.loss_percent,
                step.machine_busy_percent,
            ]
        )
    return h.table(
        [
            "event_loops",
            "held",
            "Janus CPU %",
            "Janus pkt/s per core",
            "Janus % of a core per 1000 pkt/s",
            "loss %",
            "machine busy %",
        ],
        rows,
        title="Janus event_loops, same load",
    )


async def own_cpu(seconds: float) -> float:
    """% of a core this process used over the next `seconds`."""
    me = psutil.Process()
    before, t0 = h.cpu_seconds(me), time.monotonic()
    await asyncio.sleep(seconds)
    return 100 * (h.cpu_seconds(me) - before) / (time.monotonic() - t0)


async def client_cost(args: argparse.Namespace) -> int:
    n = args.client_cost
    server = h.start_server(max_participants=n + 10, **GENEROUS_LIMITS)
    media = encode_media()
    pool = WorkerPool(1, media)
    try:
        await pool.start()
        webinar = Webinar([server.base_url])
        (speaker,), _ = await webinar.add(1)
        await pool.join([speaker])
        room = webinar.room
        assert room is not None
        await asyncio.sleep(2)
        idle = await own_cpu(5)

        bots = [
            VisioClient(server.base_url, room, f"Bot {i}", audio=False, video=False)
            for i in range(n)
        ]
        for bot in bots:
            await bot.connect()
        speaker_id = next(iter(bots[0].participants))
        for bot in bots:
            await bot.wait_frames(speaker_id, "video", timeout=30)
        await asyncio.sleep(args.settle)
        decoded = sum(bot.frames_from(speaker_id, "video") for bot in bots)
        decoding = await own_cpu(args.hold)
        decoded = sum(bot.frames_from(speaker_id, "video") for bot in bots) - decoded
        decoded_fps = decoded / args.hold / n
        for bot in bots:
            await bot.leave()
        await asyncio.sleep(2)

        silent = Role(camera=False, microphone=False, schedule=ALWAYS_TALKING)
        viewers = [
            LoadClient(server.base_url, room, f"Viewer {i}", silent, media) for i in range(n)
        ]
        for viewer in viewers:
            await viewer.join(15, expect_media=True)
        await asyncio.sleep(args.settle)
        counted = sum(v.totals("video").frames for v in viewers)
        counting = await own_cpu(args.hold)
        counted = sum(v.totals("video").frames for v in viewers) - counted
        counted_fps = counted / args.hold / n
        for viewer in viewers:
            await viewer.leave()
    finally:
        await pool.stop()
        server.stop()
    print(
        h.table(
            ["subscribers in this process", "CPU % of a core", "per subscriber", "video fps each"],
            [
                ["none (baseline)", idle, "", ""],
                [f"{n} decoding aiortc bots", decoding, (decoding - idle) / n, decoded_fps],
                [f"{n} counting load clients", counting, (counting - idle) / n, counted_fps],
            ],
            title=f"Client cost, one speaker (VP8 {media.video_kbps:.0f} kbit/s + Opus)",
        )
    )
    return 0


async def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    print(h.machine())
    if args.client_cost:
        return await client_cost(args)
    reports: dict[int | None, Report] = {}
    for loops in args.event_loops:
        reports[loops] = await measure(args, loops)
    if len(reports) > 1:
        print(compare(reports))
    print(f"total {time.monotonic() - started:.0f} s")
    return 0 if all(r.steps for r in reports.values()) else 1


def add_load_options(
    parser: argparse.ArgumentParser, participants: int, max_seconds: float
) -> None:
    """The options of a load run (Plan.from_options reads them), shared with cluster_load."""
    parser.add_argument("--scenario", choices=("small", "webinar", "churn"), default="small")
    parser.add_argument(
        "--participants", type=int, default=participants, help="fixed run / first step"
    )
    parser.add_argument("--ramp", action="store_true", help="add --step until quality falls")
    parser.add_argument("--step", type=int, default=30)
    parser.add_argument("--max-participants", type=int, default=600)
    parser.add_argument("--hold", type=float, default=15.0, help="measuring window, s (15)")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--meeting-size", type=int, default=6)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--turn", type=float, default=10.0)
    parser.add_argument("--churn-rate", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2, help="load processes (2)")
    parser.add_argument("--join-rate", type=float, default=10.0, help="joins per second (10)")
    parser.add_argument("--max-seconds", type=float, default=max_seconds, help="per run, s")
    parser.add_argument("--loss-limit", type=float, default=1.0)
    parser.add_argument("--join-p95-limit", type=float, default=1.0)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_load_options(parser, participants=30, max_seconds=900.0)
    parser.add_argument(
        "--client-cost",
        type=int,
        default=0,
        metavar="N",
        help="compare N decoding bots and N load clients",
    )
    parser.add_argument(
        "--event-loops",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[None],
        help="Janus event_loops to run with, e.g. 0,1,2 (default: the server's default)",
    )
    args = parser.parse_args()
    if len(args.event_loops) > 1 and args.ramp:
        parser.error("compare event_loops on a fixed load: drop --ramp")
    return args


if __name__ == "__main__":
    arguments = parse()
    h.setup()
    sys.exit(asyncio.run(main(arguments)))
