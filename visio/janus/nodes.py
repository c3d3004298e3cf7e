"""The Janus media nodes this server places meetings on.

Each node has one connection and one control handle (room create/destroy). A new
meeting goes to the connected node with the fewest participants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from visio.janus.client import JanusConnection, JanusHandle, JanusSession, JanusUnavailable
from visio.janus.videoroom import PLUGIN

log = logging.getLogger(__name__)
RECONNECT_S = 2.0


@dataclass
class JanusNode:
    url: str
    api_secret: str
    admin_key: str
    connection: JanusConnection | None = None
    control_session: JanusSession | None = None
    control: JanusHandle | None = None
    participants: int = 0
    meetings: int = 0
    _watch: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def up(self) -> bool:
        return self.connection is not None and self.connection.connected

    async def connect(self) -> None:
        connection = JanusConnection(self.url, self.api_secret)
        await connection.connect()
        self.control_session = await connection.create_session()
        self.control = await self.control_session.attach(PLUGIN)
        self.connection = connection
        log.info("janus node connected", extra={"janus": self.url})

    def watch(self) -> None:
        """Reconnect in the background whenever the connection drops."""
        self._watch = asyncio.create_task(self._reconnect_loop(), name=f"janus-watch {self.url}")

    async def _reconnect_loop(self) -> None:
        while True:
            if self.connection is not None:
                await self.connection.closed.wait()
                self.meetings = self.participants = 0
            await asyncio.sleep(RECONNECT_S)
            try:
                await self.connect()
            except (OSError, TimeoutError, JanusUnavailable) as exc:
                log.warning("janus node unreachable", extra={"janus": self.url, "error": str(exc)})

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.control_session is not None and self.up:
            await self.control_session.destroy()
        if self.connection is not None:
            await self.connection.close()


class NoJanusNode(Exception):
    pass


class JanusPool:
    def __init__(self, urls: list[str], api_secret: str, admin_key: str) -> None:
        self.nodes = [JanusNode(url, api_secret, admin_key) for url in urls]

    async def start(self) -> None:
        results = await asyncio.gather(
            *(node.connect() for node in self.nodes), return_exceptions=True
        )
        for node, result in zip(self.nodes, results, strict=True):
            if isinstance(result, BaseException):
                log.warning(
                    "janus node unreachable", extra={"janus": node.url, "error": str(result)}
                )
            node.watch()
        if not any(node.up for node in self.nodes):
            log.error("no janus node is reachable yet; retrying in the background")

    def pick(self) -> JanusNode:
        candidates = [node for node in self.nodes if node.up]
        if not candidates:
            raise NoJanusNode("no media server is available")
        return min(candidates, key=lambda node: (node.participants, node.meetings))

    async def close(self) -> None:
        await asyncio.gather(*(node.close() for node in self.nodes), return_exceptions=True)
