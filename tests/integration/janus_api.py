"""Asking the test server's Janus itself, through its own API, what exists."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from visio.janus.client import JanusConnection, JanusHandle
from visio.testing.server import ServerProcess


@contextlib.asynccontextmanager
async def videoroom(server: ServerProcess) -> AsyncIterator[JanusHandle]:
    """A VideoRoom handle on the server's Janus, for the test's own questions."""
    connection = JanusConnection(server.janus_url, server.api_secret)
    await connection.connect()
    try:
        session = await connection.create_session()
        yield await session.attach()
        await session.destroy()
    finally:
        await connection.close()


async def janus_rooms(server: ServerProcess) -> list[int]:
    """The VideoRoom rooms that exist on the server's Janus."""
    async with videoroom(server) as handle:
        listing = await handle.request({"request": "list", "admin_key": server.admin_key})
    return [room["room"] for room in listing["list"]]
