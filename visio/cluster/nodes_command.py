"""`visio nodes`: the media nodes of a deployment with several server processes, their
load, and draining one for maintenance without cutting a meeting."""

from __future__ import annotations

import argparse
import sys

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from visio.cluster.nodes import node_report, set_draining
from visio.config import Settings


async def run_nodes(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.redis_url or not settings.janus_urls:
        print(
            "visio: `visio nodes` is for a deployment with several server processes: "
            "set redis_url and janus_urls (the same config as the servers)",
            file=sys.stderr,
        )
        return 2
    url = getattr(args, "url", None)
    if url is not None and url not in settings.janus_urls:
        known = ", ".join(settings.janus_urls)
        print(f"visio: no media node {url!r} in janus_urls ({known})", file=sys.stderr)
        return 1
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        if args.action == "list":
            for row in await node_report(redis, list(settings.janus_urls)):
                cpu = "-" if row["cpu"] is None else f"{100 * row['cpu']:.0f}%"
                mbps = "-" if row["tx_bps"] is None else f"{row['tx_bps'] / 1e6:.1f}"
                state = "draining" if row["draining"] else "in use"
                print(
                    f"{row['url']}\t{state}\tmeetings={row['meetings']}\t"
                    f"participants={row['participants']}\tstreams={row['streams']}\t"
                    f"cpu={cpu}\tout_mbps={mbps}"
                )
        else:
            await set_draining(redis, url, args.action == "drain")
            verb = (
                "draining: its people move to other nodes"
                if args.action == "drain"
                else "in use again"
            )
            print(f"{url}: {verb}")
    except (RedisError, OSError) as exc:
        print(f"visio: cannot reach Redis at {settings.redis_url}: {exc}", file=sys.stderr)
        return 1
    finally:
        await redis.aclose()
    return 0
