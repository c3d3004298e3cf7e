"""Move this process into a private network namespace with a veth pair.

Janus, libnice and aiortc never gather loopback candidates, so media tests need a real
interface. `enter()` unshares the network namespace of the calling process (it must run
before any thread starts, as root) and creates a veth pair whose two ends both live in
the new namespace: nothing sent there can reach another host. Its default route points
at the peer end, which forwards nothing: Firefox gathers no ICE candidate at all in a
namespace without a default route. What would leave by that route is refused at once
(nftables), so that a browser's or a resolver's attempt to reach the outside fails
now instead of waiting for a timeout (DNS took 6 s a name, and a Chromium page 30 s).
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import os
import shlex
import subprocess
import sys
from pathlib import Path

from visio.testing.link import CLEAR, Conditions, ShapedLink
from visio.testing.process import stop_process

CLONE_NEWNET = 0x40000000
VETH = "visio0"
VETH_PEER = "visio1"
ADDRESS = "10.77.0.1"
PEER_ADDRESS = "10.77.0.2"


# Packets for anywhere but the namespace's own networks: refused, not left to time out.
NOWHERE_ELSE_RULES = f"""
table inet visio_nowhere_else {{
    chain output {{
        type filter hook output priority 0; policy accept;
        oifname "{VETH}" ip daddr != 10.77.0.0/16 meta l4proto tcp reject with tcp reset
        oifname "{VETH}" ip daddr != 10.77.0.0/16 reject
    }}
}}
"""


class NetnsUnavailable(RuntimeError):
    pass


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


def entered() -> bool:
    return os.environ.get("VISIO_TEST_NETNS") == "1"


def enter() -> None:
    """Put this process (and its future children) in a fresh network namespace."""
    if entered():
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise NetnsUnavailable(
            f"unshare(CLONE_NEWNET) failed: {os.strerror(errno)} (tests with media need root)"
        )
    _ip("link", "set", "lo", "up")
    _ip("link", "add", VETH, "type", "veth", "peer", "name", VETH_PEER)
    _ip("addr", "add", f"{ADDRESS}/24", "dev", VETH)
    _ip("addr", "add", f"{PEER_ADDRESS}/24", "dev", VETH_PEER)
    _ip("link", "set", VETH, "up")
    _ip("link", "set", VETH_PEER, "up")
    _ip("route", "add", "default", "via", PEER_ADDRESS, "dev", VETH)
    _nft(NOWHERE_ELSE_RULES)
    os.environ["VISIO_TEST_NETNS"] = "1"


def _nft(rules: str, *prefix: str) -> None:
    """Load nftables rules, in this namespace or (`prefix`: ip netns exec NAME) another."""
    try:
        result = subprocess.run(
            [*prefix, "nft", "-f", "-"], input=rules, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise NetnsUnavailable("nft is missing: install nftables (test.sh does)") from None
    if result.returncode != 0:
        raise NetnsUnavailable(f"nft: {result.stderr.strip()}")


SIDE_VETH = "visio2"
SIDE_VETH_PEER = "visio3"
SIDE_ADDRESS = "10.77.1.1"  # the harness' end, where a TURN server can listen
SIDE_PEER_ADDRESS = "10.77.1.2"  # the side namespace's own address

# Every UDP datagram in or out is dropped: only TCP leaves, as from a locked-down office.
NO_UDP_RULES = """
table inet visio_no_udp {
    chain output {
        type filter hook output priority 0; policy accept; meta l4proto udp counter drop;
    }
    chain input {
        type filter hook input priority 0; policy accept; meta l4proto udp drop;
    }
}
"""


class SideNamespace:
    """A second namespace, linked to the harness' one (which must be entered).

    Processes started with `command()` live there with their own firewall (nftables):
    they reach the harness' addresses through SIDE_ADDRESS, and nothing else. The link is
    a veth pair, or with `shaped=True` a `ShapedLink` (two TUN devices and a relay) whose
    loss, delay, rate and outages `shape()` and `outage()` set, each direction apart.
    """

    def __init__(self) -> None:
        if not entered():
            raise NetnsUnavailable("enter() the harness' namespace first")
        self.name = f"visio-side-{os.getpid()}"
        self.link: ShapedLink | None = None
        self._forwarders: list[subprocess.Popen[str]] = []

    def create(self, nft_rules: str = "", shaped: bool = False) -> None:
        _ip("netns", "add", self.name)
        try:
            if shaped:
                self._shaped_link()
            else:
                _ip("link", "add", SIDE_VETH, "type", "veth", "peer", "name", SIDE_VETH_PEER)
            _ip("link", "set", SIDE_VETH_PEER, "netns", self.name)
            _ip("addr", "add", f"{SIDE_ADDRESS}/24", "dev", SIDE_VETH)
            _ip("link", "set", SIDE_VETH, "up")
            inside = ("-n", self.name)
            _ip(*inside, "link", "set", "lo", "up")
            _ip(*inside, "addr", "add", f"{SIDE_PEER_ADDRESS}/24", "dev", SIDE_VETH_PEER)
            _ip(*inside, "link", "set", SIDE_VETH_PEER, "up")
            _ip(*inside, "route", "add", "default", "via", SIDE_ADDRESS, "dev", SIDE_VETH_PEER)
            if nft_rules:
                _nft(nft_rules, "ip", "netns", "exec", self.name)
        except NetnsUnavailable:
            self.remove()
            raise

    def _shaped_link(self) -> None:
        self.link = ShapedLink(SIDE_VETH, SIDE_VETH_PEER)
        try:
            self.link.start()
        except OSError as exc:
            raise NetnsUnavailable(f"no TUN device for a shaped link: {exc}") from None

    def shape(self, uplink: Conditions | None = None, downlink: Conditions | None = None) -> dict:
        """Sets what the side namespace's sending (`uplink`) and receiving (`downlink`)
        meet; a direction not given keeps its conditions. The link's counters so far."""
        if self.link is None:
            raise RuntimeError("create(shaped=True) to shape the side link")
        return self.link.set(uplink=uplink, downlink=downlink)

    def clear(self) -> dict:
        """Both directions back to a clean link."""
        return self.shape(uplink=CLEAR, downlink=CLEAR)

    async def outage(self, seconds: float) -> None:
        """The link drops everything, both ways, for `seconds`; then comes back as it was."""
        if self.link is None:
            raise RuntimeError("create(shaped=True) to cut the side link")
        before = dict(self.link.conditions)
        self.shape(
            uplink=dataclasses.replace(before["uplink"], down=True),
            downlink=dataclasses.replace(before["downlink"], down=True),
        )
        try:
            await asyncio.sleep(seconds)
        finally:
            self.shape(uplink=before["uplink"], downlink=before["downlink"])

    def command(self, *args: str) -> list[str]:
        """`args` run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def wrap(self, executable: str, folder: Path) -> Path:
        """A script in `folder` that runs `executable`, with its arguments, in this namespace:
        for a launcher that takes an executable's path (Playwright's Chromium)."""
        script = folder / f"{Path(executable).name}-in-{self.name}"
        script.write_text(f'#!/bin/sh\nexec {shlex.join(self.command(executable))} "$@"\n')
        script.chmod(0o700)
        return script

    def forward(self, port: int, host: str = ADDRESS) -> None:
        """127.0.0.1:`port` in this namespace leads to `host`:`port` across the link, so that
        a browser here opens the server at the same secure-context address as elsewhere."""
        process = subprocess.Popen(
            self.command(sys.executable, "-m", "visio.testing.forward", str(port), host, str(port)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._forwarders.append(process)
        if process.stdout.readline().strip() != "ready":
            raise NetnsUnavailable(f"the forwarder of port {port} did not start")

    def remove(self) -> None:
        """Deletes the namespace; its end of the link, and so the link, goes with it."""
        for process in self._forwarders:
            process.stdin.close()  # it exits at the end of its input
            stop_process(process, timeout=5)
        self._forwarders.clear()
        if self.link is not None:
            self.link.stop()  # its devices go with it
            self.link = None
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", SIDE_VETH], capture_output=True, check=False)
