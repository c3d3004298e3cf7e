"""Join time through TURN (TCP, TLS) against direct UDP, for a participant whose UDP is blocked.

A bot in the harness' namespace publishes; N times, `visio bot --until-video 1` joins from
a side namespace and reports when the first video frame from the other arrived, counted
from the opening of its WebSocket: the join, the subscription, ICE, DTLS and a keyframe.
"udp": the side namespace as it is; "tcp", "tls": its UDP dropped (nftables), relayed by
coturn. Runs as root, in its own namespaces; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import subprocess
import sys

import _harness

from visio.client.media import PcmAudioTrack, TestPatternTrack
from visio.client.session import VisioClient
from visio.testing import netns
from visio.testing.coturn import TurnServer

FIRST_VIDEO = re.compile(r"first video ([\d.]+) s after connecting")


def bot_join(side: netns.SideNamespace, link: str, turn: TurnServer, *options: str) -> float:
    command = side.command(
        sys.executable, "-m", "visio", "bot", link, "--name", "Joiner",
        "--until-video", "1", "--duration", "30", *options,
    )  # fmt: skip
    env = {**os.environ, "SSL_CERT_FILE": str(turn.cert)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    found = FIRST_VIDEO.search(result.stdout)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"the bot did not get video:\n{result.stdout}\n{result.stderr}")
    return float(found.group(1))


async def publisher(base_url: str, room: str) -> VisioClient:
    client = VisioClient(base_url, room, "Publisher")
    await client.connect()
    await client.publish([PcmAudioTrack(), TestPatternTrack()])
    return client


async def measure(joins: int) -> dict[str, list[float]]:
    turn = TurnServer(listen=netns.SIDE_ADDRESS, relay=netns.ADDRESS)
    times: dict[str, list[float]] = {}
    for path, rules in (("udp", ""), ("tcp", netns.NO_UDP_RULES), ("tls", netns.NO_UDP_RULES)):
        side = netns.SideNamespace()
        side.create(rules)
        turn.start()
        server = _harness.start_server(
            host="0.0.0.0",
            guests_create_rooms=True,
            turn_urls=json.dumps([turn.tcp_url, turn.tls_url]),
            turn_secret=turn.secret,
            janus_ice_interfaces=f"{netns.VETH},{netns.SIDE_VETH}",  # the side reaches it directly
            joins_per_minute=10_000,
            address_joins_per_minute=10_000,
            max_joins_per_second=10_000,
        )
        try:
            room = server.create_room()
            client = await publisher(server.base_url, room)  # its media flow while we wait
            link = f"http://{netns.ADDRESS}:{server.port}/{room}"
            options = () if path == "udp" else ("--turn", path)
            join = functools.partial(bot_join, side, link, turn, *options)
            await asyncio.to_thread(join)  # warm-up: imports, caches
            times[path] = [await asyncio.to_thread(join) for _ in range(joins)]
            await client.close()
        finally:
            server.stop()
            turn.stop()
            side.remove()
    turn.remove()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=10, help="joins per path (default 10)")
    args = parser.parse_args()
    _harness.setup()
    times = asyncio.run(measure(args.joins))
    udp = _harness.summary(times["udp"])
    rows = []
    for path, values in times.items():
        stats = _harness.summary(values)
        ratio = stats["median"] / udp["median"]
        rows.append([path, len(values), stats["median"], stats["p95"], stats["max"], ratio])
    print(_harness.machine())
    print(
        _harness.table(
            ["path", "joins", "median s", "p95 s", "max s", "median / udp"],
            rows,
            "connection opened -> first video frame from the other participant",
        )
    )


if __name__ == "__main__":
    main()
