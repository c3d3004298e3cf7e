"""Test harness: a private network namespace for the whole run, and a real server.

Integration and browser tests run the real `visio serve` (with its own Janus) and real
WebRTC clients. Janus never uses loopback for ICE, so before any test starts this
process moves into a network namespace of its own with a veth pair (root needed; CI runs
as root). Nothing in it can reach another host.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator

import pytest

from visio.client import PcmAudioTrack, TestPatternTrack, VisioClient
from visio.testing import netns
from visio.testing.server import ServerProcess

NETNS_ERROR: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global NETNS_ERROR
    try:
        netns.enter()
    except netns.NetnsUnavailable as exc:
        NETNS_ERROR = str(exc)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if NETNS_ERROR is None:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"cannot run media tests: {NETNS_ERROR}")
    skip = pytest.mark.skip(reason=f"no network namespace: {NETNS_ERROR}")
    for item in items:
        if "integration" in item.keywords or "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    process = ServerProcess()
    process.start()
    yield process
    code = process.stop()
    # uvicorn re-raises SIGTERM after its graceful shutdown: -15 is a clean stop.
    assert code in (0, -signal.SIGTERM), (
        f"server did not stop cleanly ({code}):\n{process.log_tail()}"
    )


@pytest.fixture
def room(server: ServerProcess) -> str:
    return server.create_room()


class Bots:
    """Creates aiortc bots for a test and makes sure they are all closed."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.clients: list[VisioClient] = []

    async def join(
        self, room: str, name: str, publish: bool = True, **options: bool
    ) -> VisioClient:
        client = VisioClient(self.server.base_url, room, name, **options)
        self.clients.append(client)
        await client.connect()
        if publish:
            await client.publish([PcmAudioTrack(), TestPatternTrack()])
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture
async def bots(server: ServerProcess) -> AsyncIterator[Bots]:
    pool = Bots(server)
    yield pool
    await pool.close()
