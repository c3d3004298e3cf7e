"""Joins without media, from a chosen loopback address, for the tests of the limits."""

from __future__ import annotations

import json
from typing import Any

import websockets


def guest_cookie(n: int) -> dict[str, str]:
    """The cookie of the nth browser guest (a well-formed guest key of its own)."""
    return {"Cookie": f"visio_guest=test-guest-key-{n:08d}"}


async def join_once(
    base_url: str,
    room: str,
    *,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
    resume: str | None = None,
    leave: bool = True,
) -> dict[str, Any]:
    """Open /ws from `source`, send `join`: the server's answer (`joined`, `lobby` or the
    error). Then `leave`, or with `leave=False` just drop the connection (the place is
    kept for the reconnection grace, to be resumed with `joined["resume"]`)."""
    url = base_url.replace("http", "ws", 1) + "/ws"
    frame: dict[str, Any] = {"type": "join", "room": room, "name": "Agent", "video": False}
    if resume:
        frame["resume"] = resume
    async with websockets.connect(
        url, local_addr=(source, 0), additional_headers=headers or {}, open_timeout=10
    ) as ws:
        await ws.send(json.dumps(frame))
        while (answer := json.loads(await ws.recv()))["type"] not in ("joined", "lobby", "error"):
            pass
        if answer["type"] == "joined" and leave:
            await ws.send(json.dumps({"type": "leave"}))
    return answer


def outcome(answer: dict[str, Any]) -> str:
    """`joined`, `lobby`, or the error's code."""
    return str(answer.get("code", answer["type"]))
