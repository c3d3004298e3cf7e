"""Cascade cost: the CPU of two Janus nodes when one publisher on node A is mirrored to a
room on node B (Janus 1.1 remote publishers) with N subscribers there, and the latency
the extra hop adds.

Two standalone Janus nodes (visio.testing.janus.JanusNodeProcess, the server's own
config) in the bench's network namespace; no visio server: the bench drives Janus
directly (visio.janus.cascade, visio.testing.janus_peers). The publisher (Opus tone +
320x240 VP8 at 15 fps, its frame number written in the picture) runs in a child process
of its own, the subscribers (aiortc, decoding) in the bench process. Steady windows,
psutil cpu_times deltas, % of one core:

  W0  publisher alone on A;
  W1  mirrored to B, nobody subscribed on B: what the remotization costs A, what an
      idle remote publisher costs B;
  W2  N subscribers on B: what B pays per forwarded stream from a remote publisher;
  W3  (--direct) the same N subscribers on A instead, for comparison.

Latency: one subscriber on A and one on B read the frame number of every decoded frame;
the difference of their arrival times is what the A -> B hop adds (same decoder, same
clock), and arrival minus the moment the child produced the frame is glass to glass.

Run as root (it makes a private network namespace):
    .venv/bin/python bench/cascade_cpu.py [--subscribers 20] [--window 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import av
import numpy as np
import psutil
from aiortc.mediastreams import MediaStreamTrack
from forwarding_cpu import Window, rtp_packets

from visio.client.media import PcmAudioTrack, _Paced
from visio.janus import videoroom
from visio.janus.cascade import FeedStream, extmap_id, list_remotes, mirror_publisher, unmirror
from visio.janus.client import JanusConnection, JanusHandle
from visio.testing.janus import JanusNodeProcess
from visio.testing.janus_peers import JanusPublisher, JanusSubscriber

ROOM_A, ROOM_B = 1, 2
PUBLISHER_TOKEN = "speaker"  # the rooms let no publisher in without a token on their list
WIDTH, HEIGHT, FPS = 320, 240, 15
BITS, CELL, BAND = 16, 20, 32  # the frame number: 16 cells of 20 px in the top 32 rows


class StampedTrack(MediaStreamTrack):
    """Grey frames with a moving bar and the frame number in black and white cells."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Paced(1 / FPS)
        self.stamps: dict[int, float] = {}

    async def recv(self) -> av.VideoFrame:
        index = await self._clock.next()
        pixels = np.full((HEIGHT * 3 // 2, WIDTH), 128, dtype=np.uint8)
        x = (index * 8) % (WIDTH - 40)
        pixels[BAND + 20 : HEIGHT - 20, x : x + 40] = 230
        for bit in range(BITS):
            value = 235 if index >> bit & 1 else 16
            pixels[:BAND, bit * CELL : (bit + 1) * CELL] = value
        self.stamps[index] = time.monotonic()
        frame = av.VideoFrame.from_ndarray(pixels, format="yuv420p")
        frame.pts = index * (90_000 // FPS)
        frame.time_base = fractions.Fraction(1, 90_000)
        return frame


def frame_number(frame: av.VideoFrame) -> int:
    luma = frame.reformat(format="yuv420p").to_ndarray()
    middle = BAND // 2
    cells = [
        luma[middle - 4 : middle + 4, b * CELL + 6 : b * CELL + 14].mean() for b in range(BITS)
    ]
    return sum(1 << b for b, level in enumerate(cells) if level > 128)


# -- the publisher, in a process of its own --------------------------------------------


async def publisher_child(url: str, secret: str) -> int:
    """Publishes in room ROOM_A of node A. Line protocol on stdin/stdout: "stats",
    "stamps", "quit"."""
    connection = JanusConnection(url, secret)
    await connection.connect()
    session = await connection.create_session()
    video = StampedTrack()
    publisher = JanusPublisher(session, ROOM_A, "Speaker", PUBLISHER_TOKEN)
    await publisher.publish([PcmAudioTrack(), video])
    print(
        json.dumps(
            {
                "feed": publisher.feed,
                "streams": [s.__dict__ for s in publisher.streams],
                "audiolevel": extmap_id(publisher.offer_sdp),
            }
        ),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line == "stats":
            print(json.dumps(await rtp_packets(publisher.pc, "outbound")), flush=True)
        elif line == "stamps":
            print(json.dumps(video.stamps), flush=True)
        else:
            break
    await publisher.close()
    await session.destroy()
    await connection.close()
    return 0


class PublisherProcess:
    async def start(self, node: JanusNodeProcess) -> dict:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--publisher-child",
            node.url,
            node.api_secret,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self.process = psutil.Process(self.proc.pid)
        return await self._read()

    async def ask(self, what: str) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{what}\n".encode())
        await self.proc.stdin.drain()
        return await self._read()

    async def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        if not line:
            raise RuntimeError("the publisher process ended")
        return json.loads(line)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            with contextlib.suppress(ConnectionError):
                self.proc.stdin.write(b"quit\n")
                await self.proc.stdin.drain()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# -- the bench ----------------------------------------------------------------------------


async def measure(processes: dict[str, psutil.Process], seconds: float) -> Window:
    window = Window(processes)
    window.start()
    await asyncio.sleep(seconds)
    window.stop()
    return window


async def join_all(handle: JanusHandle, room: int, feed: int, n: int, batch: int):
    joined: list[JanusSubscriber] = []

    async def one() -> JanusSubscriber:
        subscriber = JanusSubscriber(handle.session, room)
        joined.append(subscriber)
        await subscriber.join([feed])
        await subscriber.wait_frames("video", 1, timeout=30)
        await subscriber.wait_frames("audio", 1, timeout=30)
        return subscriber

    for start in range(0, n, batch):
        await asyncio.gather(*(one() for _ in range(start, min(start + batch, n))))
    return joined


@dataclass
class Flow:
    """What the publisher sent and each subscriber received, at one moment."""

    frames: list[dict[str, int]]
    sent: dict[str, int]
    got: list[dict[str, int]]

    @classmethod
    async def now(cls, publisher: PublisherProcess, subscribers: list[JanusSubscriber]) -> Flow:
        return cls(
            frames=[dict(s.frames) for s in subscribers],
            sent=await publisher.ask("stats"),
            got=[await rtp_packets(s.pc, "inbound") for s in subscribers],
        )


async def close_all(subscribers: list[JanusSubscriber]) -> None:
    for subscriber in subscribers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(subscriber.close(), 5)


def arrivals(subscriber: JanusSubscriber) -> dict[int, float]:
    """Frame number -> when its decoded frame arrived, for every frame from now on."""
    seen: dict[int, float] = {}

    def note(kind: str, frame) -> None:  # type: ignore[no-untyped-def]
        if kind == "video":
            seen.setdefault(frame_number(frame), time.monotonic())

    subscriber.listeners.append(note)
    return seen


async def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    a, b = JanusNodeProcess("cascade-a"), JanusNodeProcess("cascade-b")
    a.start()
    b.start()
    bench = psutil.Process()
    processes = {"A": psutil.Process(a.pid), "B": psutil.Process(b.pid), "bench": bench}
    publisher = PublisherProcess()
    on_b_subs: list[JanusSubscriber] = []
    on_a_subs: list[JanusSubscriber] = []
    windows: dict[str, Window] = {}
    try:
        async with a.videoroom() as on_a, b.videoroom() as on_b:
            options = videoroom.RoomOptions(publishers=10)
            await videoroom.create_room(on_a, ROOM_A, a.admin_key, options)
            await videoroom.create_room(on_b, ROOM_B, b.admin_key, options)
            await videoroom.allowed_tokens(on_a, ROOM_A, "add", {PUBLISHER_TOKEN})
            published = await publisher.start(a)
            processes["publisher"] = publisher.process
            feed = int(published["feed"])
            print(f"node A pid {a.pid}, node B pid {b.pid}, feed {feed}")
            await asyncio.sleep(2)
            windows["W0"] = await measure(processes, args.baseline)

            mirror = await mirror_publisher(
                on_a,
                ROOM_A,
                feed,
                on_b,
                ROOM_B,
                target_address=b.address,
                admin_key=a.admin_key,
                streams=[FeedStream(**s) for s in published["streams"]],
                display="Speaker",
                audiolevel_ext_id=published["audiolevel"],
            )
            assert len(await list_remotes(on_a, ROOM_A, feed)) == 1
            await asyncio.sleep(2)
            windows["W1"] = await measure(processes, args.baseline)

            t_join = time.monotonic()
            on_b_subs = await join_all(on_b, ROOM_B, mirror.target_feed, args.subscribers, 5)
            print(
                f"{len(on_b_subs)} subscribers on B decoding after "
                f"{time.monotonic() - t_join:.1f} s; settling {args.settle:.0f} s"
            )
            await asyncio.sleep(args.settle)
            before = await Flow.now(publisher, on_b_subs)
            windows["W2"] = await measure(processes, args.window)
            after = await Flow.now(publisher, on_b_subs)

            # Latency: one probe on A (direct) against one subscriber on B (cascaded).
            [probe_a] = await join_all(on_a, ROOM_A, feed, 1, 1)
            on_a_subs.append(probe_a)
            await asyncio.sleep(2)
            at_a, at_b = arrivals(probe_a), arrivals(on_b_subs[0])
            await asyncio.sleep(args.latency)
            stamps = {int(k): v for k, v in (await publisher.ask("stamps")).items()}
            await close_all(on_a_subs)
            on_a_subs = []

            if args.direct:
                await close_all(on_b_subs)
                await asyncio.sleep(2)
                on_a_subs = await join_all(on_a, ROOM_A, feed, args.subscribers, 5)
                await asyncio.sleep(args.settle)
                windows["W3"] = await measure(processes, args.window)
                await close_all(on_a_subs)
                on_a_subs = []

            await unmirror(on_a, on_b, mirror)
            left_on_b = await on_b.request({"request": "listparticipants", "room": ROOM_B})
    finally:
        await close_all(on_b_subs + on_a_subs)
        await publisher.stop()
        codes = (a.stop(), b.stop())

    report_cpu(args.subscribers, windows)
    report_flow(before, after, windows["W2"].wall)
    report_latency(at_a, at_b, stamps)
    print(f"after unmirror, participants left on B: {len(left_on_b.get('participants', []))}")
    print(f"total {time.monotonic() - started:.0f} s; node exit codes {codes}")
    for node in (a, b):
        print(f"{node.name} log: {node.log_path}")
    return 0 if len(on_b_subs) == args.subscribers else 1


def report_cpu(n: int, windows: dict[str, Window]) -> None:
    w0, w1, w2 = windows["W0"], windows["W1"], windows["W2"]
    streams = 2 * n
    print()
    print(f"Cascade CPU — 1 publisher on A mirrored to B, {n} subscribers on B — {h.machine()}")
    rows = [
        ["W0 publisher alone: node A / node B, % of a core", w0.percent("A"), w0.percent("B")],
        ["W1 mirrored, no subscriber on B: A / B", w1.percent("A"), w1.percent("B")],
        ["   the remotization on A (W1 - W0)", w1.percent("A") - w0.percent("A"), ""],
        ["   an idle remote publisher on B (W1 - W0)", w1.percent("B") - w0.percent("B"), ""],
        [f"W2 {n} subscribers on B: A / B", w2.percent("A"), w2.percent("B")],
        [
            f"   B per forwarded stream ({streams}), net of W1",
            (w2.percent("B") - w1.percent("B")) / streams,
            "",
        ],
        ["   bench (subscribers) / publisher bot", w2.percent("bench"), w2.percent("publisher")],
        ["   machine busy, % of all cores / cores", w2.machine_busy, psutil.cpu_count()],
    ]
    if "W3" in windows:
        w3 = windows["W3"]
        rows += [
            [f"W3 the {n} subscribers on A instead: A / B", w3.percent("A"), w3.percent("B")],
            [
                "   A per forwarded stream, net of W1",
                (w3.percent("A") - w1.percent("A")) / streams,
                "",
            ],
        ]
    print(h.table(["figure", "value", ""], rows))
    if w2.machine_busy > 85:
        print("WARNING: the machine was close to saturation; figures are pessimistic")


def report_flow(before: Flow, after: Flow, wall: float) -> None:
    def rates(kind: str) -> list[float]:
        pairs = zip(before.frames, after.frames, strict=True)
        return [(a[kind] - b[kind]) / wall for b, a in pairs]

    def lost(kind: str) -> list[float]:
        sent = after.sent[kind] - before.sent[kind]
        pairs = zip(before.got, after.got, strict=True)
        return [100 * (1 - (a[kind] - b[kind]) / sent) for b, a in pairs] if sent else [0.0]

    rows = [
        [f"video frames/s (sent {FPS})", *_spread(rates("video"))],
        ["audio frames/s (sent 50)", *_spread(rates("audio"))],
        ["video RTP packets lost, %", *_spread(lost("video"))],
        ["audio RTP packets lost, %", *_spread(lost("audio"))],
    ]
    print(h.table(["per subscriber on B, during W2", "median", "min", "max"], rows))


def report_latency(at_a: dict[int, float], at_b: dict[int, float], stamps: dict[int, float]):
    common = sorted(set(at_a) & set(at_b) & set(stamps))
    if not common:
        print("latency: no frame number was read on both probes")
        return
    rows = [
        ["added by the A -> B hop", [at_b[i] - at_a[i] for i in common]],
        ["frame produced -> decoded on A (direct)", [at_a[i] - stamps[i] for i in common]],
        ["frame produced -> decoded on B (cascaded)", [at_b[i] - stamps[i] for i in common]],
    ]
    print(
        h.table(
            [f"latency, ms ({len(common)} frames)", "median", "p95", "min", "max"],
            [[name, *_stats([1000 * v for v in values])] for name, values in rows],
        )
    )


def _spread(values: list[float]) -> list[float]:
    return [statistics.median(values), min(values), max(values)]


def _stats(values: list[float]) -> list[float]:
    return [statistics.median(values), h.percentile(values, 0.95), min(values), max(values)]


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=20, help="subscribers on B (20)")
    parser.add_argument("--window", type=float, default=20.0, help="measure window, s (20)")
    parser.add_argument("--baseline", type=float, default=10.0, help="W0 and W1, s (10)")
    parser.add_argument("--settle", type=float, default=5.0, help="wait after joins, s (5)")
    parser.add_argument("--latency", type=float, default=10.0, help="latency probes, s (10)")
    parser.add_argument(
        "--direct", action=argparse.BooleanOptionalAction, default=True,
        help="also measure the subscribers on A directly (W3)",
    )  # fmt: skip
    return parser.parse_args()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--publisher-child":
        sys.exit(asyncio.run(publisher_child(sys.argv[2], sys.argv[3])))
    arguments = parse()
    h.setup()
    sys.exit(asyncio.run(main(arguments)))
