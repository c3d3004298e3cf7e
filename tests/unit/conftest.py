"""Unit-test helpers: a clean VISIO_* environment and a fake Janus on 127.0.0.1.

The fake Janus speaks just enough of Janus' WebSocket API (subprotocol
`janus-protocol`) for `JanusConnection` and the VideoRoom wrappers: it records every
request and answers from per-verb responders that a test can replace.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import websockets

from visio.janus import client as janus_client
from visio.janus.client import JanusConnection, JanusSession

Responder = Callable[[dict[str, Any]], "list[dict[str, Any]] | str"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No VISIO_* setting leaks in from the shell, nor out of a test (cli sets VISIO_CONFIG)."""
    for name in list(os.environ):
        if name.startswith("VISIO_") and name != "VISIO_TEST_NETNS":
            monkeypatch.delenv(name)
    monkeypatch.setenv("VISIO_CONFIG", "")  # recorded as absent: restored after the test
    monkeypatch.delenv("VISIO_CONFIG")


class FakeJanus:
    DROP = "drop"  # a responder returning this closes the connection instead of answering

    def __init__(self) -> None:
        self.url = ""
        self.received: list[dict[str, Any]] = []
        self.subprotocols: list[str | None] = []
        self.connections: list[websockets.ServerConnection] = []
        self.responders: dict[str, Responder] = {}
        self._ids = itertools.count(1001)
        self._arrived = asyncio.Event()

    def new_id(self) -> int:
        return next(self._ids)

    def requests(self, verb: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("janus") == verb]

    def bodies(self) -> list[dict[str, Any]]:
        return [m["body"] for m in self.requests("message")]

    async def wait_for(self, verb: str, timeout: float = 1.0) -> dict[str, Any]:
        async def first() -> dict[str, Any]:
            while not self.requests(verb):
                self._arrived.clear()
                await self._arrived.wait()
            return self.requests(verb)[0]

        return await asyncio.wait_for(first(), timeout)

    async def push(self, frame: dict[str, Any]) -> None:
        """Send an unsolicited frame on the latest connection."""
        await self.connections[-1].send(json.dumps(frame))

    def default(self, msg: dict[str, Any]) -> list[dict[str, Any]]:
        verb = msg["janus"]
        if verb == "create":
            return [{"janus": "success", "data": {"id": self.new_id()}}]
        if verb == "attach":
            return [
                {"janus": "success", "session_id": msg["session_id"], "data": {"id": self.new_id()}}
            ]
        if verb == "info":
            return [{"janus": "server_info", "name": "Fake Janus"}]
        if verb in ("keepalive", "trickle"):
            return [{"janus": "ack", "session_id": msg.get("session_id")}]
        if verb == "message":
            return [self.plugin_success(msg, {"videoroom": "success"})]
        return [{"janus": "success", "session_id": msg.get("session_id")}]

    async def serve(self, ws: websockets.ServerConnection) -> None:
        self.connections.append(ws)
        self.subprotocols.append(ws.subprotocol)
        async for raw in ws:
            msg = json.loads(raw)
            self.received.append(msg)
            self._arrived.set()
            replies = self.responders.get(msg.get("janus"), self.default)(msg)
            if replies == self.DROP:
                await ws.close()
                return
            for reply in replies:
                frame = dict(reply)
                frame.setdefault("transaction", msg["transaction"])
                if frame["transaction"] is None:
                    del frame["transaction"]
                await ws.send(json.dumps(frame))

    @staticmethod
    def plugin_success(
        msg: dict[str, Any], data: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A synchronous plugin reply (`success` with plugindata)."""
        frame: dict[str, Any] = {
            "janus": "success",
            "session_id": msg["session_id"],
            "sender": msg["handle_id"],
            "plugindata": {"plugin": "janus.plugin.videoroom", "data": data},
        }
        if jsep is not None:
            frame["jsep"] = jsep
        return frame

    @staticmethod
    def ack_then_event(
        msg: dict[str, Any], data: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """An asynchronous plugin reply: `ack`, then an `event` with the same transaction."""
        event: dict[str, Any] = {
            "janus": "event",
            "session_id": msg["session_id"],
            "sender": msg["handle_id"],
            "plugindata": {"plugin": "janus.plugin.videoroom", "data": data},
        }
        if jsep is not None:
            event["jsep"] = jsep
        return [{"janus": "ack", "session_id": msg["session_id"]}, event]


@pytest.fixture
async def fake_janus() -> AsyncIterator[FakeJanus]:
    fake = FakeJanus()
    async with websockets.serve(
        fake.serve,
        "127.0.0.1",
        0,
        subprotocols=[websockets.Subprotocol("janus-protocol")],
        ping_interval=None,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        fake.url = f"ws://127.0.0.1:{port}"
        yield fake


@pytest.fixture
async def janus(
    fake_janus: FakeJanus, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[JanusConnection]:
    monkeypatch.setattr(janus_client, "REQUEST_TIMEOUT_S", 2.0)  # a broken test fails fast
    connection = JanusConnection(fake_janus.url)
    await connection.connect(timeout=2.0)
    yield connection
    await connection.close()


@pytest.fixture
async def session(janus: JanusConnection) -> AsyncIterator[JanusSession]:
    janus_session = await janus.create_session()
    yield janus_session
    await janus_session.destroy()
