"""Joins per second one server process takes, and what an abusive client gets.

(a) **Capacity ramp.** Joins are offered at a rising rate, open loop: a new client every
1/rate seconds, whatever the server's pace. Each client opens /ws from an address of its
own (127.1.x.y: agents behind many addresses) with a guest key of its own, sends `join`
(no media: the signalling a join costs the server and the meeting it enters), and times
the `joined` answer. When the server answers `busy`, it waits `retry_in` and joins again,
as the web app does: the wait is part of its join time. It stays --hold seconds, reading
what the meeting sends, then leaves. Each step lasts --step seconds; the ramp stops after
the first step whose p95 join time passes 1 s. It runs twice: with the default limits,
and with the valve opened (max_joins_per_second = 100 000), which shows what the process
itself takes, and so where the valve's default should sit.

(b) **Abuse.** Legitimate clients (as above) join at --legit-rate for --abuse seconds,
while --loops scripted loops join as fast as the server answers, each join followed by
`leave`: with one guest key from one address (`person`), then with a new guest key every
time from that one address (`keys`). Reported: the abusive attempts per second and the
share refused (and by which limit), and the legitimate clients' join p95 and refusals,
beside a baseline with no abuser. Last (`sockets`), one address opens --flood WebSockets
as fast as it can and holds them without joining (audit L2): how many it holds, how many
are refused (the per-address connection cap), and the legitimate clients' join p95.

Run as root (it makes a private network namespace):
    PYTHONPATH=. .venv/bin/python bench/join_rate.py [--rates 25,50,100,150] [--step 6]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import psutil
import websockets

from visio.testing.server import ServerProcess

ROOMS = 100
# The bench makes its rooms from one address, faster than the default allows.
ROOM_MAKING = {"address_room_creations_per_minute": 100_000}
ABUSERS = {"person": "127.2.0.1", "keys": "127.2.0.2", "sockets": "127.2.0.3"}


@dataclass
class Join:
    outcome: str  # "joined", or the error's code, or the exception's name
    seconds: float  # from opening the WebSocket to the answer, busy waits included
    busy: int = 0  # `busy` answers waited before it
    started: float = 0.0


class Population:
    """Distinct addresses and guest keys, one per legitimate client."""

    def __init__(self) -> None:
        self.count = 0

    def next(self) -> tuple[str, dict[str, str]]:
        n = self.count
        self.count += 1
        source = f"127.1.{n // 250 % 250}.{n % 250 + 1}"
        return source, {"Cookie": f"visio_guest=bench-guest-key-{n:010d}"}


async def join_once(
    ws_url: str, room: str, source: str, headers: dict[str, str], hold: float, retry: bool
) -> Join:
    started = time.monotonic()
    frame = json.dumps({"type": "join", "room": room, "name": "Agent", "video": False})
    busy = 0
    try:
        async with websockets.connect(
            ws_url,
            local_addr=(source, 0),
            additional_headers=headers,
            open_timeout=60,
            ping_interval=None,
            max_size=2**22,
        ) as ws:
            await ws.send(frame)
            while True:
                answer = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if answer["type"] in ("joined", "lobby"):
                    break
                if answer["type"] == "error" and answer["code"] == "busy" and retry:
                    busy += 1
                    await asyncio.sleep(answer["retry_in"])
                    await ws.send(frame)
                elif answer["type"] == "error":
                    return Join(answer["code"], time.monotonic() - started, busy, started)
            seconds = time.monotonic() - started
            if hold > 0:
                await _read_for(ws, hold)
            await ws.send('{"type": "leave"}')
            return Join("joined", seconds, busy, started)
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        return Join(type(exc).__name__, time.monotonic() - started, busy, started)


async def _read_for(ws: websockets.ClientConnection, seconds: float) -> None:
    """Read what the meeting sends meanwhile, as a client must (or its outbox fills)."""
    with contextlib.suppress(TimeoutError, websockets.ConnectionClosed):
        async with asyncio.timeout(seconds):
            async for _ in ws:
                pass


async def offer(
    server: ServerProcess,
    rooms: list[str],
    people: Population,
    rate: float,
    seconds: float,
    hold: float,
) -> tuple[list[Join], float]:
    """Joins at `rate` for `seconds`, open loop; the results and the launcher's worst lag."""
    ws_url = server.base_url.replace("http", "ws", 1) + "/ws"
    tasks = []
    lag = 0.0
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        lag = max(lag, time.monotonic() - due)
        source, cookie = people.next()
        room = rooms[people.count % len(rooms)]
        tasks.append(asyncio.create_task(join_once(ws_url, room, source, cookie, hold, retry=True)))
    return list(await asyncio.gather(*tasks)), lag


class Cpu:
    """CPU of the server, its Janus, this bench, and the machine, over a window."""

    def __init__(self, server: ServerProcess) -> None:
        self.processes = {
            "server": h.server_process(server),
            "janus": h.janus_process(server),
            "bench": psutil.Process(),
        }

    def __enter__(self) -> Cpu:
        self.before = {k: h.cpu_seconds(p) for k, p in self.processes.items()}
        self.wall = time.monotonic()
        psutil.cpu_percent()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.wall
        self.percent = {
            k: 100 * (h.cpu_seconds(p) - self.before[k]) / wall for k, p in self.processes.items()
        }
        self.percent["machine"] = psutil.cpu_percent()


def joined(results: list[Join]) -> list[Join]:
    return [r for r in results if r.outcome == "joined"]


async def ramp(server: ServerProcess, args: argparse.Namespace, label: str) -> list[list]:
    rooms = [server.create_room() for _ in range(ROOMS)]
    people = Population()
    await offer(server, rooms, people, 20, 1, 0.5)  # warm-up, not counted
    await asyncio.sleep(2)
    rows = []
    for rate in args.rates:
        with Cpu(server) as cpu:
            results, lag = await offer(server, rooms, people, rate, args.step, args.hold)
        ok = joined(results)
        times = [r.seconds for r in ok]
        stats = h.summary(times) if times else {"median": float("nan"), "p95": float("nan")}
        last = max((r.started + r.seconds for r in ok), default=0) - min(
            (r.started for r in results), default=0
        )
        failed = Counter(r.outcome for r in results if r.outcome != "joined")
        rows.append(
            [
                label,
                rate,
                round(len(ok) / last, 1) if last else 0,
                len(ok),
                round(1000 * stats["median"]),
                round(1000 * stats["p95"]),
                sum(r.busy for r in results),
                ", ".join(f"{k} {v}" for k, v in failed.items()) or "-",
                round(cpu.percent["server"]),
                round(cpu.percent["janus"]),
                round(cpu.percent["bench"]),
                round(cpu.percent["machine"]),
                round(1000 * lag),
            ]
        )
        print(h.table(RAMP_HEADERS, rows[-1:]), flush=True)
        await asyncio.sleep(args.hold + 2)  # everyone has left before the next step
        if stats["p95"] > 1.0 or failed:
            break
    return rows


RAMP_HEADERS = [
    "limits",
    "offered/s",
    "taken/s",
    "joined",
    "median ms",
    "p95 ms",
    "busy",
    "failed",
    "server %",
    "janus %",
    "bench %",
    "machine %",
    "lag ms",
]


async def abuse_loop(ws_url: str, room: str, kind: str, until: float, n: int) -> list[Join]:
    attempts = []
    i = 0
    while time.monotonic() < until:
        key = f"abuser-{kind}-{n:04d}-{i if kind == 'keys' else 0:08d}"
        cookie = {"Cookie": f"visio_guest={key}"}
        attempts.append(await join_once(ws_url, room, ABUSERS[kind], cookie, 0, retry=False))
        i += 1
    return attempts


async def flood(ws_url: str, until: float, count: int) -> list[Join]:
    """Open `count` WebSockets from one address, join on none, hold them until `until`."""
    opening = asyncio.Semaphore(100)
    release = asyncio.Event()

    async def hold_one() -> Join:
        started = time.monotonic()
        try:
            async with opening:
                ws = await websockets.connect(
                    ws_url, local_addr=(ABUSERS["sockets"], 0), open_timeout=30, ping_interval=None
                )
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            return Join(type(exc).__name__, time.monotonic() - started)
        try:
            with contextlib.suppress(TimeoutError):
                first = await asyncio.wait_for(ws.recv(), 0.5)  # refused: said at once
                if "too_many_connections" in str(first):
                    return Join("too_many_connections", time.monotonic() - started)
            await release.wait()
            return Join("held", time.monotonic() - started)
        except websockets.ConnectionClosed:
            return Join("closed", time.monotonic() - started)
        finally:
            await ws.close()

    tasks = [asyncio.create_task(hold_one()) for _ in range(count)]
    await asyncio.sleep(max(0.0, until - time.monotonic()))
    release.set()
    return list(await asyncio.gather(*tasks))


async def abuse(server: ServerProcess, args: argparse.Namespace) -> list[list]:
    rooms = [server.create_room() for _ in range(ROOMS)]
    people = Population()
    people.count = 100_000  # other addresses and keys than the ramp's
    ws_url = server.base_url.replace("http", "ws", 1) + "/ws"
    rows = []
    for kind in ("none", "person", "keys", "sockets"):
        await asyncio.sleep(3)
        until = time.monotonic() + args.abuse
        loops = [
            asyncio.create_task(abuse_loop(ws_url, rooms[0], kind, until, n))
            for n in range(args.loops if kind in ("person", "keys") else 0)
        ]
        if kind == "sockets":
            loops = [asyncio.create_task(flood(ws_url, until, args.flood))]
        with Cpu(server) as cpu:
            legit, _ = await offer(server, rooms, people, args.legit_rate, args.abuse, args.hold)
        attempts = [a for loop in await asyncio.gather(*loops) for a in loop]
        refused = Counter(a.outcome for a in attempts if a.outcome not in ("joined", "held"))
        ok = joined(legit)
        stats = h.summary([r.seconds for r in ok]) if ok else {"median": 0, "p95": 0}
        rows.append(
            [
                kind,
                round(len(attempts) / args.abuse, 1),
                f"{100 * sum(refused.values()) / len(attempts):.1f} %" if attempts else "-",
                ", ".join(f"{k} {v}" for k, v in refused.items()) or "-",
                len(ok),
                len(legit) - len(ok),
                round(1000 * stats["median"]),
                round(1000 * stats["p95"]),
                round(cpu.percent["server"]),
                round(cpu.percent["machine"]),
            ]
        )
        print(h.table(ABUSE_HEADERS, rows[-1:]), flush=True)
    return rows


ABUSE_HEADERS = [
    "abuser",
    "attempts/s",
    "refused",
    "refused by",
    "legit joined",
    "legit refused",
    "legit median ms",
    "legit p95 ms",
    "server %",
    "machine %",
]


def limits_log(server: ServerProcess) -> str:
    lines = [
        line
        for line in server.log_path.read_text(errors="replace").splitlines()
        if line.startswith("{") and json.loads(line).get("msg", "").endswith(" refused")
    ]
    return f"{len(lines)} 'refused' log lines"


async def main(args: argparse.Namespace) -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it
    print(f"machine: {h.machine()}")
    rows = []
    if not args.skip_ramp:
        for label, settings in (
            ("default", {}),
            ("valve open", {"max_joins_per_second": 100_000}),
        ):
            server = h.start_server(max_participants=1000, **ROOM_MAKING, **settings)
            try:
                rows += await ramp(server, args, label)
                print(f"{label}: {server.get('/healthz')[1]['limits']['joins']}")
            finally:
                h.print_logs(server)
                server.stop()
        print(h.table(RAMP_HEADERS, rows, "\n(a) joins offered at a rising rate"))
    if not args.skip_abuse:
        server = h.start_server(max_participants=1000, **ROOM_MAKING)
        try:
            abuse_rows = await abuse(server, args)
            print(f"limits: {server.get('/healthz')[1]['limits']}; {limits_log(server)}")
        finally:
            h.print_logs(server)
            server.stop()
        print(
            h.table(
                ABUSE_HEADERS,
                abuse_rows,
                f"\n(b) {args.legit_rate:g} legitimate joins/s for {args.abuse:g} s, "
                f"beside {args.loops} abusive loops from one address (default limits)",
            )
        )
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rates",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[25, 50, 100, 150, 200, 300],
        help="offered joins per second, one step each",
    )
    parser.add_argument("--step", type=float, default=6.0, help="seconds per step")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds each client stays")
    parser.add_argument("--legit-rate", type=float, default=10.0)
    parser.add_argument("--abuse", type=float, default=20.0, help="seconds of each abuse run")
    parser.add_argument("--loops", type=int, default=4, help="abusive loops at once")
    parser.add_argument(
        "--flood", type=int, default=3000, help="idle WebSockets one address tries to hold"
    )
    parser.add_argument("--skip-ramp", action="store_true")
    parser.add_argument("--skip-abuse", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    h.setup()
    sys.exit(asyncio.run(main(arguments)))
