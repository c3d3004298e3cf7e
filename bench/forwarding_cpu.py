"""Forwarding cost: CPU of Janus and of the visio server per forwarded stream.

One publisher bot (Opus tone + 320x240 VP8 test pattern at 15 fps) and N subscriber bots
(not publishing) in one room. After every subscriber decodes video, the bench waits for
things to settle, then measures over a steady window (30 s by default), with psutil
cpu_times deltas:

- Janus CPU (% of one core) — and the same net of a baseline window measured with the
  publisher alone — per forwarded stream (N x 2 tracks) and per subscriber;
- the visio server process CPU per participant (it only relays signalling and pings);
- the bots' own CPU: the subscribers run in the bench process (N aiortc receivers that
  decode), the publisher in a child process of its own (so that the subscribers' loop
  cannot slow its pacing) — and the whole machine's busy %, so a reader sees whether
  the machine was saturated;
- frames received by the subscribers during the window (video fps, audio frames/s),
  which shows whether the streams were really flowing at full rate.

Run as root (it makes a private network namespace):
    .venv/bin/python bench/forwarding_cpu.py [--subscribers 30] [--window 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import psutil

from visio.client import PcmAudioTrack, TestPatternTrack, VisioClient
from visio.testing.server import ServerProcess


class Window:
    """CPU seconds of some processes and of the whole machine between start() and stop()."""

    def __init__(self, processes: dict[str, psutil.Process]) -> None:
        self.processes = processes

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.cpu0 = {name: h.cpu_seconds(p) for name, p in self.processes.items()}
        self.sys0 = psutil.cpu_times()

    def stop(self) -> None:
        self.wall = time.monotonic() - self.t0
        self.cpu = {name: h.cpu_seconds(p) - self.cpu0[name] for name, p in self.processes.items()}
        sys1 = psutil.cpu_times()
        total = sum(sys1) - sum(self.sys0)
        idle = (sys1.idle + getattr(sys1, "iowait", 0)) - (
            self.sys0.idle + getattr(self.sys0, "iowait", 0)
        )
        self.machine_busy = 100.0 * (1 - idle / total) if total > 0 else float("nan")

    def percent(self, name: str) -> float:
        """% of one core."""
        return 100.0 * self.cpu[name] / self.wall


async def publisher_child(base_url: str, room: str) -> int:
    """The publisher, in a process of its own so that the subscribers' event loop load
    cannot slow its pacing (aiortc's sender encodes one frame at a time: on a congested
    loop it falls behind 50 audio frames/s). Line protocol on stdin/stdout."""
    publisher = VisioClient(base_url, room, "Publisher")
    await publisher.connect()
    await publisher.publish([PcmAudioTrack(), TestPatternTrack()])
    await publisher.wait_for(
        lambda f: f["type"] == "media" and f["target"] == "camera" and f["state"] == "up", 20
    )
    print(json.dumps({"id": publisher.id}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if line.strip() == "stats":
            sent = await rtp_packets(publisher.publishers.get("camera"), "outbound")
            print(json.dumps(sent), flush=True)
        else:  # "quit" or end of input
            break
    await publisher.leave()
    return 0


class PublisherProcess:
    def __init__(self, server: ServerProcess, room: str) -> None:
        self.server, self.room = server, room

    async def start(self) -> str:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--publisher-child",
            self.server.base_url,
            self.room,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self.process = psutil.Process(self.proc.pid)
        return str((await self._read())["id"])

    async def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        if not line:
            raise RuntimeError("the publisher process ended")
        return json.loads(line)

    async def sent(self) -> dict[str, int]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        return await self._read()

    async def stop(self) -> None:
        if self.proc.returncode is not None:
            return
        assert self.proc.stdin is not None
        with contextlib.suppress(ConnectionError):
            self.proc.stdin.write(b"quit\n")
            await self.proc.stdin.drain()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def join_subscriber(server: ServerProcess, room: str, publisher: str, i: int) -> VisioClient:
    client = VisioClient(server.base_url, room, f"Subscriber {i}", audio=False, video=False)
    await client.connect()
    await client.wait_frames(publisher, "video", timeout=30)
    await client.wait_frames(publisher, "audio", timeout=30)
    return client


async def rtp_packets(pc, direction: str) -> dict[str, int]:
    """Packets sent (outbound-rtp) or received (inbound-rtp) per kind, from aiortc stats."""
    totals = {"audio": 0, "video": 0}
    if pc is None:
        return totals
    report = await pc.getStats()
    for stats in report.values():
        if stats.type == f"{direction}-rtp":
            field = "packetsSent" if direction == "outbound" else "packetsReceived"
            totals[stats.kind] += int(getattr(stats, field, 0) or 0)
    return totals


async def packet_counts(publisher: PublisherProcess, subscribers: list[VisioClient]):
    sent = await publisher.sent()
    received = [await rtp_packets(c.subscriber, "inbound") for c in subscribers]
    return sent, received


def counts(subscribers: list[VisioClient], publisher: str) -> list[tuple[int, int]]:
    return [
        (c.frames_from(publisher, "video"), c.frames_from(publisher, "audio")) for c in subscribers
    ]


async def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    server = h.start_server(max_participants=max(100, args.subscribers + 10))
    bench = psutil.Process()
    processes = {
        "janus": h.janus_process(server),
        "server": h.server_process(server),
        "bench": bench,
    }
    publisher: PublisherProcess | None = None
    subscribers: list[VisioClient] = []
    try:
        room = server.create_room()
        publisher = PublisherProcess(server, room)
        publisher_id = await publisher.start()
        processes["publisher"] = publisher.process
        print(f"server {server.base_url}, room {room}, janus pid {processes['janus'].pid}")

        await asyncio.sleep(2)
        baseline = Window(processes)
        baseline.start()
        await asyncio.sleep(args.baseline)
        baseline.stop()
        print(
            f"baseline ({args.baseline:.0f} s, publisher alone): janus "
            f"{baseline.percent('janus'):.2f} %, server {baseline.percent('server'):.2f} %, "
            f"publisher bot {baseline.percent('publisher'):.1f} %, "
            f"bench {baseline.percent('bench'):.1f} %"
        )

        t_join = time.monotonic()
        for start in range(0, args.subscribers, args.batch):
            batch = range(start, min(start + args.batch, args.subscribers))
            results = await asyncio.gather(
                *(join_subscriber(server, room, publisher_id, i) for i in batch),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    print(f"  a subscriber failed to join: {result!r}")
                else:
                    subscribers.append(result)
        print(
            f"{len(subscribers)}/{args.subscribers} subscribers decoding video "
            f"after {time.monotonic() - t_join:.1f} s; settling {args.settle:.0f} s"
        )
        await asyncio.sleep(args.settle)

        before = counts(subscribers, publisher_id)
        packets0 = await packet_counts(publisher, subscribers)
        rss_janus0 = h.rss(processes["janus"])
        window = Window(processes)
        window.start()
        await asyncio.sleep(args.window)
        window.stop()
        after = counts(subscribers, publisher_id)
        packets1 = await packet_counts(publisher, subscribers)
        rss_janus = h.rss(processes["janus"])
        rss_server = h.rss(processes["server"])
        still_connected = sum(
            1 for c in subscribers if c.subscriber and c.subscriber.connectionState == "connected"
        )
    finally:
        for client in subscribers:
            try:
                await asyncio.wait_for(client.leave(), 5)
            except Exception as exc:
                print(f"  leave failed: {exc!r}")
        if publisher is not None:
            await publisher.stop()
        code = server.stop()

    n = len(subscribers)
    streams = 2 * n
    video_fps = [(a[0] - b[0]) / window.wall for a, b in zip(after, before, strict=True)]
    audio_fps = [(a[1] - b[1]) / window.wall for a, b in zip(after, before, strict=True)]
    wall = window.wall
    sent = {k: (packets1[0][k] - packets0[0][k]) / wall for k in ("audio", "video")}
    got = {
        k: [(b[k] - a[k]) / wall for a, b in zip(packets0[1], packets1[1], strict=True)]
        for k in ("audio", "video")
    }
    janus = window.percent("janus")
    janus_net = janus - baseline.percent("janus")
    server_cpu = window.percent("server")
    participants = n + 1

    print()
    print(
        f"Forwarding CPU — 1 publisher, {n} subscribers, {window.wall:.1f} s window — {h.machine()}"
    )
    rows = [
        ["Janus CPU, % of a core", janus, "net of publisher-alone baseline:", janus_net],
        ["Janus CPU per forwarded stream (%)", janus / streams, "net:", janus_net / streams],
        ["Janus CPU per subscriber (%)", janus / n, "net:", janus_net / n],
        ["visio server CPU, % of a core", server_cpu, "baseline:", baseline.percent("server")],
        ["visio server CPU per participant (%)", server_cpu / participants, "", ""],
        [
            "subscriber bots CPU, % of a core",
            window.percent("bench"),
            "per subscriber:",
            window.percent("bench") / max(1, n),
        ],
        ["publisher bot CPU, % of a core", window.percent("publisher"), "", ""],
        ["machine busy, % of all cores", window.machine_busy, "cores:", psutil.cpu_count()],
        ["Janus RSS (MiB)", rss_janus / 2**20, "at window start:", rss_janus0 / 2**20],
        ["visio server RSS (MiB)", rss_server / 2**20, "", ""],
    ]
    print(h.table(["figure", "value", "", ""], rows))
    print(
        h.table(
            ["received per subscriber", "median", "min", "max"],
            [
                [
                    "video frames/s (sent: 15)",
                    statistics.median(video_fps),
                    min(video_fps),
                    max(video_fps),
                ],
                [
                    "audio frames/s (sent: 50)",
                    statistics.median(audio_fps),
                    min(audio_fps),
                    max(audio_fps),
                ],
                [
                    f"video RTP packets/s (publisher sent {sent['video']:.1f})",
                    statistics.median(got["video"]),
                    min(got["video"]),
                    max(got["video"]),
                ],
                [
                    f"audio RTP packets/s (publisher sent {sent['audio']:.1f})",
                    statistics.median(got["audio"]),
                    min(got["audio"]),
                    max(got["audio"]),
                ],
            ],
        )
    )
    print(
        f"forwarded streams: {streams} ({n} subscribers x audio+video); subscribers still "
        f"connected at the end: {still_connected}/{n}"
    )
    if window.machine_busy > 85:
        print("WARNING: the machine was close to saturation; figures are pessimistic")
    print(f"total {time.monotonic() - started:.0f} s; server exit code {code}")
    h.print_logs(server)
    return 0 if n == args.subscribers else 1


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=30, help="subscriber bots (30)")
    parser.add_argument("--window", type=float, default=30.0, help="measure window, s (30)")
    parser.add_argument("--baseline", type=float, default=10.0, help="publisher alone, s (10)")
    parser.add_argument("--settle", type=float, default=5.0, help="wait after joins, s (5)")
    parser.add_argument("--batch", type=int, default=5, help="subscribers joining at once (5)")
    return parser.parse_args()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--publisher-child":
        sys.exit(asyncio.run(publisher_child(sys.argv[2], sys.argv[3])))
    arguments = parse()
    h.setup()
    sys.exit(asyncio.run(main(arguments)))
