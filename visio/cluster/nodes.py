"""The media nodes as every server process sees them: what each carries, and whether an
operator is draining it.

Each process writes what its own meetings put on each node (`visio:node:<url>:load`, one
field per process, refreshed every second, gone with its process) and reads the others'.
`visio node` writes the node's own CPU (`visio:node:<url>:host`). `visio nodes drain URL`
adds the node to `visio:nodes:draining`: no new meeting goes there, and the owners of
the meetings on it move the people placed there to other nodes.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis.asyncio as aioredis

from visio.conference.meetings import Meetings
from visio.janus.nodes import JanusPool, NodeLoad

log = logging.getLogger(__name__)
DRAINING = "visio:nodes:draining"
FRESH_S = 5.0  # a report older than this is from a process (or node) that is gone


def load_key(url: str) -> str:
    return f"visio:node:{url}:load"


def host_key(url: str) -> str:
    return f"visio:node:{url}:host"


class NodeBoard:
    def __init__(self, redis: aioredis.Redis, process_id: str, pool: JanusPool) -> None:
        self.redis = redis
        self.process_id = process_id
        self.pool = pool
        self.others: dict[str, NodeLoad] = {}

    async def refresh(self, meetings: Meetings) -> None:
        """Tell our load, learn the others' and which nodes drain (and move off them)."""
        now = time.time()
        local = meetings.local_loads()
        async with self.redis.pipeline(transaction=False) as pipe:
            for node in self.pool.nodes:
                load = local.get(node.url, NodeLoad())
                pipe.hset(load_key(node.url), self.process_id, _dump(load, now))
                pipe.expire(load_key(node.url), int(FRESH_S * 2))
                pipe.hgetall(load_key(node.url))
                pipe.get(host_key(node.url))
            pipe.smembers(DRAINING)
            replies = await pipe.execute()
        draining = replies[-1]
        for i, node in enumerate(self.pool.nodes):
            reports, host = replies[4 * i + 2], replies[4 * i + 3]
            self.others[node.url] = _others(reports, host, self.process_id, now)
            if (node.url in draining) != node.draining:
                node.draining = node.url in draining
                log.warning(
                    "media node draining" if node.draining else "media node back",
                    extra={"janus": node.url},
                )
                if node.draining:
                    meetings.move_off(node)

    def other_loads(self) -> dict[str, NodeLoad]:
        return self.others


def _dump(load: NodeLoad, now: float) -> str:
    return json.dumps({**load.as_dict(), "at": now})


def _others(reports: dict[str, str], host: str | None, me: str, now: float) -> NodeLoad:
    total = NodeLoad()
    for process, raw in reports.items():
        data = _fresh(raw, now)
        if process != me and data is not None:
            total += NodeLoad(
                int(data.get("meetings", 0)),
                int(data.get("participants", 0)),
                int(data.get("streams", 0)),
            )
    host_data = _fresh(host, now) if host else None
    if host_data is not None:
        total.cpu, total.rx_bps, total.tx_bps = (
            float(value) if isinstance(value := host_data.get(key), int | float) else None
            for key in ("cpu", "rx_bps", "tx_bps")
        )
    return total


def _fresh(raw: str, now: float) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or now - float(data.get("at", 0)) > FRESH_S:
        return None
    return data


async def set_draining(redis: aioredis.Redis, url: str, draining: bool) -> None:
    if draining:
        await redis.sadd(DRAINING, url)
    else:
        await redis.srem(DRAINING, url)


async def node_report(redis: aioredis.Redis, urls: list[str]) -> list[dict[str, Any]]:
    """Every node's load, summed over the server processes, for `visio nodes`."""
    now = time.time()
    draining = await redis.smembers(DRAINING)
    rows = []
    for url in urls:
        reports = await redis.hgetall(load_key(url))
        load = _others(reports, await redis.get(host_key(url)), "", now)
        rows.append({"url": url, "draining": url in draining, **load.as_dict()})
    return rows
