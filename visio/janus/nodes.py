"""The Janus media nodes this server places meetings on.

Each node has one connection and one control handle (room create/destroy). A new meeting
goes to the usable node (connected, not draining) that carries the least: forwarded
streams against the node's capacity, or its CPU when the node reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from visio.janus.client import JanusConnection, JanusHandle, JanusSession, JanusUnavailable
from visio.janus.videoroom import PLUGIN

log = logging.getLogger(__name__)
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 5.0


@dataclass
class JanusNode:
    url: str
    api_secret: str
    admin_key: str
    connection: JanusConnection | None = None
    control_session: JanusSession | None = None
    control: JanusHandle | None = None
    draining: bool = False  # an operator takes it out: no new meeting, its people move
    on_lost: list[Callable[[JanusNode], None]] = field(default_factory=list, repr=False)
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
        delay = RECONNECT_FIRST_S
        while True:
            if self.connection is not None and self.up:
                await self.connection.closed.wait()
                log.error("janus node lost", extra={"janus": self.url})
                for listener in self.on_lost:
                    listener(self)
                delay = RECONNECT_FIRST_S
            await asyncio.sleep(delay)
            try:
                await self.connect()
            except (OSError, TimeoutError, JanusUnavailable) as exc:
                log.warning("janus node unreachable", extra={"janus": self.url, "error": str(exc)})
                delay = min(delay * 2, RECONNECT_MAX_S)

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


@dataclass
class NodeLoad:
    """What a node carries (summed over the server processes that use it)."""

    meetings: int = 0
    participants: int = 0
    streams: int = 0  # tracks forwarded: each subscriber's, and each mirror's
    cpu: float | None = None  # share of the node's cores its Janus uses, when reported
    rx_bps: float | None = None  # the node host's traffic, when reported
    tx_bps: float | None = None

    def __add__(self, other: NodeLoad) -> NodeLoad:
        return NodeLoad(
            self.meetings + other.meetings,
            self.participants + other.participants,
            self.streams + other.streams,
            _either(self.cpu, other.cpu),
            _either(self.rx_bps, other.rx_bps),
            _either(self.tx_bps, other.tx_bps),
        )

    def score(self, capacity: int) -> float:
        """How full the node is, 0 (idle) to 1 (full) and beyond."""
        return max(self.streams / max(1, capacity), self.cpu or 0.0)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "meetings": self.meetings,
            "participants": self.participants,
            "streams": self.streams,
            "cpu": self.cpu,
            "rx_bps": self.rx_bps,
            "tx_bps": self.tx_bps,
        }


def _either(mine: float | None, theirs: float | None) -> float | None:
    """A figure the node reports itself (the same whoever read it)."""
    return mine if mine is not None else theirs


Loads = Callable[[], dict[str, NodeLoad]]


class JanusPool:
    def __init__(
        self, urls: list[str], api_secret: str, admin_key: str, capacity: int = 2000
    ) -> None:
        self.nodes = [JanusNode(url, api_secret, admin_key) for url in urls]
        self.capacity = capacity  # streams a node forwards at full load

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

    def node(self, url: str) -> JanusNode | None:
        return next((node for node in self.nodes if node.url == url), None)

    def on_node_lost(self, listener: Callable[[JanusNode], None]) -> None:
        for node in self.nodes:
            node.on_lost.append(listener)

    async def pick_when_up(self, timeout: float, loads: Loads) -> JanusNode:
        """The least loaded usable node, waiting up to `timeout` seconds for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            usable = self.usable()
            if usable:
                return self.least_loaded(usable, loads())
            if loop.time() >= deadline:
                raise NoJanusNode("no media server is available")
            await asyncio.sleep(0.2)

    def usable(self) -> list[JanusNode]:
        return [node for node in self.nodes if node.up and not node.draining]

    def least_loaded(self, nodes: list[JanusNode], loads: dict[str, NodeLoad]) -> JanusNode:
        def weight(node: JanusNode) -> tuple[float, int, int]:
            load = loads.get(node.url, NodeLoad())
            return (load.score(self.capacity), load.participants, load.meetings)

        return min(nodes, key=weight)

    async def close(self) -> None:
        await asyncio.gather(*(node.close() for node in self.nodes), return_exceptions=True)
