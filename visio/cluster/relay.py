"""Clients whose socket is on one process and whose room is held by another.

The process that accepted the WebSocket (the edge) keeps the socket and relays: every
frame the client sends goes over the bus to the room's owner, and every frame the owner
has for the client comes back the same way. On the owner the client is a `ClientSession`
like any other, whose outbox happens to be the bus (`RemoteOutbox`): the meeting does not
know the difference.

    edge                                   owner
    Relay.handle(raw)  ── "hello", "frame" ──▶  RemoteClients → ClientSession.handle
    WebSocketOutbox    ◀── "deliver", "close" ── RemoteOutbox.send / close
    Relay.disconnected ── "gone" ───────────▶  ClientSession.disconnected

Each side watches the other: when the owner dies the edge closes the socket (1012, the
client reconnects and resumes where the room is held now); when the edge dies the owner
treats the client as disconnected (their place is kept for the reconnection grace).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from visio.cluster.bus import BadMessage, Bus
from visio.conference.records import IdentityRecord
from visio.conference.signalling import ClientSession
from visio.conference.websocket import WebSocketOutbox

log = logging.getLogger(__name__)
MOVED = (1012, "meeting moved")  # the client reconnects and resumes
QUEUE_LIMIT = 2000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    conn: str = Field(min_length=1, max_length=64)


class Hello(_Body):
    identity: IdentityRecord
    client: str = Field(max_length=64)


class Frame(_Body):
    frame: str = Field(max_length=1_000_000)


class Gone(_Body):
    pass


class Deliver(_Body):
    frame: dict[str, Any]


class Close(_Body):
    code: int = Field(ge=1000, le=4999)
    reason: str = Field(max_length=123)


T = TypeVar("T", bound=BaseModel)


def _parse(model: type[T], body: dict[str, Any]) -> T:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise BadMessage(f"{model.__name__.lower()}: {exc.errors()[0]['msg']}") from exc


# -- on the edge ---------------------------------------------------------------------------


class Relay:
    """A client of this process whose room another process holds."""

    left = False  # the owner closes the socket when they leave

    def __init__(self, edge: Edge, owner: str, outbox: WebSocketOutbox) -> None:
        self.edge = edge
        self.owner = owner
        self.outbox = outbox
        self.conn = secrets.token_hex(8)

    async def handle(self, raw: str | bytes) -> None:
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        self.edge.bus.post(self.owner, "frame", {"conn": self.conn, "frame": text})

    def disconnected(self) -> None:
        if self.edge.relays.pop(self.conn, None) is not None:
            self.edge.bus.post(self.owner, "gone", {"conn": self.conn})


class Edge:
    """The relays of this process, and the frames their owners send back."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.relays: dict[str, Relay] = {}
        bus.on("deliver", self._deliver)
        bus.on("close", self._close)

    def open(self, owner: str, outbox: WebSocketOutbox, hello: Hello) -> Relay:
        relay = Relay(self, owner, outbox)
        self.relays[relay.conn] = relay
        self.bus.post(owner, "hello", hello.model_copy(update={"conn": relay.conn}).model_dump())
        return relay

    def owners(self) -> set[str]:
        return {relay.owner for relay in self.relays.values()}

    def close_relays(self, owner: str | None = None) -> None:
        """Close the sockets relayed to `owner` (or to anyone): their clients reconnect."""
        for relay in [r for r in self.relays.values() if owner is None or r.owner == owner]:
            relay.outbox.close(*MOVED)

    def _relay(self, sender: str, conn: str) -> Relay | None:
        relay = self.relays.get(conn)
        return relay if relay is not None and relay.owner == sender else None

    def _deliver(self, sender: str, body: dict[str, Any]) -> None:
        message = _parse(Deliver, body)
        relay = self._relay(sender, message.conn)
        if relay is not None:
            relay.outbox.send(message.frame)

    def _close(self, sender: str, body: dict[str, Any]) -> None:
        message = _parse(Close, body)
        relay = self._relay(sender, message.conn)
        if relay is not None:
            relay.outbox.close(message.code, message.reason)


# -- on the owner --------------------------------------------------------------------------


class RemoteOutbox:
    """Frames for a client whose socket another process holds."""

    def __init__(self, bus: Bus, edge: str, conn: str) -> None:
        self.bus = bus
        self.edge = edge
        self.conn = conn
        self.closing = False

    def send(self, frame: dict[str, Any]) -> None:
        if not self.closing:
            self.bus.post(self.edge, "deliver", {"conn": self.conn, "frame": frame})

    def close(self, code: int, reason: str) -> None:
        if not self.closing:
            self.closing = True
            self.bus.post(self.edge, "close", {"conn": self.conn, "code": code, "reason": reason})


class RemoteClient:
    """On the owner: one relayed client's session, fed in order by a task of its own."""

    def __init__(self, session: ClientSession, edge: str) -> None:
        self.session = session
        self.edge = edge
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while (raw := await self.queue.get()) is not None:
            try:
                await self.session.handle(raw)
            except Exception:
                log.exception("relayed frame failed")
        self.session.disconnected()


SessionFactory = Callable[[RemoteOutbox, Hello], ClientSession]


class RemoteClients:
    """The clients of rooms this process holds whose sockets are on other processes."""

    def __init__(self, bus: Bus, new_session: SessionFactory) -> None:
        self.bus = bus
        self.new_session = new_session
        self.clients: dict[tuple[str, str], RemoteClient] = {}
        bus.on("hello", self._hello)
        bus.on("frame", self._frame)
        bus.on("gone", self._gone)

    def edges(self) -> set[str]:
        return {client.edge for client in self.clients.values()}

    def edge_lost(self, edge: str) -> None:
        """That process died with its sockets: its clients are disconnected."""
        for key in [k for k in self.clients if k[0] == edge]:
            self._end(key)

    def _hello(self, sender: str, body: dict[str, Any]) -> None:
        hello = _parse(Hello, body)
        key = (sender, hello.conn)
        if key in self.clients:
            raise BadMessage("hello twice")
        outbox = RemoteOutbox(self.bus, sender, hello.conn)
        self.clients[key] = RemoteClient(self.new_session(outbox, hello), sender)

    def _frame(self, sender: str, body: dict[str, Any]) -> None:
        message = _parse(Frame, body)
        client = self.clients.get((sender, message.conn))
        if client is None:
            return  # the client is gone already
        if client.queue.qsize() >= QUEUE_LIMIT:
            client.session.outbox.close(1008, "too many frames")
            self._end((sender, message.conn))
            return
        client.queue.put_nowait(message.frame)

    def _gone(self, sender: str, body: dict[str, Any]) -> None:
        self._end((sender, _parse(Gone, body).conn))

    def _end(self, key: tuple[str, str]) -> None:
        client = self.clients.pop(key, None)
        if client is not None:
            client.queue.put_nowait(None)

    async def close(self) -> None:
        tasks = [c.task for c in self.clients.values()]
        for key in list(self.clients):
            self._end(key)
        if tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(tasks, timeout=2)
