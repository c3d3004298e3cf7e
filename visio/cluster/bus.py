"""Messages between server processes, over Redis pub/sub.

Each process listens on a channel of its own, `visio:bus:<process id>`, and sends to
another process by publishing on that process's channel. `post` never waits: messages to
one process are queued and published in order, those of one turn of the event loop in one
batch. Redis keeps the order of what one connection publishes to one channel, so a
client's frames arrive in the order they were sent.

Every message is signed with the cluster secret (HMAC-SHA256) and carries its time: a
message that is malformed, unsigned, signed with another key or too old is dropped and
logged, and changes nothing. When the connection to Redis drops, the bus reconnects by
itself and tells its listeners (`on_reconnect`), so that they can write again what Redis
may have lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

BATCH = "batch"
MAX_ITEMS = 10_000
MAX_AGE_S = 30.0  # a message older than this is a replay or a clock gone wrong
RECONNECT_FIRST_S = 0.2
RECONNECT_MAX_S = 2.0

# Handlers run on the reader task: they must not block (queue the work, or spawn a task).
Handler = Callable[[str, dict[str, Any]], None]


def channel(process_id: str) -> str:
    return f"visio:bus:{process_id}"


class BadMessage(ValueError):
    """A message from the bus that must be ignored; the text says why."""


def seal(secret: bytes, sender: str, kind: str, body: dict[str, Any]) -> str:
    payload = json.dumps(
        {"k": kind, "f": sender, "t": time.time(), "b": body},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    signature = hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()
    return f"{signature}.{payload}"


def open_sealed(secret: bytes, raw: bytes | str) -> tuple[str, str, dict[str, Any]]:
    """(kind, sender, body) of a sealed message, or BadMessage."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    signature, _, payload = text.partition(".")
    expected = hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        raise BadMessage("bad signature")
    try:
        message = json.loads(payload)
    except ValueError as exc:
        raise BadMessage("not JSON") from exc
    if not isinstance(message, dict):
        raise BadMessage("not an object")
    kind, sender, sent, body = (message.get(k) for k in ("k", "f", "t", "b"))
    if not isinstance(kind, str) or not isinstance(sender, str) or not isinstance(body, dict):
        raise BadMessage("missing kind, sender or body")
    if not isinstance(sent, int | float) or abs(time.time() - sent) > MAX_AGE_S:
        raise BadMessage("too old or from the future")
    return kind, sender, body


class Bus:
    def __init__(self, redis: aioredis.Redis, secret: str, process_id: str) -> None:
        self.redis = redis
        self.secret = secret.encode()
        self.process_id = process_id
        self.channel = channel(process_id)
        self._handlers: dict[str, Handler] = {}
        self._reconnected: list[Callable[[], Awaitable[None]]] = []
        self._reader: asyncio.Task[None] | None = None
        self._listening_again: asyncio.Task[None] | None = None
        self._outgoing: dict[str, list[dict[str, Any]]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._subscribed = asyncio.Event()
        self.dropped = 0  # messages refused (bad signature, malformed, unknown kind)

    def on(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def post(self, to: str, kind: str, body: dict[str, Any]) -> None:
        """Queue a message for another process; sent in order, soon, never waiting."""
        queue = self._outgoing.get(to)
        if queue is None:
            queue = self._outgoing[to] = []
        queue.append({"k": kind, "b": body})
        if to not in self._senders:
            self._senders[to] = asyncio.get_running_loop().create_task(self._send_batches(to))

    async def _send_batches(self, to: str) -> None:
        try:
            await asyncio.sleep(0)  # the rest of this turn joins the batch
            while batch := self._outgoing.pop(to, None):
                await self.send(to, BATCH, {"items": batch})
        finally:
            del self._senders[to]

    def on_reconnect(self, listener: Callable[[], Awaitable[None]]) -> None:
        self._reconnected.append(listener)

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="bus-reader")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5.0)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def send(self, to: str, kind: str, body: dict[str, Any]) -> bool:
        """Publish to one process; False when Redis is unreachable or nobody listens."""
        try:
            receivers = await self.redis.publish(
                channel(to), seal(self.secret, self.process_id, kind, body)
            )
        except (RedisError, OSError) as exc:
            log.warning("bus send failed", extra={"to": to, "kind": kind, "error": str(exc)})
            return False
        return bool(receivers)

    async def listening(self, process_ids: set[str]) -> set[str]:
        """Which of these processes are subscribed to their channel right now.

        A process killed with SIGKILL loses its Redis connection at once, and with it its
        subscription: this answers within a round trip, long before a heartbeat expires.
        """
        if not process_ids:
            return set()
        ordered = sorted(process_ids)
        counts = await self.redis.pubsub_numsub(*(channel(p) for p in ordered))
        return {pid for pid, (_, count) in zip(ordered, counts, strict=True) if count > 0}

    async def _read_forever(self) -> None:
        delay = RECONNECT_FIRST_S
        first = True
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._subscribed.set()
                if not first:
                    log.info("bus reconnected")
                    self._listening_again = asyncio.create_task(self._tell_reconnected())
                first, delay = False, RECONNECT_FIRST_S
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._receive(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never die: the process would be cut off for good
                self._subscribed.clear()
                log.warning("bus connection lost", extra={"error": repr(exc)})
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    async def _tell_reconnected(self) -> None:
        for listener in self._reconnected:
            try:
                await listener()
            except Exception as exc:
                log.warning("state not restored after reconnect", extra={"error": repr(exc)})

    def _receive(self, raw: bytes | str) -> None:
        try:
            kind, sender, body = open_sealed(self.secret, raw)
            items = body.get("items") if kind == BATCH else [{"k": kind, "b": body}]
            if not isinstance(items, list) or len(items) > MAX_ITEMS:
                raise BadMessage("a batch without items")
        except BadMessage as exc:
            self._drop(str(exc))
            return
        for item in items:
            self._dispatch(sender, item)

    def _dispatch(self, sender: str, item: Any) -> None:
        kind = item.get("k") if isinstance(item, dict) else None
        body = item.get("b") if isinstance(item, dict) else None
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None or not isinstance(body, dict):
            self._drop(f"unknown kind {kind!r} or no body")
            return
        try:
            handler(sender, body)
        except BadMessage as exc:
            self._drop(str(exc), kind)
        except Exception:
            log.exception("bus handler failed", extra={"kind": kind})

    def _drop(self, reason: str, kind: str | None = None) -> None:
        self.dropped += 1
        log.warning("bus message dropped", extra={"reason": reason, "kind": kind})
