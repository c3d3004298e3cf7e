"""A client's WebSocket: read its frames, hand them to its signalling, write the replies.

The first `join` names the room. The router says where that room is held: in this process
(the frames go to a `ClientSession` here), or, with several server processes, in another
one (the frames are relayed to it: visio.cluster.relay). Either way the socket stays here,
and replies go through an outbox with its own writer task, so a slow client never holds
up a meeting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from visio import protocol as p
from visio.access import Identity
from visio.auth.identity import SessionCheck
from visio.config import Settings
from visio.limits.budgets import RateLimiter

log = logging.getLogger(__name__)
OUTBOX_LIMIT = 2000  # frames waiting for a client that does not read
OUTBOX_BYTES = 4 * 1024 * 1024  # and their size: a slow reader costs memory, not more
RATE_LIMITED = {"type": "error", "code": "rate_limited", "message": "too many messages; slow down"}
SIGNED_OUT = {"type": "error", "code": "signed_out", "message": "your sign-in has ended"}
SIGNED_OUT_CLOSE = 4401
JOIN_TIMEOUT = {"type": "error", "code": "join_timeout", "message": "no join in time"}
JOIN_TIMEOUT_CLOSE = 4408
LEAVE = '{"type": "leave"}'


class WebSocketOutbox:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.queued_bytes = 0
        self.closing: tuple[int, str] | None = None
        self.writer = asyncio.create_task(self._write_loop())

    def send(self, frame: dict[str, Any]) -> None:
        if self.closing is not None:
            return
        text = json.dumps(frame, ensure_ascii=False)
        if self.queue.qsize() >= OUTBOX_LIMIT or self.queued_bytes + len(text) > OUTBOX_BYTES:
            log.warning("client too slow, closing its connection")
            self.close(1008, "too slow")
            return
        self.queued_bytes += len(text)
        self.queue.put_nowait(text)

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, reason)
            self.queue.put_nowait(None)

    async def _write_loop(self) -> None:
        try:
            while (text := await self.queue.get()) is not None:
                self.queued_bytes -= len(text)
                await self.websocket.send_text(text)
            code, reason = self.closing or (1000, "")
            await self.websocket.close(code, reason)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away; the reader notices too

    async def drain(self) -> None:
        self.close(1000, "")
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self.writer, 2.0)


class Connection(Protocol):
    """Where a client's frames go once it has named its room."""

    left: bool

    async def handle(self, raw: str | bytes) -> None: ...

    def disconnected(self) -> None: ...


class Router(Protocol):
    async def connect(
        self, join: p.Join, outbox: WebSocketOutbox, identity: Identity, client: str
    ) -> Connection: ...


async def serve_websocket(
    websocket: WebSocket,
    settings: Settings,
    identity: Identity,
    router: Router,
    session: SessionCheck | None = None,
) -> None:
    """Serve one client. `session`: its sign-in, checked again at `join` and every
    `session_check_s`: once signed out (or expired) it leaves, told `signed_out`."""
    await websocket.accept()
    outbox = WebSocketOutbox(websocket)
    client = websocket.client.host if websocket.client else "?"
    connection: Connection | None = None
    limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    signed_out = asyncio.Event()
    watch = None
    if session is not None:
        watch = asyncio.create_task(_watch(session, settings.session_check_s, signed_out))
    join_by = asyncio.get_running_loop().time() + settings.ws_join_timeout_s
    try:
        while outbox.closing is None and not (connection and connection.left):
            try:
                raw = await _receive(
                    websocket,
                    _wait_s(settings, connection, join_by),
                    signed_out if session else None,
                )
            except TimeoutError:
                _timed_out(outbox, joined=connection is not None)
                break
            if raw is None or signed_out.is_set():
                break
            if not limiter.allow():
                outbox.send(RATE_LIMITED)
                continue
            if connection is None:
                if session is not None and not await session.holds():
                    signed_out.set()
                    break
                connection = await _first_frames(raw, outbox, identity, client, router, settings)
            if connection is not None:
                await connection.handle(raw)
    except Exception:
        log.exception("websocket session failed")
        if websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(1011)
    finally:
        if watch is not None:
            watch.cancel()
        if signed_out.is_set():
            await _sign_out(outbox, connection)
        elif connection is not None:
            connection.disconnected()
        await outbox.drain()


def _wait_s(settings: Settings, connection: Connection | None, join_by: float) -> float:
    """Idle sockets go after ws_idle_timeout_s; those that never join, sooner."""
    if connection is not None:
        return settings.ws_idle_timeout_s
    left = join_by - asyncio.get_running_loop().time()
    return max(0.0, min(settings.ws_idle_timeout_s, left))


def _timed_out(outbox: WebSocketOutbox, joined: bool) -> None:
    if joined:
        outbox.close(1001, "idle")
    else:
        outbox.send(JOIN_TIMEOUT)
        outbox.close(JOIN_TIMEOUT_CLOSE, "no join in time")


async def _watch(session: SessionCheck, every_s: float, signed_out: asyncio.Event) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            if not await session.holds():
                signed_out.set()
                return
        except Exception:  # the database may be away a moment: ask again later
            log.warning("could not check a websocket's sign-in", exc_info=True)


async def _sign_out(outbox: WebSocketOutbox, connection: Connection | None) -> None:
    """Out of the meeting at once (no place kept for a resume: the identity is gone)."""
    outbox.send(SIGNED_OUT)
    outbox.close(SIGNED_OUT_CLOSE, "signed out")
    if connection is not None and not connection.left:
        with contextlib.suppress(Exception):
            await connection.handle(LEAVE)


async def _first_frames(
    raw: str | bytes,
    outbox: WebSocketOutbox,
    identity: Identity,
    client: str,
    router: Router,
    settings: Settings,
) -> Connection | None:
    """Until the client joins, answer here; its `join` finds where the room is held."""
    try:
        message = p.parse(raw, settings.max_frame_bytes)
        if isinstance(message, p.Ping):
            outbox.send({"type": "pong"})
            return None
        if not isinstance(message, p.Join):
            raise p.ProtocolError("not_joined", "send join first", message.ref)
        return await router.connect(message, outbox, identity, client)
    except p.ProtocolError as error:
        outbox.send(error.frame())
        return None


async def _receive(
    websocket: WebSocket, timeout_s: float, stop: asyncio.Event | None = None
) -> str | bytes | None:
    """The next frame; None when the client went away or `stop` was set; TimeoutError."""
    async with asyncio.timeout(timeout_s):
        if stop is None:
            message = await websocket.receive()
        else:
            message = await _receive_unless(websocket, stop)
    if message is None or message["type"] == "websocket.disconnect":
        return None
    return message.get("text") if message.get("text") is not None else message.get("bytes")


async def _receive_unless(websocket: WebSocket, stop: asyncio.Event) -> dict[str, Any] | None:
    receiving = asyncio.ensure_future(websocket.receive())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((receiving, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        received = receiving.done()
        if not received:
            receiving.cancel()
    return receiving.result() if received else None
