"""A client for Janus' WebSocket API (subprotocol `janus-protocol`).

One `JanusConnection` per Janus node; it multiplexes sessions and handles over one
WebSocket, matches replies to requests by transaction, keeps sessions alive and routes
unsolicited events (`event`, `webrtcup`, `media`, `hangup`, `trickle`, ...) to the
handle they concern.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import websockets

log = logging.getLogger(__name__)

KEEPALIVE_S = 25.0
REQUEST_TIMEOUT_S = 15.0

EventCallback = Callable[["JanusEvent"], Awaitable[None] | None]


class JanusError(Exception):
    """Janus (or one of its plugins) refused a request."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Janus error {code}: {reason}")
        self.code = code
        self.reason = reason


class JanusUnavailable(JanusError):
    """The connection to Janus is down or did not answer in time."""

    def __init__(self, reason: str) -> None:
        super().__init__(0, reason)


@dataclass
class JanusEvent:
    """Something Janus said about a handle without being asked."""

    kind: str  # "event", "webrtcup", "media", "hangup", "slowlink", "detached", "trickle"
    data: dict[str, Any]  # plugin data for "event", the raw message otherwise
    jsep: dict[str, Any] | None = None


@dataclass
class PluginReply:
    data: dict[str, Any]
    jsep: dict[str, Any] | None = None


def _transaction() -> str:
    return secrets.token_hex(8)


class JanusConnection:
    def __init__(self, url: str, api_secret: str = "") -> None:
        self.url = url
        self.api_secret = api_secret
        self._ws: websockets.ClientConnection | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._wants_event: set[str] = set()
        self._handles: dict[int, JanusHandle] = {}
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self.closed.is_set()

    async def connect(self, timeout: float = 10.0) -> None:
        self._ws = await asyncio.wait_for(
            websockets.connect(
                self.url,
                subprotocols=[websockets.Subprotocol("janus-protocol")],
                max_size=8 * 1024 * 1024,
                ping_interval=None,
            ),
            timeout,
        )
        self.closed.clear()
        self._closing = False
        self._reader = asyncio.create_task(self._read_loop(), name=f"janus-reader {self.url}")

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def create_session(self) -> JanusSession:
        reply = await self.request({"janus": "create"})
        session = JanusSession(self, reply["data"]["id"])
        session.start_keepalive()
        return session

    async def claim_session(self, session_id: int) -> JanusSession:
        """Take over a session that another connection created (its events come here now).

        Janus keeps a session whose connection dropped for `reclaim_session_timeout`
        seconds, with its handles and their peer connections: the media never stops.
        """
        await self.request({"janus": "claim", "session_id": session_id})
        session = JanusSession(self, session_id)
        session.start_keepalive()
        return session

    async def info(self) -> dict[str, Any]:
        return await self.request({"janus": "info"})

    async def request(self, payload: dict[str, Any], *, wait_event: bool = False) -> dict[str, Any]:
        """Send one request and return Janus' final reply (`success` or the `event`).

        With `wait_event`, an `ack` is not final: the reply is the later `event` with the
        same transaction (asynchronous plugin requests such as join or configure).
        """
        if not self.connected or self._ws is None:
            raise JanusUnavailable("not connected to Janus")
        transaction = _transaction()
        message = {**payload, "transaction": transaction}
        if self.api_secret:
            message["apisecret"] = self.api_secret
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future
        if wait_event:
            self._wants_event.add(transaction)
        try:
            await self._ws.send(json.dumps(message))
            return await asyncio.wait_for(future, REQUEST_TIMEOUT_S)
        except TimeoutError as exc:
            raise JanusUnavailable(f"Janus did not answer {payload.get('janus')}") from exc
        except websockets.ConnectionClosed as exc:
            raise JanusUnavailable("connection to Janus closed") from exc
        finally:
            self._pending.pop(transaction, None)
            self._wants_event.discard(transaction)

    def _register(self, handle: JanusHandle) -> None:
        self._handles[handle.id] = handle

    def _unregister(self, handle: JanusHandle) -> None:
        self._handles.pop(handle.id, None)

    def _forget_session(self, session: JanusSession) -> None:
        for handle_id in [i for i, h in self._handles.items() if h.session is session]:
            del self._handles[handle_id]

    async def _read_loop(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    log.warning("janus sent invalid JSON")
                    continue
                self._dispatch(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(JanusUnavailable("connection to Janus closed"))
            for handle in list(self._handles.values()):
                handle._deliver(JanusEvent("hangup", {"reason": "janus connection lost"}))
            if not self._closing:
                log.warning("janus connection closed", extra={"janus": self.url})

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("janus")
        transaction = message.get("transaction")
        future = self._pending.get(transaction) if transaction else None
        if kind == "ack" and transaction in self._wants_event:
            return  # the real answer of an asynchronous request comes later
        if future is not None and not future.done():
            if kind == "error":
                err = message.get("error", {})
                future.set_exception(JanusError(err.get("code", 0), err.get("reason", "?")))
            else:
                future.set_result(message)
            return
        handle = self._handles.get(message.get("sender") or 0)
        if handle is None:
            if kind not in ("ack", "keepalive", "timeout"):
                log.debug("janus message for no handle: %s", kind)
            return
        if kind == "event":
            plugindata = message.get("plugindata", {}).get("data", {})
            handle._deliver(JanusEvent("event", plugindata, message.get("jsep")))
        else:
            handle._deliver(JanusEvent(kind or "?", message))


class JanusSession:
    def __init__(self, connection: JanusConnection, session_id: int) -> None:
        self.connection = connection
        self.id = session_id
        self._keepalive: asyncio.Task[None] | None = None
        self.released = False  # handed to another connection: nothing more goes out from here

    def start_keepalive(self) -> None:
        self._keepalive = asyncio.create_task(self._keepalive_loop(), name="janus-keepalive")

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            if self.connection.closed.is_set():
                return  # the session died with its connection
            try:
                await self.connection.request({"janus": "keepalive", "session_id": self.id})
            except JanusError as exc:
                log.warning("janus keepalive failed: %s", exc)
                if self.connection.closed.is_set():
                    return

    async def attach(
        self, plugin: str = "janus.plugin.videoroom", on_event: EventCallback | None = None
    ) -> JanusHandle:
        reply = await self.connection.request(
            {"janus": "attach", "session_id": self.id, "plugin": plugin}
        )
        return self.adopt(reply["data"]["id"], on_event)

    def adopt(self, handle_id: int, on_event: EventCallback | None = None) -> JanusHandle:
        """A handle that exists in this session already (a session claimed from another
        connection): its events are delivered from now on."""
        handle = JanusHandle(self, handle_id, on_event)
        self.connection._register(handle)
        return handle

    def release(self) -> None:
        """Stop keeping the session alive and forget its handles, without destroying it:
        another process takes it over. Nothing more goes out for it from here."""
        self._forget()
        self.released = True

    async def destroy(self) -> None:
        if self.released:
            return  # another process's now
        self._forget()
        if self.connection.connected:
            with contextlib.suppress(JanusError):
                await self.connection.request({"janus": "destroy", "session_id": self.id})

    def _forget(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
        self.connection._forget_session(self)


class JanusHandle:
    def __init__(
        self, session: JanusSession, handle_id: int, on_event: EventCallback | None
    ) -> None:
        self.session = session
        self.id = handle_id
        self.on_event = on_event
        self.detached = False

    def _deliver(self, event: JanusEvent) -> None:
        if self.on_event is None:
            return
        result = self.on_event(event)
        if asyncio.iscoroutine(result):
            task = asyncio.ensure_future(result)
            task.add_done_callback(_log_callback_failure)

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {"janus": kind, "session_id": self.session.id, "handle_id": self.id}

    def _check(self) -> None:
        if self.session.released:
            raise JanusUnavailable("this session was handed over to another server process")

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request (create, destroy, exists, list, rtp_forward...)."""
        self._check()
        reply = await self.session.connection.request({**self._envelope("message"), "body": body})
        return _plugin_data(reply).data

    async def message(
        self, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> PluginReply:
        """An asynchronous plugin request (join, configure, start, update...)."""
        self._check()
        payload = {**self._envelope("message"), "body": body}
        if jsep is not None:
            payload["jsep"] = jsep
        reply = await self.session.connection.request(payload, wait_event=True)
        return _plugin_data(reply)

    async def trickle(self, candidate: dict[str, Any] | None) -> None:
        self._check()
        payload = self._envelope("trickle")
        payload["candidate"] = candidate if candidate is not None else {"completed": True}
        await self.session.connection.request(payload)

    async def hangup(self) -> None:
        with contextlib.suppress(JanusError):
            await self.session.connection.request(self._envelope("hangup"))

    async def detach(self) -> None:
        if self.detached or self.session.released:
            return
        self.detached = True
        self.session.connection._unregister(self)
        with contextlib.suppress(JanusError):
            await self.session.connection.request(self._envelope("detach"))


def _plugin_data(reply: dict[str, Any]) -> PluginReply:
    data = reply.get("plugindata", {}).get("data", {})
    if "error_code" in data or data.get("error"):
        raise JanusError(int(data.get("error_code", 0)), str(data.get("error", "plugin error")))
    return PluginReply(data, reply.get("jsep"))


def _log_callback_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("janus event handler failed", exc_info=task.exception())
