"""Locked-down networks: a participant whose UDP is blocked meets through coturn.

The blocked participant is `visio bot` in a namespace of its own whose nftables rules drop
every UDP datagram; it reaches the harness' namespace (the server, coturn) over TCP only.
coturn checks the `use-auth-secret` credentials the server hands out, and relays from the
address Janus gathers on. A bot in the harness' namespace publishes and subscribes as usual.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import GENEROUS_LIMITS, Bots, start_open_server, start_server, stop_server
from visio.testing import netns
from visio.testing.coturn import TurnServer
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.integration

VIDEO_FRAMES = 60  # ~4 s of the test pattern each way
UNREACHABLE_PUBLIC_IP = "10.77.0.200"  # on the harness' link, but nobody's address


@pytest.fixture(scope="module")
def turn_server(turn: TurnServer, udp_blocked_side: netns.SideNamespace) -> Iterator[ServerProcess]:
    """A server on every address of the namespace (the side one reaches it), with TURN."""
    process, provider = start_open_server(
        turn_urls=json.dumps([turn.tcp_url, turn.tls_url]), turn_secret=turn.secret
    )
    yield process
    stop_server(process, provider)


@pytest.fixture
async def turn_bots(turn_server: ServerProcess) -> AsyncIterator[Bots]:
    pool = Bots(turn_server)
    yield pool
    await pool.close()


async def blocked_bot(
    server: ServerProcess,
    udp_blocked_side: netns.SideNamespace,
    turn: TurnServer,
    room: str,
    *options: str,
) -> subprocess.CompletedProcess[str]:
    """`visio bot` from the UDP-blocked namespace, trusting the test certificate."""
    link = f"http://{netns.ADDRESS}:{server.port}/{room}"
    command = udp_blocked_side.command(
        sys.executable, "-m", "visio", "bot", link, "--name", "Blocked",
        "--until-video", str(VIDEO_FRAMES), "--duration", "45", *options,
    )  # fmt: skip
    env = {**os.environ, "SSL_CERT_FILE": str(turn.cert)}
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=90, check=False
    )


def udp_dropped(udp_blocked_side: netns.SideNamespace) -> int:
    """Packets the side namespace's firewall dropped on the way out."""
    listing = subprocess.run(
        udp_blocked_side.command("nft", "list", "chain", "inet", "visio_no_udp", "output"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(re.search(r"counter packets (\d+)", listing).group(1))


@pytest.mark.parametrize(
    "options",
    [
        # Every candidate, as a browser by default: its UDP attempts are dropped, TCP works.
        pytest.param(("--turn", "tcp"), id="tcp"),
        pytest.param(("--turn", "tls"), id="tls"),
        # Relayed candidates only, as a browser under a relay-only policy.
        pytest.param(("--turn", "tls", "--relay"), id="tls-relay-only"),
    ],
)
async def test_udp_blocked_participant_meets_through_turn(
    turn_bots, turn_server, udp_blocked_side, turn, options
):
    room = turn_server.create_room()
    open_bot = await turn_bots.join(room, "Open")
    dropped_before = udp_dropped(udp_blocked_side)

    result = await blocked_bot(turn_server, udp_blocked_side, turn, room, *options)

    assert result.returncode == 0, (
        f"{result.stdout}\n{result.stderr}\n--- coturn\n{turn.log_tail()}\n"
        f"--- server\n{turn_server.log_tail()}"
    )
    blocked_id = re.search(r"joined \S+ as (\S+)", result.stdout).group(1)
    assert f"{open_bot.id}/video" in result.stdout  # it received the open bot's video...
    assert open_bot.frames_from(blocked_id, "video") >= 10  # ...and the open bot its video
    assert open_bot.frames_from(blocked_id, "audio") >= 10
    if "--relay" not in options:  # it did try UDP, and the firewall dropped it
        assert udp_dropped(udp_blocked_side) > dropped_before


async def test_media_node_behind_nat_is_reached_through_turn_on_its_private_address(
    udp_blocked_side, turn
):
    """Janus told its public address (`janus_public_ip`, 1:1 NAT) that the TURN server, in
    the same private network, cannot reach (no hairpin NAT here: nothing answers on it)."""
    server, provider = start_server(
        idp=False,
        host="0.0.0.0",
        guests_create_rooms=True,
        janus_public_ip=UNREACHABLE_PUBLIC_IP,
        turn_urls=json.dumps([turn.tcp_url]),
        turn_secret=turn.secret,
        **GENEROUS_LIMITS,
    )
    bots = Bots(server)
    try:
        room = server.create_room()
        open_bot = await bots.join(room, "Open", relay_only=True)
        result = await blocked_bot(server, udp_blocked_side, turn, room, "--relay")
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{turn.log_tail()}"
        blocked_id = re.search(r"joined \S+ as (\S+)", result.stdout).group(1)
        assert open_bot.frames_from(blocked_id, "video") >= 10
    finally:
        await bots.close()
        stop_server(server, provider)
