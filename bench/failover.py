"""Failover time: how long the people of a meeting are without it when a server process
or a media node dies.

A deployment (PostgreSQL, Redis, 2 server processes behind HAProxy, 2 Janus nodes) is
started in a private network namespace. Each round makes a meeting of N aiortc bots
(all publishing, all connected through HAProxy), then:

- `kill9`: the process that holds the room gets SIGKILL. Per bot: time from the kill to
  its `joined` (resumed) on the process that took the room over; and the longest gap in
  the video it receives around the kill (the Janus session is claimed: media should not
  stop at all).
- `drain`: the same process gets SIGTERM (a rolling restart).
- `node`: the Janus node of the meeting gets SIGKILL. Per bot: time from the kill to the
  first new video frame from each other bot (everyone renegotiates on the other node).

The killed process or node is started again between rounds. Prints p50/p95/max per case.

Run as root:
    .venv/bin/python bench/failover.py [--rounds 10] [--bots 4] [--cases kill9,drain,node]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import redis.asyncio as aioredis

from visio.client import PcmAudioTrack, TestPatternTrack, VisioClient
from visio.testing.cluster import Deployment
from visio.testing.process import stop_process

LIMITS = {"joins_per_minute": 100_000, "room_creations_per_minute": 100_000}


class FrameGaps:
    """The longest pause between two video frames a bot received from another."""

    def __init__(self, bot: VisioClient, other: str) -> None:
        self.last = time.monotonic()
        self.longest = 0.0
        received = bot.received.get((other, "camera", "video"))
        if received is not None:
            received.listeners.append(self._frame)

    def _frame(self, _frame: object) -> None:
        now = time.monotonic()
        self.longest = max(self.longest, now - self.last)
        self.last = now


async def meeting(deployment: Deployment, bots: int) -> tuple[str, list[VisioClient]]:
    room = deployment.create_room()
    clients = []
    for n in range(bots):
        client = VisioClient(deployment.base_url, room, f"Bot {n}")
        await client.connect()
        await client.publish([PcmAudioTrack(), TestPatternTrack()])
        clients.append(client)
    for client in clients:
        for other in clients:
            if other is not client:
                await client.wait_frames(other.id, "video", count=5, timeout=30)
    return room, clients


async def room_meta(deployment: Deployment, room: str) -> tuple[str, dict]:
    redis = aioredis.Redis.from_url(deployment.redis.url, decode_responses=True)
    try:
        owner = await redis.get(f"visio:room:{room}:owner")
        meta = json.loads(await redis.hget(f"visio:room:{room}:meeting", "meta"))
    finally:
        await redis.aclose()
    return owner, meta


def process_id(server) -> str | None:
    if server.process is None or server.process.poll() is not None:
        return None
    with urllib.request.urlopen(server.base_url + "/healthz", timeout=2) as reply:
        return json.loads(reply.read())["process"]


async def one_round(deployment: Deployment, case: str, bots: int) -> dict[str, list[float]]:
    room, clients = await meeting(deployment, bots)
    owner, meta = await room_meta(deployment, room)
    since = {c: len(c.frames) for c in clients}
    gaps = [FrameGaps(clients[0], other.id) for other in clients[1:]]
    seen = {c: {o.id: c.frames_from(o.id) for o in clients if o is not c} for c in clients}
    if case == "node":
        (target,) = [n for n in deployment.nodes if n.url == meta["rooms"][0]["node"]]
        started = time.monotonic()
        target.kill()
    else:
        (target,) = [s for s in deployment.servers if process_id(s) == owner]
        started = time.monotonic()
        if case == "kill9":
            stop_process(target.process, 0, signal.SIGKILL)
        else:
            target.process.send_signal(signal.SIGTERM)

    async def back(client: VisioClient) -> float:
        if case == "node":
            for other in clients:
                if other is not client:
                    await client.wait_frames(
                        other.id, "video", count=seen[client][other.id] + 1, timeout=30
                    )
        else:
            await client.wait_for(lambda f: f["type"] == "joined", timeout=30, since=since[client])
        return time.monotonic() - started

    times = await asyncio.gather(*(back(c) for c in clients))
    await asyncio.sleep(1.0)
    result = {"times": list(times), "gaps": [g.longest for g in gaps]}
    for client in clients:
        await client.leave()
    if case == "node":
        target.start()
    else:
        stop_process(target.process, 15)
        target.start()
        deployment.wait_balanced()
    await asyncio.sleep(1.0)
    return result


async def run(args: argparse.Namespace) -> None:
    deployment = Deployment(servers=2, nodes=2, sign_in=False, reconnect_grace_s=15, **LIMITS)
    deployment.start()
    try:
        rows = []
        for case in args.cases.split(","):
            times: list[float] = []
            gaps: list[float] = []
            for _ in range(args.rounds):
                result = await one_round(deployment, case, args.bots)
                times += result["times"]
                gaps += result["gaps"]
            stats = h.summary(times)
            rows.append(
                [
                    case,
                    len(times),
                    f"{stats['median']:.2f} s",
                    f"{h.percentile(times, 0.95):.2f} s",
                    f"{max(times):.2f} s",
                    f"{max(gaps):.2f} s" if case != "node" else "-",
                ]
            )
        print(
            h.table(
                ["case", "n", "p50", "p95", "max", "longest video gap"],
                rows,
                title=f"Failover, {args.bots} bots a meeting, {args.rounds} rounds ({h.machine()})",
            )
        )
    finally:
        deployment.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--bots", type=int, default=4)
    parser.add_argument("--cases", default="kill9,drain,node")
    args = parser.parse_args()
    h.setup()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
