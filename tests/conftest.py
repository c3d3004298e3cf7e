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
from typing import Any

import httpx
import pytest

from visio.client import PcmAudioTrack, TestPatternTrack, VisioClient
from visio.testing import netns
from visio.testing.coturn import TurnServer
from visio.testing.idp import IdentityProvider, sign_in
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


# The whole run comes from 127.0.0.1: per-address limits are tested on a server of their own.
GENEROUS_LIMITS = {
    "room_creations_per_minute": 10_000,
    "joins_per_minute": 10_000,
    "lobby_requests_per_minute": 10_000,
    "address_room_creations_per_minute": 10_000,
    "address_joins_per_minute": 10_000,
    "address_lobby_requests_per_minute": 10_000,
    "max_joins_per_second": 10_000,
}


def start_server(idp: bool = True, **settings: object) -> tuple[ServerProcess, IdentityProvider]:
    """A server, and the identity provider it signs people in with (started first)."""
    process = ServerProcess(**settings)
    provider = IdentityProvider([process.base_url + "/auth/callback"], process.data_dir)
    if idp:
        provider.start()
        process.env.update(
            VISIO_PUBLIC_URL=process.base_url,  # sign-in needs it (never the Host header)
            VISIO_OIDC_ISSUER=provider.issuer,
            VISIO_OIDC_CLIENT_ID=provider.client_id,
            VISIO_OIDC_CLIENT_SECRET=provider.client_secret,
        )
    try:
        process.start()
    except Exception:
        provider.stop()
        raise
    return process, provider


def start_open_server(**settings: object) -> tuple[ServerProcess, IdentityProvider]:
    """A server for tests with a side namespace: it listens on every address of the
    harness' namespace (the side one reaches it across its link), guests create rooms."""
    return start_server(
        idp=False, host="0.0.0.0", guests_create_rooms=True, **{**GENEROUS_LIMITS, **settings}
    )


def stop_server(process: ServerProcess, provider: IdentityProvider) -> None:
    code = process.stop()
    provider.stop()
    # uvicorn re-raises SIGTERM after its graceful shutdown: -15 is a clean stop.
    assert code in (0, -signal.SIGTERM), (
        f"server did not stop cleanly ({code}):\n{process.log_tail()}"
    )


@pytest.fixture(scope="session")
def server_and_idp() -> Iterator[tuple[ServerProcess, IdentityProvider]]:
    """The run's server: sign-in on, guests may still create rooms, short lobby wait."""
    pair = start_server(guests_create_rooms=True, lobby_timeout_s=10, **GENEROUS_LIMITS)
    yield pair
    stop_server(*pair)


@pytest.fixture(scope="session")
def quick_lobby_server() -> Iterator[ServerProcess]:
    """A server whose lobby requests expire after a few seconds: the tests that wait for
    one to expire, without slowing down those that wait in the run's server's lobby."""
    pair = start_server(lobby_timeout_s=QUICK_LOBBY_TIMEOUT_S, **GENEROUS_LIMITS)
    yield pair[0]
    stop_server(*pair)


QUICK_LOBBY_TIMEOUT_S = 4


@pytest.fixture(scope="session")
def server(server_and_idp: tuple[ServerProcess, IdentityProvider]) -> ServerProcess:
    return server_and_idp[0]


@pytest.fixture(scope="session")
def idp(server_and_idp: tuple[ServerProcess, IdentityProvider]) -> IdentityProvider:
    return server_and_idp[1]


@pytest.fixture
def room(server: ServerProcess) -> str:
    return server.create_room()


class Bots:
    """Creates aiortc bots for a test and makes sure they are all closed."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.clients: list[VisioClient] = []

    async def join(self, room: str, name: str, publish: bool = True, **options: Any) -> VisioClient:
        client = VisioClient(self.server.base_url, room, name, **options)
        self.clients.append(client)
        first = await client.connect()
        if publish and first["type"] == "joined":
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


class Person:
    """Someone using the HTTP API from their own browser-like cookie jar."""

    def __init__(self, http: httpx.AsyncClient, login: str | None) -> None:
        self.http = http
        self.login = login

    @property
    def cookies(self) -> dict[str, str]:
        return {cookie.name: cookie.value for cookie in self.http.cookies.jar}

    async def api(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"X-CSRF-Token": self.cookies.get("visio_csrf", "")}
        return await self.http.request(method, path, json=body, headers=headers)

    async def new_room(self, **fields: Any) -> str:
        response = await self.api("POST", "/api/rooms", fields)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


class People:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.clients: list[httpx.AsyncClient] = []

    def _client(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self.server.base_url, timeout=15)
        self.clients.append(client)
        return client

    async def signed_in(self, login: str) -> Person:
        """Signs in through the real identity provider (its login and consent forms)."""
        http = self._client()
        response = await sign_in(http, f"{self.server.base_url}/auth/login?next=/", login)
        assert response.status_code == 302, response.text
        assert "visio_session" in {c.name for c in http.cookies.jar}
        return Person(http, login)

    async def guest(self) -> Person:
        http = self._client()
        assert (await http.get("/api/me")).status_code == 200  # sets the guest cookies
        return Person(http, None)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


@pytest.fixture
async def people(server: ServerProcess) -> AsyncIterator[People]:
    found = People(server)
    yield found
    await found.close()


@pytest.fixture(scope="module")
def shaped_side() -> Iterator[netns.SideNamespace]:
    """A side namespace whose link to the harness' one can be shaped (visio.testing.link)."""
    namespace = netns.SideNamespace()
    namespace.create(shaped=True)
    yield namespace
    namespace.remove()


@pytest.fixture(scope="module")
def turn() -> Iterator[TurnServer]:
    """coturn on the side link's address, relaying from the address Janus uses."""
    server = TurnServer(listen=netns.SIDE_ADDRESS, relay=netns.ADDRESS)
    yield server
    server.remove()


@pytest.fixture(scope="module")
def udp_blocked_side(turn: TurnServer) -> Iterator[netns.SideNamespace]:
    """A side namespace whose nftables rules drop every UDP datagram: TCP to the harness'
    namespace (the server, coturn) is its only way out."""
    namespace = netns.SideNamespace()
    namespace.create(netns.NO_UDP_RULES)
    turn.start()  # listens on the side link's address: after the link exists
    yield namespace
    namespace.remove()
