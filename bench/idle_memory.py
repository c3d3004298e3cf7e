"""Server memory per idle connected participant (signalling only, no WebRTC).

N plain `websockets` clients each open /ws, send `join` (audio and video off), read
every frame the server sends them, and `ping` every 15 s as the web app does. Nobody
publishes, so Janus gets no handle for them. The RSS of the `visio serve` process is
sampled:

- before: after a warm-up (a few clients join and leave, so that one-time allocations
  are not counted) and a pause;
- after: all N joined, after a settle pause and a hold period with pings (median of
  samples over the last seconds);
- left: after all of them sent `leave` and the server closed their sockets.

The join/hold/leave cycle runs twice by default: if the second cycle ends near the first
one's level, memory kept after `leave` is reused (allocator), not leaked.

(after - before) / N is the memory per idle participant; `left` shows whether it is
given back to the operating system. Clients are spread over rooms of --per-room people.

Run as root (it makes a private network namespace):
    .venv/bin/python bench/idle_memory.py [--participants 200] [--per-room 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import psutil
import websockets

from visio.testing.server import ServerProcess

PING_S = 15.0


class IdleClient:
    def __init__(self, ws_url: str, room: str, name: str) -> None:
        self.ws_url, self.room, self.name = ws_url, room, name
        self.ws: websockets.ClientConnection | None = None
        self.frames = 0
        self.pongs = 0
        self.closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def join(self, timeout: float = 15.0) -> None:
        self.ws = await websockets.connect(self.ws_url, max_size=2**20)
        await self.ws.send(
            json.dumps(
                {
                    "type": "join",
                    "room": self.room,
                    "name": self.name,
                    "audio": False,
                    "video": False,
                }
            )
        )
        joined = asyncio.get_running_loop().create_future()
        self._tasks.append(asyncio.create_task(self._read(joined)))
        await asyncio.wait_for(joined, timeout)
        self._tasks.append(asyncio.create_task(self._ping()))

    async def _read(self, joined: asyncio.Future[None]) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                self.frames += 1
                kind = json.loads(raw).get("type")
                if kind == "joined" and not joined.done():
                    joined.set_result(None)
                elif kind == "error" and not joined.done():
                    joined.set_exception(RuntimeError(f"join refused: {raw!s:.200}"))
                elif kind == "pong":
                    self.pongs += 1
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            if not joined.done():
                joined.set_exception(ConnectionError("closed before joined"))

    async def _ping(self) -> None:
        assert self.ws is not None
        await asyncio.sleep(random.uniform(0, PING_S))  # spread the pings out
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await self.ws.send('{"type": "ping"}')
                await asyncio.sleep(PING_S)

    async def leave(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.ws.send('{"type": "leave"}')
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), 10)
            await self.ws.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def join_all(clients: list[IdleClient], batch: int) -> int:
    failed = 0
    for start in range(0, len(clients), batch):
        results = await asyncio.gather(
            *(c.join() for c in clients[start : start + batch]), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                failed += 1
                print(f"  join failed: {result!r}")
    return failed


async def sample_rss(process: psutil.Process, seconds: float, every: float = 0.5) -> int:
    values = []
    deadline = time.monotonic() + seconds
    while True:
        values.append(h.rss(process))
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(every)
    return int(statistics.median(values))


def participants_in(server: ServerProcess, rooms: list[str]) -> int:
    total = 0
    for room in rooms:
        status, payload = server.get(f"/api/rooms/{room}")
        if status == 200:
            total += int(payload.get("participants", 0))
    return total


async def cycle(
    server: ServerProcess, visio: psutil.Process, janus: psutil.Process, args: argparse.Namespace
) -> dict[str, float]:
    """N clients join, stay for --hold seconds pinging, then leave; RSS at each step."""
    n = args.participants
    ws_url = server.base_url.replace("http", "ws", 1) + "/ws"
    rooms = [server.create_room() for _ in range((n + args.per_room - 1) // args.per_room)]
    clients = [IdleClient(ws_url, rooms[i // args.per_room], f"Idle {i}") for i in range(n)]
    try:
        t0 = time.monotonic()
        failed = await join_all(clients, args.batch)
        print(f"  {n - failed}/{n} joined {len(rooms)} rooms in {time.monotonic() - t0:.1f} s")
        await asyncio.sleep(args.settle)
        counted = participants_in(server, rooms)
        cpu0, w0 = h.cpu_seconds(visio), time.monotonic()
        await asyncio.sleep(max(0.0, args.hold - 3))
        after = await sample_rss(visio, 3)
        idle_cpu = 100 * (h.cpu_seconds(visio) - cpu0) / (time.monotonic() - w0)
        janus_after = h.rss(janus)
        pongs = sum(c.pongs for c in clients)
        frames = sum(c.frames for c in clients)
        print(f"  held {args.hold:.0f} s: {pongs} pongs, {frames} frames received in all")
    finally:
        for start in range(0, len(clients), args.batch):
            await asyncio.gather(
                *(c.leave() for c in clients[start : start + args.batch]), return_exceptions=True
            )
    await asyncio.sleep(args.settle)
    left = await sample_rss(visio, 2)
    return {
        "joined": n - failed,
        "counted": counted,
        "after": after,
        "left": left,
        "idle_cpu": idle_cpu,
        "janus_after": janus_after,
        "janus_left": h.rss(janus),
        "remaining": participants_in(server, rooms),
    }


async def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    server = h.start_server(max_participants=max(100, args.per_room))
    visio = h.server_process(server)
    janus = h.janus_process(server)
    cycles: list[dict[str, float]] = []
    try:
        # Warm-up: first use of every code path, not counted.
        ws_url = server.base_url.replace("http", "ws", 1) + "/ws"
        warm_room = server.create_room()
        warm = [IdleClient(ws_url, warm_room, f"Warm {i}") for i in range(10)]
        await join_all(warm, 10)
        for c in warm:
            await c.leave()
        await asyncio.sleep(2)
        before = await sample_rss(visio, 2)
        janus_before = h.rss(janus)
        for i in range(args.cycles):
            print(f"cycle {i + 1}/{args.cycles}")
            cycles.append(await cycle(server, visio, janus, args))
    finally:
        code = server.stop()

    mib, kib = 2**20, 1024
    print()
    print(
        f"Idle participant memory — {args.participants} WebSocket participants, "
        f"{args.per_room} per room — {h.machine()}"
    )
    rows: list[list[object]] = [["visio server RSS before (MiB)", before / mib, ""]]
    for i, c in enumerate(cycles, 1):
        joined = max(1, int(c["joined"]))
        grown = c["after"] - before
        rows += [
            [
                f"cycle {i}: RSS with {c['joined']:.0f} joined (MiB)",
                c["after"] / mib,
                f"server counted {c['counted']:.0f} participants",
            ],
            [
                f"cycle {i}: PER IDLE PARTICIPANT (KiB)",
                grown / joined / kib,
                "(RSS joined - RSS before) / N",
            ],
            [
                f"cycle {i}: RSS after all left (MiB)",
                c["left"] / mib,
                f"given back {100 * (c['after'] - c['left']) / max(1, grown):.0f} %, "
                f"still counted {c['remaining']:.0f}",
            ],
            [
                f"cycle {i}: server CPU idle-connected (% core)",
                c["idle_cpu"],
                f"{c['idle_cpu'] / joined * 1000:.2f} m% of a core each (pings)",
            ],
            [
                f"cycle {i}: Janus RSS joined / left (MiB)",
                f"{c['janus_after'] / mib:.1f} / {c['janus_left'] / mib:.1f}",
                f"before: {janus_before / mib:.1f}",
            ],
        ]
    print(h.table(["figure", "value", "note"], rows))
    print(f"total {time.monotonic() - started:.0f} s; server exit code {code}")
    h.print_logs(server)
    ok = all(c["joined"] == args.participants and c["remaining"] == 0 for c in cycles)
    return 0 if ok and len(cycles) == args.cycles else 1


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=200, help="clients (200)")
    parser.add_argument("--per-room", type=int, default=50, help="clients per room (50)")
    parser.add_argument("--batch", type=int, default=20, help="clients joining at once (20)")
    parser.add_argument("--settle", type=float, default=3.0, help="pause after joins/leaves (3)")
    parser.add_argument("--hold", type=float, default=20.0, help="time connected, s (20)")
    parser.add_argument("--cycles", type=int, default=2, help="join/leave cycles (2)")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    h.setup()
    sys.exit(asyncio.run(main(arguments)))
