"""`visio load`: the load tool's command line (arguments, checks, report)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from visio.load.run import Plan

# The load machinery (aiortc, PyAV) is imported only when the command runs.
SCENARIOS = ("small", "webinar", "churn")
HARD_MAX_PARTICIPANTS = 5000
HARD_MAX_SECONDS = 3600.0


class BadArguments(ValueError):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        action="append",
        required=True,
        metavar="URL",
        help="server base URL, e.g. http://10.77.0.1:8080 (repeat for several: meetings "
        "go to each in turn)",
    )
    parser.add_argument("--scenario", choices=SCENARIOS, default="small")
    parser.add_argument(
        "--participants",
        type=int,
        default=30,
        help="participants of a fixed run, first step of a ramp, population of churn (30)",
    )
    parser.add_argument("--ramp", action="store_true", help="add --step until quality falls")
    parser.add_argument("--step", type=int, default=30, help="participants added per step (30)")
    parser.add_argument("--max-participants", type=int, default=600, help="hard cap (600)")
    parser.add_argument("--hold", type=float, default=15.0, help="measuring window, s (15)")
    parser.add_argument("--settle", type=float, default=3.0, help="pause after joins, s (3)")
    parser.add_argument("--meeting-size", type=int, default=6, help="small/churn (6)")
    parser.add_argument("--cameras", type=int, default=2, help="cameras per meeting (2)")
    parser.add_argument("--turn", type=float, default=10.0, help="talk turn, s (10)")
    parser.add_argument(
        "--churn-rate", type=float, default=1.0, help="participants replaced per second (1)"
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="load processes (one per core)"
    )
    parser.add_argument(
        "--join-rate", type=float, default=10.0, help="joins started per second, at most (10)"
    )
    parser.add_argument("--join-timeout", type=float, default=15.0, help="per join, s (15)")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="whole run, s (900)")
    parser.add_argument("--loss-limit", type=float, default=1.0, help="ramp stops above, %% (1)")
    parser.add_argument("--join-p95-limit", type=float, default=1.0, help="ramp stops above, s")
    parser.add_argument(
        "--server-pid", action="append", default=[], metavar="PID[,PID]", help="visio serve pids"
    )
    parser.add_argument(
        "--janus-pid", action="append", default=[], metavar="PID[,PID]", help="Janus pids"
    )
    parser.add_argument(
        "--find-processes",
        action="store_true",
        help="measure every `visio serve` and `janus` process of this machine",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a target that is not on a loopback or private address",
    )


def plan_from(args: argparse.Namespace) -> Plan:
    from visio.load.resources import ProcessNotFound, find_by_name, watch
    from visio.load.run import Plan

    _check_counts(args)
    for url in args.url:
        _check_target(url, args.allow_remote)
    server_pids, janus_pids = _pids(args.server_pid), _pids(args.janus_pid)
    if args.find_processes:
        found_servers, found_janus = find_by_name()
        server_pids = server_pids or found_servers
        janus_pids = janus_pids or found_janus
    try:
        watch("server", server_pids), watch("janus", janus_pids)
    except ProcessNotFound as exc:
        raise BadArguments(str(exc)) from None
    urls = [url.rstrip("/") for url in args.url]
    return Plan.from_options(args, urls, server_pids, janus_pids)


def _check_counts(args: argparse.Namespace) -> None:
    if not 1 <= args.participants <= args.max_participants <= HARD_MAX_PARTICIPANTS:
        raise BadArguments(
            f"need 1 <= --participants <= --max-participants <= {HARD_MAX_PARTICIPANTS}"
        )
    if args.scenario == "webinar" and args.participants < 2:
        raise BadArguments("a webinar needs --participants 2 or more (a speaker, viewers)")
    if not 0 < args.max_seconds <= HARD_MAX_SECONDS:
        raise BadArguments(f"--max-seconds must be in (0, {HARD_MAX_SECONDS:.0f}]")
    checks = {
        "--step": args.step >= 1,
        "--hold": args.hold > 0,
        "--settle": args.settle >= 0,
        "--meeting-size": 2 <= args.meeting_size <= 100,
        "--cameras": 0 <= args.cameras <= args.meeting_size,
        "--turn": args.turn > 0,
        "--churn-rate": 0 < args.churn_rate <= 100,
        "--workers": 1 <= args.workers <= 64,
        "--join-timeout": args.join_timeout > 0,
        "--join-rate": 0.1 <= args.join_rate <= 1000,
    }
    wrong = [name for name, ok in checks.items() if not ok]
    if wrong:
        raise BadArguments(f"out of range: {', '.join(wrong)} (see --help)")


def _check_target(url: str, allow_remote: bool) -> None:
    """Load goes to machines of one's own: loopback or private addresses, unless told."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadArguments(f"{url}: give the server's base URL, e.g. http://10.77.0.1:8080")
    if allow_remote:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 80, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise BadArguments(f"{url}: cannot resolve {parts.hostname}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not (address.is_loopback or address.is_private):
            raise BadArguments(
                f"{url}: {address} is neither loopback nor private; pass --allow-remote "
                "if you mean to load that machine"
            )


def _pids(values: list[str]) -> list[int]:
    pids = []
    for value in values:
        for part in value.split(","):
            if not part.strip().isdigit():
                raise BadArguments(f"not a process id: {part!r}")
            pids.append(int(part))
    return pids


def run_load(args: argparse.Namespace) -> int:
    from visio.load.report import render
    from visio.load.run import run

    try:
        plan = plan_from(args)
    except BadArguments as exc:
        print(f"visio load: {exc}", file=sys.stderr)
        return 2
    print(
        f"visio load: {plan.scenario}, {plan.participants} participants"
        + (f", +{plan.step} per step up to {plan.max_participants}" if plan.ramp else "")
        + f", {plan.workers} load processes",
        file=sys.stderr,
    )
    report = asyncio.run(run(plan, progress=lambda line: print(line, file=sys.stderr)))
    print(render(report))
    if args.json:
        Path(args.json).write_text(report.to_json())
    return 0 if report.steps else 1
