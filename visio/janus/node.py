"""`visio node`: one media node of a deployment with several server processes.

It runs Janus from the same locked-down config as the embedded default, with its API on
a private address the server processes reach (`--listen`) and sessions kept for
`RECLAIM_S` after their server process goes, so that another one takes them over with
every peer connection up. With `redis_url` set, it reports its Janus' CPU and the host's
traffic every two seconds (visio.cluster.nodes): new meetings avoid a node whose CPU is
busy, and `visio nodes list` shows both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time

from visio.config import Settings
from visio.janus.embedded import EmbeddedJanus

log = logging.getLogger(__name__)
RECLAIM_S = 20
REPORT_S = 2.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def network_bytes() -> tuple[int, int]:
    """Bytes received and sent by the host's interfaces but loopback, from /proc."""
    received = sent = 0
    with open("/proc/net/dev") as table:
        for row in list(table)[2:]:
            name, _, counters = row.partition(":")
            if name.strip() != "lo":
                fields = counters.split()
                received, sent = received + int(fields[0]), sent + int(fields[8])
    return received, sent


class BandwidthMeter:
    """The host's traffic (bits per second, in and out) since the last reading."""

    def __init__(self) -> None:
        self.last = (time.monotonic(), *network_bytes())

    def read(self) -> tuple[float, float]:
        now, received, sent = time.monotonic(), *network_bytes()
        (then, received_before, sent_before), self.last = self.last, (now, received, sent)
        seconds = max(1e-6, now - then)
        return 8 * (received - received_before) / seconds, 8 * (sent - sent_before) / seconds


class CpuMeter:
    """The share of the machine's cores a process used since the last reading."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cores = os.cpu_count() or 1
        self.last = (time.monotonic(), cpu_seconds(pid))

    def read(self) -> float:
        now, used = time.monotonic(), cpu_seconds(self.pid)
        (then, before), self.last = self.last, (now, used)
        return max(0.0, (used - before) / max(1e-6, now - then) / self.cores)


async def run_node(settings: Settings, listen: str) -> int:
    janus = EmbeddedJanus(settings, ws_ip=listen, reclaim_session_timeout=RECLAIM_S)
    await janus.start()
    log.info("media node ready", extra={"url": janus.url})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reporter = asyncio.create_task(_report(settings, janus)) if settings.redis_url else None
    await stop.wait()
    if reporter is not None:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
    await janus.stop()
    return 0


async def _report(settings: Settings, janus: EmbeddedJanus) -> None:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    from visio.cluster.nodes import FRESH_S, host_key

    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    meter: CpuMeter | None = None
    bandwidth = BandwidthMeter()
    try:
        while True:
            await asyncio.sleep(REPORT_S)
            process = janus.process
            if process is None or process.returncode is not None:
                meter = None  # restarting: a new pid
                continue
            if meter is None or meter.pid != process.pid:
                meter = CpuMeter(process.pid)
                continue
            rx, tx = bandwidth.read()
            report = {"cpu": round(meter.read(), 4), "rx_bps": rx, "tx_bps": tx, "at": time.time()}
            try:
                await redis.set(host_key(janus.url), json.dumps(report), ex=int(FRESH_S * 2))
            except (RedisError, OSError) as exc:
                log.warning("node load not reported", extra={"error": str(exc)})
    finally:
        await redis.aclose()
