"""This process as one of several server processes sharing the rooms through Redis.

- **Routing.** A client's `join` names a room; the directory says which live process holds
  it, and this process takes it when nobody does. Held here, the client's frames go to a
  local `ClientSession`; held elsewhere, they are relayed (visio.cluster.relay).
- **Taking over.** A room this process takes may have a past: its owner crashed, or
  drained. Its meeting, chat and lobby are read back from Redis and go on here, the Janus
  session claimed so that media never stops; everyone reconnects and resumes.
- **Watching.** Every half second, the processes this one relays to or for are checked:
  a dead owner's clients reconnect (to wherever their room goes next); a dead edge's
  clients are disconnected (their places are kept for the grace period). Every few
  seconds, rooms whose owner is dead and whose people never came back are taken over
  anyway, so that their meetings end and nothing is left behind on Janus.
- **Draining** (SIGTERM): every room is handed over (records written, ownership released,
  media left running) and its clients are told to reconnect: they resume on another
  process without renegotiating any media.
- **Redis lost and back.** Meetings go on meanwhile (their owner has them in memory). When
  Redis returns, possibly empty, this process writes again all it holds, and the relayed
  clients reconnect so that nothing they missed is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import socket
from typing import Any, TypeVar

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError

from visio import metrics
from visio import protocol as p
from visio.access import Identity
from visio.cluster.bus import BadMessage, Bus
from visio.cluster.directory import Directory, Recovering
from visio.cluster.nodes import NodeBoard
from visio.cluster.relay import MOVED, Edge, Hello, RemoteClients, RemoteOutbox
from visio.cluster.state import RoomSnapshot, RoomState
from visio.conference.journal import RoomJournal
from visio.conference.meetings import Meetings
from visio.conference.records import (
    IdentityRecord,
    MeetingRecord,
    ParticipantRecord,
    WaiterRecord,
)
from visio.conference.rooms import LocalRooms, MeetingView
from visio.conference.signalling import ClientSession
from visio.conference.websocket import Connection, WebSocketOutbox
from visio.config import Settings
from visio.limits.callers import Limits

log = logging.getLogger(__name__)
WATCH_S = 0.5
IDLE_RELEASE_S = 2.0  # a room nobody uses stays ours this long, for joins on their way


def new_process_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Cluster:
    def __init__(self, settings: Settings, meetings: Meetings, limits: Limits) -> None:
        self.settings = settings
        self.meetings = meetings
        self.limits = limits
        self.local = LocalRooms(meetings)
        self.redis = aioredis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=5,
        )
        self.process_id = new_process_id()
        self.bus = Bus(self.redis, settings.cluster_secret, self.process_id)
        self.directory = Directory(self.redis, self.bus, settings.process_ttl_s)
        self.state = RoomState(self.redis, settings.chat_history_max)
        self.journal = RoomJournal(self.state)
        self.edge = Edge(self.bus)
        self.board = NodeBoard(self.redis, self.process_id, meetings.pool)
        self.remote = RemoteClients(self.bus, self._remote_session)
        self.draining = False
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        meetings.journal = self.journal
        meetings.on_idle = self._idle
        meetings.other_loads = self.board.other_loads
        self.bus.on("policy", self._on_policy)
        self.bus.on("end", self._on_end)
        self.bus.on_reconnect(self._redis_back)
        self.directory.on_keys_lost(self._redis_back)

    # -- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start()
        await self.directory.start()
        self._tasks = [
            asyncio.create_task(self._watch_forever(), name="cluster-watch"),
            asyncio.create_task(self._sweep_forever(), name="cluster-sweep"),
        ]
        log.info("cluster member started", extra={"member": self.process_id})

    async def drain(self) -> None:
        """Hand every room over to the other processes, and send our clients to them."""
        if self.draining:
            return
        self.draining = self.directory.draining = True
        with contextlib.suppress(RedisError, OSError):
            await self.directory.beat()
        rooms = sorted(set(self.meetings.running) | set(self.meetings.lobbies))
        log.info("draining", extra={"rooms": len(rooms)})
        self.journal.write_now()
        for room_id in rooms:
            outboxes = await self.meetings.hand_over(room_id)
            await self.state.flushed()
            await self.directory.release(room_id)
            for outbox in outboxes:
                outbox.close(*MOVED)
        self.edge.close_relays()
        await asyncio.sleep(0.2)  # the last frames and closes go out

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.remote.close()
        await self.state.flushed()
        await self.directory.close()
        await self.bus.close()
        await self.redis.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- routing (the WebSocket's Router) ---------------------------------------------------

    async def connect(
        self, join: p.Join, outbox: WebSocketOutbox, identity: Identity, client: str
    ) -> Connection | None:
        if self.draining:
            outbox.close(1012, "server restarting")
            return None
        if await self.meetings.store.policy(join.room) is None:
            raise p.ProtocolError("room_not_found", f"no room {join.room!r}", join.ref)
        try:
            owner = await self._owner_for(join.room)
        except (RedisError, OSError, Recovering) as exc:
            if self.meetings.holds(join.room):
                return self._session(outbox, identity, client)  # ours: Redis is not needed
            log.warning("cannot route a join yet", extra={"error": repr(exc)})
            outbox.close(1013, "try again later")  # the client reconnects after a pause
            return None
        if owner == self.process_id:
            return self._session(outbox, identity, client)
        hello = Hello(conn="-", identity=IdentityRecord.of(identity), client=client[:64])
        return self.edge.open(owner, outbox, hello)

    async def _owner_for(self, room_id: str) -> str:
        claim = await self.directory.claim(room_id, held=self.meetings.holds(room_id))
        if claim.owner == self.process_id and not self.meetings.holds(room_id):
            if claim.taken_from:
                log.info("room taken over", extra={"room": room_id, "from": claim.taken_from})
            await self._take_over(room_id)
        return claim.owner

    def _session(self, outbox: Any, identity: Identity, client: str) -> ClientSession:
        return ClientSession(outbox, self.settings, self.meetings, identity, client, self.limits)

    def _remote_session(self, outbox: RemoteOutbox, hello: Hello) -> ClientSession:
        session = self._session(outbox, hello.identity.identity(), hello.client)
        session.room_guard = self._still_ours
        return session

    async def _still_ours(self, room_id: str) -> bool:
        """A relayed join: the edge saw us as the owner; make sure we still are."""
        try:
            return await self._owner_for(room_id) == self.process_id and not self.draining
        except (RedisError, OSError, Recovering):
            return self.meetings.holds(room_id)

    # -- taking rooms over -----------------------------------------------------------------

    async def _take_over(self, room_id: str) -> None:
        snapshot = await self.state.load(room_id)
        if not snapshot.empty:
            meeting, participants, waiters = _records(snapshot)
            await self.meetings.take_over(room_id, meeting, participants, snapshot.chat, waiters)
            metrics.ROOMS_TAKEN_OVER.inc()

    def _idle(self, room_id: str) -> None:
        self._spawn(self._release_when_idle(room_id))

    async def _release_when_idle(self, room_id: str) -> None:
        await asyncio.sleep(IDLE_RELEASE_S)
        if not self.meetings.holds(room_id):
            await self.directory.release(room_id)

    async def _sweep_forever(self) -> None:
        """Take over the rooms of dead processes whose people did not come back."""
        while True:
            await asyncio.sleep(self.settings.process_ttl_s)
            if self.draining or self.directory.recovering:
                continue
            try:
                await self._sweep()
            except (RedisError, OSError, Recovering) as exc:
                log.warning("sweep failed", extra={"error": str(exc)})

    async def _sweep(self) -> None:
        for room_id in await self.state.rooms():
            if self.meetings.holds(room_id) or await self.directory.owner(room_id) is not None:
                continue
            await self._owner_for(room_id)
            if not self.meetings.holds(room_id):  # nothing usable was left of it
                self.journal.forget(room_id)
                await self.directory.release(room_id)

    # -- watching the others ----------------------------------------------------------------

    async def _watch_forever(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(WATCH_S)
            ticks += 1
            if ticks % 2 == 0:
                await self._refresh_nodes()
            peers = self.edge.owners() | self.remote.edges()
            try:
                dead = peers - await self.directory.alive(peers)
                if dead:  # unless Redis just lost every heartbeat
                    await self.directory.check_epoch()
            except (RedisError, OSError):
                continue
            if self.directory.recovering:
                continue
            for dead_peer in dead:
                log.warning("process lost", extra={"peer": dead_peer})
                self.edge.close_relays(dead_peer)
                self.remote.edge_lost(dead_peer)

    async def _refresh_nodes(self) -> None:
        try:
            await self.board.refresh(self.meetings)
        except (RedisError, OSError) as exc:
            log.warning("node loads not shared", extra={"error": str(exc)})

    async def _redis_back(self) -> None:
        """Redis came back, perhaps empty: write again what we hold; resync relays."""
        self.edge.close_relays()
        await self.directory.check_epoch()
        for room_id in sorted(set(self.meetings.running) | set(self.meetings.lobbies)):
            if (await self.directory.claim(room_id, held=True)).owner != self.process_id:
                log.error("room taken by another process meanwhile", extra={"room": room_id})
                for outbox in await self.meetings.hand_over(room_id):
                    outbox.close(*MOVED)
                continue
            self.meetings.rewrite(room_id)

    # -- requests from the API (any process) ------------------------------------------------

    async def policy_changed(self, room_id: str) -> None:
        await self._at_owner(room_id, "policy", self.local.policy_changed)

    async def end(self, room_id: str) -> None:
        await self._at_owner(room_id, "end", self.local.end)

    async def _at_owner(self, room_id: str, kind: str, here: Any) -> None:
        owner = await self.directory.owner(room_id)
        if owner is None or owner == self.process_id:
            await here(room_id)
        else:
            self.bus.post(owner, kind, {"room": room_id})

    def _on_policy(self, sender: str, body: dict[str, Any]) -> None:
        self._spawn(self.local.policy_changed(_room(body)))

    def _on_end(self, sender: str, body: dict[str, Any]) -> None:
        self._spawn(self.local.end(_room(body)))

    async def view(self, room_id: str) -> MeetingView:
        if self.meetings.holds(room_id):
            return self.local.view_now(room_id)
        return MeetingView.of_records(*_records(await self.state.load(room_id, chat=False)))


def _room(body: dict[str, Any]) -> str:
    room = body.get("room")
    if not isinstance(room, str) or not re.fullmatch(p.ROOM_ID_PATTERN, room):
        raise BadMessage("no valid room id")
    return room


def _records(
    snapshot: RoomSnapshot,
) -> tuple[MeetingRecord | None, list[ParticipantRecord], list[WaiterRecord]]:
    """The records of a room's state that are valid; the others are logged and left out."""
    meeting = _valid(MeetingRecord, snapshot.meeting) if snapshot.meeting else None
    participants = [r for r in (_valid(ParticipantRecord, d) for d in snapshot.participants) if r]
    waiters = [r for r in (_valid(WaiterRecord, d) for d in snapshot.waiters) if r]
    return meeting, participants, waiters


R = TypeVar("R", MeetingRecord, ParticipantRecord, WaiterRecord)


def _valid(model: type[R], data: Any) -> R | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        log.warning("room state record ignored", extra={"error": str(exc.errors()[0])})
        return None
