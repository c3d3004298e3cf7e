"""Cluster load: the load tool against a whole deployment (HAProxy, several `visio serve`
processes, PostgreSQL, Redis, a pool of Janus nodes), all in the bench's namespace.

    .venv/bin/python bench/cluster_load.py --servers 2 --nodes 3 --node-streams 240 \\
        --scenario webinar --participants 300            # a webinar spread over 3 nodes
    .venv/bin/python bench/cluster_load.py --compare 1x1,2x2 --participants 120
                                                         # same load, two topologies

A run prints the load tool's report (participants held, join p50/p95, loss, jitter, CPU
and RSS of every server process and Janus node), then what each node carried at the
peak: participants and streams (from the servers' shared node board) and the remote
publishers Janus runs for the streams that crossed from another node.

`--node-streams` is the servers' `janus_node_streams`: the streams a node forwards
before a meeting spreads to the next one. Lower it to make a webinar spread on this
machine, where every node shares the same 2 cores.

`--compare SxN,...` runs the same fixed load against each topology (S server processes,
N nodes) and ends with a table: CPU per participant of the servers and of Janus, and the
ratio to the first topology. On one machine this shows what the distribution costs, not
how far more machines carry: every process shares the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
import psutil
from load import add_load_options

from visio.load.report import Report, render
from visio.load.run import Plan, run
from visio.testing.cluster import Deployment

# Every load client comes from loopback: no per-address limit, a valve the load never reaches.
LOAD_SETTINGS = {"limit_networks": '{"127.0.0.0/8": 0}', "max_joins_per_second": 10_000}


class NodePeak:
    """What each node carried at the busiest moment, polled from the servers' /healthz
    (their shared node board) and from the nodes' own threads."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.peak: dict[str, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> NodePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _poll(self) -> None:
        names = {node.url: node for node in self.deployment.nodes}
        while not self._stop.wait(1.0):
            try:
                with urllib.request.urlopen(self.deployment.base_url + "/healthz", timeout=2) as r:
                    health = json.loads(r.read())
            except OSError:
                continue
            for entry in health.get("janus", []):
                node = names.get(entry["url"])
                if node is None or node.process is None or node.process.poll() is not None:
                    continue
                now = {
                    "participants": entry.get("participants", 0),
                    "streams": entry.get("streams", 0),
                    "remote publishers": sum(
                        name.startswith("vremote") for name in node.thread_names()
                    ),
                }
                best = self.peak.setdefault(node.name, dict.fromkeys(now, 0))
                for key, value in now.items():
                    best[key] = max(best[key], value)

    def table(self) -> str:
        rows = [
            [name, peak["participants"], peak["streams"], peak["remote publishers"]]
            for name, peak in sorted(self.peak.items())
        ]
        return h.table(
            ["node", "participants", "streams", "remote publishers"],
            rows,
            title="Each node at its peak",
        )


class SharedParts:
    """CPU of what the server processes share (Redis, PostgreSQL, HAProxy) over a run."""

    def __init__(self, deployment: Deployment) -> None:
        roots = {
            "Redis": deployment.redis.process,
            "PostgreSQL": deployment.postgres.process,
            "HAProxy": deployment.haproxy.process,
        }
        self.processes = {
            name: [psutil.Process(p.pid), *psutil.Process(p.pid).children(recursive=True)]
            for name, p in roots.items()
            if p is not None
        }

    def _seconds(self) -> dict[str, float]:
        out = {}
        for name, processes in self.processes.items():
            total = 0.0
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += h.cpu_seconds(process)
            out[name] = total
        return out

    def __enter__(self) -> SharedParts:
        self.started, self.before = time.monotonic(), self._seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        wall, after = time.monotonic() - self.started, self._seconds()
        self.percent = {name: 100 * (after[name] - self.before[name]) / wall for name in after}

    def line(self) -> str:
        parts = ", ".join(f"{name} {value:.1f} %" for name, value in self.percent.items())
        return f"shared parts over the whole run, % of a core: {parts}"


def topology(text: str) -> tuple[int, int]:
    servers, nodes = text.lower().split("x")
    return int(servers), int(nodes)


async def measure(args: argparse.Namespace, servers: int, nodes: int) -> Report:
    deployment = Deployment(
        servers=servers,
        nodes=nodes,
        sign_in=False,
        max_participants=args.max_participants + 10,
        janus_node_streams=args.node_streams,
        **LOAD_SETTINGS,
    )
    await asyncio.to_thread(deployment.start)
    try:
        print(
            f"{servers} server process(es) {[s.process.pid for s in deployment.servers]}, "
            f"{nodes} Janus node(s) "
            f"{ {n.name: n.pid for n in deployment.nodes} }, HAProxy {deployment.base_url}"
        )
        plan = Plan.from_options(
            args,
            [deployment.base_url],
            [s.process.pid for s in deployment.servers],
            [n.pid for n in deployment.nodes],
        )
        with NodePeak(deployment) as peak, SharedParts(deployment) as shared:
            report = await run(plan)
    finally:
        await asyncio.to_thread(deployment.stop)
    print(render(report))
    print(peak.table())
    print(shared.line())
    return report


def per_participant(report: Report, role: str) -> float:
    step = report.last_good or (report.steps[-1] if report.steps else None)
    if step is None or not step.participants:
        return float("nan")
    return step.cpu(role) / step.participants


def compare(reports: dict[tuple[int, int], Report]) -> str:
    first = next(iter(reports.values()))
    base = {role: per_participant(first, role) for role in ("server", "janus")}
    rows = []
    for (servers, nodes), report in reports.items():
        step = report.steps[-1] if report.steps else None
        server, janus = per_participant(report, "server"), per_participant(report, "janus")
        rows.append(
            [
                f"{servers} x {nodes}",
                f"{step.held}/{step.participants}" if step else "-",
                step.join_p95_s if step else "-",
                step.loss_percent if step else "-",
                f"{server:.4f}",
                f"{server / base['server']:.2f}",
                f"{janus:.3f}",
                f"{janus / base['janus']:.2f}",
            ]
        )
    return h.table(
        [
            "servers x nodes",
            "held",
            "join p95 s",
            "loss %",
            "server % of a core / participant",
            "ratio",
            "Janus % / participant",
            "ratio",
        ],
        rows,
        title="Same load, several topologies",
    )


async def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    print(h.machine())
    reports = {}
    for servers, nodes in args.compare or [(args.servers, args.nodes)]:
        reports[(servers, nodes)] = await measure(args, servers, nodes)
    if len(reports) > 1:
        print(compare(reports))
    print(f"total {time.monotonic() - started:.0f} s")
    return 0 if all(r.steps for r in reports.values()) else 1


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument(
        "--compare",
        type=lambda text: [topology(t) for t in text.split(",")],
        help="topologies to run the same load on, e.g. 1x1,2x2",
    )
    parser.add_argument("--node-streams", type=int, default=2000, help="janus_node_streams")
    add_load_options(parser, participants=60, max_seconds=600.0)
    args = parser.parse_args()
    if args.compare and args.ramp:
        parser.error("compare topologies on a fixed load: drop --ramp")
    return args


if __name__ == "__main__":
    arguments = parse()
    h.setup()
    sys.exit(asyncio.run(main(arguments)))
