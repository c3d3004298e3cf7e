"""websocket.WebSocketOutbox: ordered writes, close, slow clients, gone clients."""

from __future__ import annotations

import asyncio
import json

from starlette.websockets import WebSocketDisconnect

from visio.conference import websocket
from visio.conference.websocket import WebSocketOutbox


class FakeWebSocket:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.fail = fail

    async def send_text(self, text: str) -> None:
        if self.fail:
            raise WebSocketDisconnect(1006)
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason)


async def finished(outbox: WebSocketOutbox) -> None:
    await asyncio.wait_for(outbox.writer, 1.0)


async def test_frames_are_written_in_order_as_json():
    ws = FakeWebSocket()
    outbox = WebSocketOutbox(ws)
    outbox.send({"type": "pong"})
    outbox.send({"type": "chat", "message": {"text": "réunion 👍"}})
    await outbox.drain()
    assert [json.loads(text) for text in ws.sent] == [
        {"type": "pong"},
        {"type": "chat", "message": {"text": "réunion 👍"}},
    ]
    assert "réunion 👍" in ws.sent[1]  # not \u-escaped
    assert ws.closed == (1000, "")


async def test_close_writes_what_was_queued_then_closes_with_the_code():
    ws = FakeWebSocket()
    outbox = WebSocketOutbox(ws)
    outbox.send({"type": "error", "code": "replaced", "message": "x"})
    outbox.close(4001, "replaced")
    await finished(outbox)
    assert [json.loads(text)["code"] for text in ws.sent] == ["replaced"]
    assert ws.closed == (4001, "replaced")


async def test_nothing_is_sent_after_close_and_the_first_close_wins():
    ws = FakeWebSocket()
    outbox = WebSocketOutbox(ws)
    outbox.close(1012, "server shutdown")
    outbox.send({"type": "pong"})
    outbox.close(1000, "")
    await finished(outbox)
    assert ws.sent == []
    assert ws.closed == (1012, "server shutdown")


async def test_a_client_too_slow_to_read_is_closed(monkeypatch):
    monkeypatch.setattr(websocket, "OUTBOX_LIMIT", 5)
    ws = FakeWebSocket()
    outbox = WebSocketOutbox(ws)
    for n in range(8):  # no await: the writer cannot run
        outbox.send({"type": "pong", "n": n})
    await finished(outbox)
    assert [json.loads(text)["n"] for text in ws.sent] == [0, 1, 2, 3, 4]
    assert ws.closed == (1008, "too slow")


async def test_a_client_too_slow_for_big_frames_is_closed_by_size():
    """Audit L4: 2000 frames of 8 kB chat would be 16 MB held for one slow reader."""
    ws = FakeWebSocket()
    outbox = WebSocketOutbox(ws)
    big = {"type": "chat", "message": {"text": "x" * 8000}}
    for _ in range(600):  # 4.8 MB: over the 4 MiB a reader may have waiting
        outbox.send(big)
    await finished(outbox)
    assert 500 <= len(ws.sent) < 530
    assert ws.closed == (1008, "too slow")
    assert outbox.queued_bytes == 0


async def test_a_client_that_went_away_ends_the_writer_quietly():
    ws = FakeWebSocket(fail=True)
    outbox = WebSocketOutbox(ws)
    outbox.send({"type": "pong"})
    await finished(outbox)
    assert outbox.writer.exception() is None
    await outbox.drain()
