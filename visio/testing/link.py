"""A link whose loss, delay, jitter, rate and outages the tests set: a user-space netem.

The kernel this project is tested on has no `sch_netem` (CONFIG_NET_SCH_NETEM is not set,
and there are no modules to load), and without netem nothing in the kernel delays packets.
So a shaped link is two TUN devices, one in each namespace, and a small relay process
between them (`python -m visio.testing.link`): what one namespace sends out of its device,
the relay reads, shapes, and writes into the other's. Each direction has its own
`Conditions`, changed at any time through the relay's standard input.

Each packet meets, in order: an outage (dropped), random loss, a bottleneck of `rate_kbit`
with a drop-tail queue of `queue_ms`, then a one-way delay of `delay_ms` ± `jitter_ms`
(uniform, as netem's default). Packets keep their order, as on a real path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import json
import os
import random
import struct
import subprocess
import sys
from dataclasses import dataclass

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65536


@dataclass(frozen=True)
class Conditions:
    """What one direction of the link does to the packets that cross it."""

    delay_ms: float = 0.0  # one way
    jitter_ms: float = 0.0  # each packet's delay is delay_ms ± up to jitter_ms
    loss: float = 0.0  # the share of packets dropped at random, 0 to 1
    rate_kbit: float | None = None  # the bottleneck's rate; None: unlimited
    queue_ms: float = 200.0  # what the bottleneck's queue holds before it drops
    down: bool = False  # an outage: every packet is dropped

    def __post_init__(self) -> None:
        if not 0 <= self.loss <= 1:
            raise ValueError(f"loss is a share between 0 and 1, not {self.loss}")
        if self.delay_ms < 0 or self.jitter_ms < 0 or self.queue_ms < 0:
            raise ValueError("delay, jitter and queue are not negative")
        if self.rate_kbit is not None and self.rate_kbit <= 0:
            raise ValueError(f"rate_kbit is positive, not {self.rate_kbit}")


CLEAR = Conditions()


def open_tun(name: str) -> int:
    """A new TUN device `name` (layer 3, no packet header) in this namespace; its fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


class ShapedLink:
    """The relay process between two TUN devices, and the conditions it applies.

    `uplink` is what the side namespace sends (its device's egress), `downlink` what it
    receives (the harness' device's egress).
    """

    def __init__(self, harness_device: str, side_device: str) -> None:
        self.harness_device = harness_device
        self.side_device = side_device
        self.conditions = {"uplink": CLEAR, "downlink": CLEAR}
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Creates both devices in this namespace (move `side_device` after) and the relay."""
        harness_fd = open_tun(self.harness_device)
        try:
            side_fd = open_tun(self.side_device)
        except OSError:
            os.close(harness_fd)
            raise
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "visio.testing.link", str(harness_fd), str(side_fd)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                pass_fds=(harness_fd, side_fd),
            )
        finally:  # the relay holds them now; the devices go when it exits
            os.close(harness_fd)
            os.close(side_fd)
        self._ask({})

    def set(self, uplink: Conditions | None = None, downlink: Conditions | None = None) -> dict:
        """Changes the conditions of the directions given; the counters so far."""
        given = {
            name: c for name, c in (("uplink", uplink), ("downlink", downlink)) if c is not None
        }
        counters = self._ask({name: dataclasses.asdict(c) for name, c in given.items()})
        self.conditions.update(given)
        return counters

    def both(self, conditions: Conditions) -> dict:
        return self.set(uplink=conditions, downlink=conditions)

    def counters(self) -> dict:
        """{"uplink"/"downlink": {"forwarded": n, "dropped": n}} since the start."""
        return self._ask({})

    def _ask(self, change: dict) -> dict:
        if self._process is None or self._process.poll() is not None:
            raise RuntimeError("the link's relay is not running")
        self._process.stdin.write(json.dumps(change) + "\n")
        self._process.stdin.flush()
        reply = self._process.stdout.readline()
        if not reply:
            raise RuntimeError("the link's relay exited")
        return json.loads(reply)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.stdin.close()  # the relay exits at the end of its input
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        self._process = None


class _Direction:
    """One direction of the relay: reads `source`, shapes, writes `destination`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, source: int, destination: int) -> None:
        self.loop = loop
        self.source = source
        self.destination = destination
        self.conditions = CLEAR
        self.bottleneck_free_at = 0.0  # when the bottleneck has sent what it queued
        self.last_departure = 0.0
        self.forwarded = 0
        self.dropped = 0
        loop.add_reader(source, self._read)

    def _read(self) -> None:
        while True:
            try:
                packet = os.read(self.source, MAX_PACKET)
            except BlockingIOError:
                return
            except OSError:  # the device is gone with its namespace: nothing more to read
                self.loop.remove_reader(self.source)
                return
            self._shape(packet)

    def _shape(self, packet: bytes) -> None:
        conditions = self.conditions
        now = self.loop.time()
        if conditions.down or random.random() < conditions.loss:
            self.dropped += 1
            return
        departure = now
        if conditions.rate_kbit is not None:
            start = max(now, self.bottleneck_free_at)
            if start - now > conditions.queue_ms / 1000:
                self.dropped += 1  # the queue is full: tail drop
                return
            self.bottleneck_free_at = start + len(packet) * 8 / (conditions.rate_kbit * 1000)
            departure = self.bottleneck_free_at
        delay = conditions.delay_ms + random.uniform(-conditions.jitter_ms, conditions.jitter_ms)
        departure = max(departure + max(delay, 0) / 1000, self.last_departure)
        self.last_departure = departure
        self.forwarded += 1
        if departure <= now:
            self._write(packet)
        else:
            self.loop.call_at(departure, self._write, packet)

    def _write(self, packet: bytes) -> None:
        try:
            os.write(self.destination, packet)
        except OSError:
            pass  # the device is down (the namespace is going): the packet is lost

    def counters(self) -> dict:
        return {"forwarded": self.forwarded, "dropped": self.dropped}


async def _relay(harness_fd: int, side_fd: int) -> None:
    loop = asyncio.get_running_loop()
    for fd in (harness_fd, side_fd):
        os.set_blocking(fd, False)
    directions = {
        "uplink": _Direction(loop, side_fd, harness_fd),
        "downlink": _Direction(loop, harness_fd, side_fd),
    }
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        for name, fields in json.loads(line).items():
            directions[name].conditions = Conditions(**fields)
        counters = {name: direction.counters() for name, direction in directions.items()}
        sys.stdout.write(json.dumps(counters) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(_relay(int(sys.argv[1]), int(sys.argv[2])))
