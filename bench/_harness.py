"""Shared pieces of the benchmarks: namespace, server, process lookup, statistics, tables.

Not a benchmark itself. Every script calls `setup()` first thing (before any thread or
event loop exists): it moves the process into a private network namespace (root only),
because Janus and aiortc never gather ICE candidates on loopback.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psutil

from visio.testing import netns
from visio.testing.server import ServerProcess


def setup() -> None:
    """Enter the benchmark's own network namespace, or exit with a clear message."""
    if os.geteuid() != 0:
        sys.exit("benchmarks need root: they run in a private network namespace (see README)")
    try:
        netns.enter()
    except netns.NetnsUnavailable as exc:
        sys.exit(f"cannot make the network namespace: {exc}")


def start_server(**settings: Any) -> ServerProcess:
    server = ServerProcess(**settings)
    server.start()
    return server


def server_process(server: ServerProcess) -> psutil.Process:
    assert server.process is not None
    return psutil.Process(server.process.pid)


def janus_process(server: ServerProcess, timeout: float = 10.0) -> psutil.Process:
    """The embedded Janus: the `janus` child of `visio serve`."""
    deadline = time.monotonic() + timeout
    while True:
        for child in server_process(server).children(recursive=True):
            try:
                if child.name() == "janus":
                    return child
            except psutil.NoSuchProcess:
                continue
        if time.monotonic() > deadline:
            raise RuntimeError("no janus child process found under visio serve")
        time.sleep(0.1)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def rss(process: psutil.Process) -> int:
    return int(process.memory_info().rss)


# -- statistics -----------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    values = [float(v) for v in values]
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": percentile(values, 0.95),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


# -- output ---------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "") -> str:
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def render(row: Sequence[str]) -> str:
        parts = []
        for i, (w, c) in enumerate(zip(widths, row, strict=True)):
            parts.append(c.ljust(w) if i == 0 else c.rjust(w))
        return "| " + " | ".join(parts) + " |"

    out = [title] if title else []
    out += [line, render(list(headers)), line, *(render(r) for r in cells), line]
    return "\n".join(out)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def machine() -> str:
    freq = psutil.cpu_freq()
    mhz = f", {freq.current:.0f} MHz" if freq else ""
    memory = psutil.virtual_memory().total / 2**30
    load = ", ".join(f"{v:.1f}" for v in psutil.getloadavg())
    return (
        f"{psutil.cpu_count()} CPU{mhz}, {memory:.0f} GiB RAM, load average {load}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )


# -- logs -----------------------------------------------------------------------------


def server_log_problems(server: ServerProcess, limit: int = 8) -> list[str]:
    """Warnings and errors from the server's JSON log, counted by message."""
    counts: Counter[str] = Counter()
    try:
        lines = server.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            if "Traceback" in line or "Error" in line:
                counts[f"(raw) {line.strip()[:120]}"] += 1
            continue
        if not isinstance(record, dict):
            continue
        level = str(record.get("level") or record.get("levelname") or "").upper()
        if level in ("WARNING", "ERROR", "CRITICAL"):
            message = str(record.get("message") or record.get("msg") or record)[:120]
            counts[f"{level} {message}"] += 1
    return [f"{n:5d} x {m}" for m, n in counts.most_common(limit)]


def janus_log_problems(server: ServerProcess, limit: int = 8) -> list[str]:
    """Janus' [WARN] and [ERR] lines, counted by their text (numbers stripped)."""
    path = Path(server.data_dir) / "janus" / "janus.log"
    counts: Counter[str] = Counter()
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        if "[WARN]" in line or "[ERR]" in line:
            key = "".join("#" if ch.isdigit() else ch for ch in line.strip())[:140]
            counts[key] += 1
    return [f"{n:5d} x {m}" for m, n in counts.most_common(limit)]


def print_logs(server: ServerProcess) -> None:
    problems = server_log_problems(server)
    janus = janus_log_problems(server)
    print(f"server log ({server.log_path}): {'clean' if not problems else ''}")
    for line in problems:
        print("  " + line)
    print(
        f"janus log ({Path(server.data_dir) / 'janus' / 'janus.log'}): {'' if janus else 'clean'}"
    )
    for line in janus:
        print("  " + line)
