"""A deployment at scale for the whole module: PostgreSQL, Redis, Janus nodes, several
server processes and HAProxy, all started here and stopped by their pids."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.conftest import GENEROUS_LIMITS, People
from visio.client import PcmAudioTrack, TestPatternTrack, VisioClient
from visio.testing.cluster import Deployment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    deployment = Deployment(servers=2, nodes=2, reconnect_grace_s=10, **GENEROUS_LIMITS)
    deployment.start()
    yield deployment
    deployment.stop()


class ClusterBots:
    """aiortc bots, each on the server process (or HAProxy) the test names."""

    def __init__(self) -> None:
        self.clients: list[VisioClient] = []

    async def join(
        self, base_url: str, room: str, name: str, publish: bool = True, **options: Any
    ) -> VisioClient:
        client = VisioClient(base_url, room, name, **options)
        self.clients.append(client)
        first = await client.connect()
        if publish and first["type"] == "joined":
            await client.publish([PcmAudioTrack(), TestPatternTrack()])
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture
async def bots() -> AsyncIterator[ClusterBots]:
    pool = ClusterBots()
    yield pool
    await pool.close()


@pytest.fixture
async def people(deployment: Deployment) -> AsyncIterator[People]:
    """People signing in through HAProxy (their session works on every process)."""
    found = People(deployment)  # type: ignore[arg-type]
    yield found
    await found.close()
