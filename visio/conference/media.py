"""A meeting's Janus rooms: one on each media node the meeting spans.

Each room has a Janus session of its own on its node, which holds the handles of the
people placed there. A meeting starts with one room; when that node is full, newcomers go
to a room on another node, and every speaker's feed is mirrored there once (Janus remote
publishers, visio.janus.cascade), however many people watch it on that node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from visio.janus.client import JanusError, JanusHandle, JanusSession
from visio.janus.nodes import JanusNode
from visio.janus.videoroom import RoomOptions, allowed_tokens, create_room, destroy_room

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
    # The publish tokens Janus holds for this room (visio.conference.gate); None until
    # asked: a room taken over from another process has the list that process left.
    publishers_allowed: set[str] | None = None
    _gate: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

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

    async def allow_publishers(self, tokens: set[str]) -> None:
        """Make `tokens` the only ones Janus lets join this room as a publisher."""
        async with self._gate:
            allowed, self.publishers_allowed = self.publishers_allowed, None
            if allowed is None:
                allowed = await allowed_tokens(self.control, self.janus_room, "enable")
            if extra := allowed - tokens:
                allowed = await allowed_tokens(self.control, self.janus_room, "remove", extra)
            if missing := tokens - allowed:
                allowed = await allowed_tokens(self.control, self.janus_room, "add", missing)
            self.publishers_allowed = allowed  # (left None if Janus failed: asked again)

    async def close(self) -> None:
        """Destroy the room, then the session (with whatever handles are left in it)."""
        if self.node.up and self.node.control is not None:
            with contextlib.suppress(JanusError):
                await destroy_room(self.node.control, self.janus_room)
        await self.session.destroy()

    def release(self) -> None:
        """Leave the room and its session on Janus for the process that takes over."""
        self.session.release()
