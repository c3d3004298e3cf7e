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


async def room_of_publisher(server: ServerProcess, display: str) -> int:
    """The Janus room where the participant with this id publishes (the server joins each
    publication under its participant's id)."""
    async with videoroom(server) as handle:
        listing = await handle.request({"request": "list", "admin_key": server.admin_key})
        for room in listing["list"]:
            data = await handle.request({"request": "listparticipants", "room": room["room"]})
            if display in {p.get("display") for p in data.get("participants", [])}:
                return int(room["room"])
    raise AssertionError(f"{display} publishes in no Janus room")


async def publish_tokens(server: ServerProcess, room: int) -> set[str]:
    """The tokens a publisher may join this Janus room with (adding none, Janus lists them)."""
    async with videoroom(server) as handle:
        data = await handle.request({"request": "allowed", "room": room, "action": "add"})
    return set(data["allowed"])


async def join_as_publisher(server: ServerProcess, room: int, token: str | None) -> None:
    """Join a Janus room as a publisher straight through Janus' API, past the server: what
    a mistake in the server's checks would let through. Leaves at once; JanusError if
    Janus refuses."""
    body = {"request": "join", "ptype": "publisher", "room": room, "display": "intruder"}
    if token is not None:
        body["token"] = token
    async with videoroom(server) as handle:
        await handle.message(body)
