"""Move this process into a private network namespace with a veth pair.

Janus, libnice and aiortc never gather loopback candidates, so media tests need a real
interface. `enter()` unshares the network namespace of the calling process (it must run
before any thread starts, as root) and creates a veth pair whose two ends both live in
the new namespace: nothing sent there can reach another host. Its default route points
at the peer end, which forwards nothing: Firefox gathers no ICE candidate at all in a
namespace without a default route.
"""

from __future__ import annotations

import ctypes
import os
import subprocess

CLONE_NEWNET = 0x40000000
VETH = "visio0"
VETH_PEER = "visio1"
ADDRESS = "10.77.0.1"
PEER_ADDRESS = "10.77.0.2"


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
    os.environ["VISIO_TEST_NETNS"] = "1"
