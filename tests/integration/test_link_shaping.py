"""The shaped side link really does what it is told: delay, loss, a rate cap, an outage.

A UDP echo server listens in the harness' namespace; a probe in the side namespace sends
to it, or receives from a sender here, and reports what it measured.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator

import pytest

from tests.conftest import GENEROUS_LIMITS, Bots, start_server, stop_server
from visio.testing import netns
from visio.testing.link import Conditions

pytestmark = pytest.mark.integration

ECHO_PORT = 9999
SINK_PORT = 9998

# Sends `count` numbered datagrams `interval` apart; prints the RTT (ms) of each echo.
PING = """
import json, socket, sys, time
count, interval = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
sent, rtts = {}, {}
def drain():
    while True:
        try:
            data = s.recv(64)
        except BlockingIOError:
            return
        n = int(data)
        rtts[n] = (time.monotonic() - sent[n]) * 1000
for n in range(count):
    sent[n] = time.monotonic()
    s.sendto(str(n).encode(), (sys.argv[3], int(sys.argv[4])))
    time.sleep(interval)
    drain()
time.sleep(1.5)
drain()
print(json.dumps(rtts))
"""

# Receives for `seconds` after the first datagram; prints the bytes received.
SINK = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
s.recv(2048)
received, end = 0, time.monotonic() + float(sys.argv[2])
s.settimeout(0.2)
while time.monotonic() < end:
    try:
        received += len(s.recv(2048))
    except TimeoutError:
        pass
print(received)
"""


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.DatagramTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, address: tuple[str, int]) -> None:
        self.transport.sendto(data, address)


@pytest.fixture
async def echo(shaped_side: netns.SideNamespace) -> AsyncIterator[None]:
    shaped_side.clear()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        Echo, local_addr=(netns.SIDE_ADDRESS, ECHO_PORT)
    )
    yield
    transport.close()
    shaped_side.clear()


async def ping(shaped_side: netns.SideNamespace, count: int, interval: float) -> dict[int, float]:
    """RTT in ms of each echoed datagram, by its number."""
    process = await asyncio.create_subprocess_exec(
        *shaped_side.command(
            sys.executable, "-c", PING, str(count), str(interval),
            netns.SIDE_ADDRESS, str(ECHO_PORT),
        ),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), count * interval + 20)
    return {int(n): rtt for n, rtt in json.loads(out).items()}


async def test_a_clean_link_is_fast_and_loses_nothing(shaped_side, echo):
    rtts = await ping(shaped_side, 50, 0.01)
    assert len(rtts) == 50
    assert statistics.median(rtts.values()) < 20


async def test_delay_and_jitter_each_way_add_up_to_the_round_trip(shaped_side, echo):
    shaped_side.shape(
        uplink=Conditions(delay_ms=150, jitter_ms=30),
        downlink=Conditions(delay_ms=150, jitter_ms=30),
    )
    rtts = list((await ping(shaped_side, 60, 0.02)).values())
    assert len(rtts) == 60
    assert 290 < statistics.median(rtts) < 360, rtts
    assert max(rtts) - min(rtts) > 20, rtts  # jitter, not a constant delay


async def test_loss_drops_that_share_of_packets_in_one_direction(shaped_side, echo):
    shaped_side.shape(uplink=Conditions(loss=0.2))
    rtts = await ping(shaped_side, 400, 0.002)
    counters = shaped_side.link.counters()
    assert 0.7 < len(rtts) / 400 < 0.9, len(rtts)
    assert 40 < counters["uplink"]["dropped"] < 120, counters
    assert counters["downlink"]["dropped"] == 0, counters


async def test_a_downlink_rate_cap_limits_throughput(shaped_side):
    shaped_side.clear()
    shaped_side.shape(downlink=Conditions(rate_kbit=500, queue_ms=100))
    process = await asyncio.create_subprocess_exec(
        *shaped_side.command(sys.executable, "-c", SINK, str(SINK_PORT), "2"),
        stdout=asyncio.subprocess.PIPE,
    )
    assert (await process.stdout.readline()).strip() == b"ready"
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    end = time.monotonic() + 2.5
    while time.monotonic() < end:  # 2 Mbit/s: four times what the link carries
        sender.sendto(b"x" * 1000, (netns.SIDE_PEER_ADDRESS, SINK_PORT))
        await asyncio.sleep(0.004)
    sender.close()
    received = int(await asyncio.wait_for(process.stdout.readline(), 10))
    await process.wait()
    shaped_side.clear()
    kbit_per_s = received * 8 / 2 / 1000
    assert 400 < kbit_per_s < 600, kbit_per_s


async def test_an_outage_drops_everything_then_the_link_comes_back(shaped_side, echo):
    pinging = asyncio.create_task(ping(shaped_side, 200, 0.02))  # 4 s
    await asyncio.sleep(1)
    await shaped_side.outage(1.5)
    rtts = await pinging
    lost = set(range(200)) - set(rtts)
    assert 50 < len(lost) < 100, sorted(lost)  # ~1.5 s of 20 ms pings
    assert max(rtts) > max(lost), "the link came back"
    assert shaped_side.link.conditions["uplink"] == Conditions()


async def test_a_bot_on_a_lossy_slow_link_meets_another(shaped_side):
    """`visio bot` runs in the side namespace as browsers do; Janus gathers on its link.

    It stays 12 s and a picture is enough each way: an aiortc receiver on this link has
    decoded as few as one frame every one or two seconds (a frame lost past NACK waits for
    a keyframe); waiting for 40 frames took 38 s, and 20 did not all come in 40 s."""
    shaped_side.shape(
        uplink=Conditions(loss=0.05, delay_ms=100, jitter_ms=20),
        downlink=Conditions(loss=0.05, delay_ms=100, jitter_ms=20),
    )
    server, provider = start_server(
        idp=False,
        host="0.0.0.0",
        guests_create_rooms=True,
        janus_ice_interfaces=f"{netns.VETH},{netns.SIDE_VETH}",
        **GENEROUS_LIMITS,
    )
    bots = Bots(server)
    try:
        room = server.create_room()
        open_bot = await bots.join(room, "Open")
        link = f"http://{netns.ADDRESS}:{server.port}/{room}"
        process = await asyncio.create_subprocess_exec(
            *shaped_side.command(
                sys.executable, "-m", "visio", "bot", link, "--name", "Traveller",
                "--duration", "12",
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, out.decode()
        last = out.decode().strip().splitlines()[-1]  # receiving p-…/video: N, p-…/audio: N
        assert int(re.search(rf"{open_bot.id}/video: (\d+)", last).group(1)) >= 1, last
        assert int(re.search(rf"{open_bot.id}/audio: (\d+)", last).group(1)) >= 50, last
        assert shaped_side.link.counters()["downlink"]["dropped"] > 0  # it did cross a lossy link
        traveller = re.search(r"joined \S+ as (\S+)", out.decode()).group(1)
        # Its uplink, too: its voice (a frame each 20 ms) and at least a picture.
        assert open_bot.frames_from(traveller, "audio") >= 50
        assert open_bot.frames_from(traveller, "video") >= 1
    finally:
        await bots.close()
        stop_server(server, provider)
        shaped_side.clear()
