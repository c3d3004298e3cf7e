"""A meeting's Janus rooms: one on each media node the meeting spans.

Each room has a Janus session of its own on its node, which holds the handles of the
people placed there. A meeting starts with one room; when that node is full, newcomers go
to a room on another node, and every speaker's feed is mirrored there once (Janus remote
publishers, visio.janus.cascade), however many people watch it on that node.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from visio.janus.client import JanusError, JanusHandle, JanusSession
from visio.janus.nodes import JanusNode
from visio.janus.videoroom import RoomOptions, create_room, destroy_room

log = logging.getLogger(__name__)


def new_janus_room_id() -> int:
    return secrets.randbits(52) or 1


def media_address(node: JanusNode) -> str:
    """Where other nodes send this node the RTP of mirrored feeds: its API's host."""
    host = urlsplit(node.url).hostname or "127.0.0.1"
    return "127.0.0.1" if host == "localhost" else host


@dataclass(eq=False)
class MediaRoom:
    node: JanusNode
    janus_room: int
    session: JanusSession

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def control(self) -> JanusHandle:
        if self.node.control is None:
            raise JanusError(0, f"media node {self.node.url} is not connected")
        return self.node.control

    @property
    def up(self) -> bool:
        return self.node.up and self.session.connection is self.node.connection

    @classmethod
    async def open(cls, node: JanusNode, options: RoomOptions) -> MediaRoom:
        if node.connection is None or node.control is None:
            raise JanusError(0, f"media node {node.url} is not connected")
        session = await node.connection.create_session()
        janus_room = new_janus_room_id()
        try:
            await create_room(node.control, janus_room, node.admin_key, options)
        except JanusError:
            await session.destroy()  # or its keepalive would keep it forever
            raise
        return cls(node, janus_room, session)

    @classmethod
    async def claim(cls, node: JanusNode, janus_room: int, session_id: int) -> MediaRoom:
        """The room of a meeting another process ran: its session is taken over, with
        every handle and peer connection in it."""
        if node.connection is None:
            raise JanusError(0, f"media node {node.url} is not connected")
        return cls(node, janus_room, await node.connection.claim_session(session_id))

    async def close(self) -> None:
        """Destroy the room, then the session (with whatever handles are left in it)."""
        if self.node.up and self.node.control is not None:
            with contextlib.suppress(JanusError):
                await destroy_room(self.node.control, self.janus_room)
        await self.session.destroy()

    def release(self) -> None:
        """Leave the room and its session on Janus for the process that takes over."""
        self.session.release()
