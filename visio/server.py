"""The HTTP side: web app, REST API, health, and the signalling WebSocket."""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, StringConstraints

from visio.config import Settings, ensure_secrets
from visio.db import Store
from visio.janus.embedded import EmbeddedJanus
from visio.janus.nodes import JanusPool
from visio.meetings import Meetings
from visio.protocol import ROOM_ID_PATTERN
from visio.signalling import serve_websocket

log = logging.getLogger(__name__)
WEB = Path(__file__).parent / "web"
ROOM_CREATIONS_PER_MINUTE = 30

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self)",
}


class NewRoom(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = None


class RoomOut(BaseModel):
    id: str
    name: str
    permanent: bool
    url: str = ""
    participants: int = Field(0, ge=0)


class Services:
    """Everything the server runs, started and stopped in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.sqlalchemy_url)
        self.embedded = EmbeddedJanus(settings) if settings.embedded_janus else None
        urls = [self.embedded.url] if self.embedded else list(settings.janus_urls)
        self.pool = JanusPool(urls, settings.janus_api_secret, settings.janus_admin_key)
        self.meetings = Meetings(settings, self.store, self.pool)
        self.started = time.time()

    async def start(self) -> None:
        await self.store.migrate()
        if self.embedded is not None:
            await self.embedded.start()
        await self.pool.start()

    async def stop(self) -> None:
        await self.meetings.close()
        await self.pool.close()
        if self.embedded is not None:
            await self.embedded.stop()
        await self.store.close()


class CreationLimiter:
    """At most N room creations per client address per minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.seen: defaultdict[str, deque[float]] = defaultdict(deque)

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        if len(self.seen) > 10_000:
            self._forget_idle(now)
        stamps = self.seen[client]
        while stamps and now - stamps[0] > 60:
            stamps.popleft()
        if len(stamps) >= self.per_minute:
            return False
        stamps.append(now)
        return True

    def _forget_idle(self, now: float) -> None:
        idle = [
            client for client, stamps in self.seen.items() if not stamps or now - stamps[-1] > 60
        ]
        for client in idle:
            del self.seen[client]


def create_app(settings: Settings) -> FastAPI:
    ensure_secrets(settings)
    services = Services(settings)
    limiter = CreationLimiter(ROOM_CREATIONS_PER_MINUTE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        log.info("visio ready", extra={"host": settings.host, "port": settings.port})
        yield
        await services.stop()

    app = FastAPI(
        title="Visio",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.services = services

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

    def base_url(request: Request) -> str:
        return settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")

    @app.get("/healthz", tags=["operations"])
    async def health() -> JSONResponse:
        nodes = [
            {"url": n.url, "up": n.up, "meetings": n.meetings, "participants": n.participants}
            for n in services.pool.nodes
        ]
        ok = any(n["up"] for n in nodes)
        return JSONResponse(
            {
                "status": "ok" if ok else "degraded",
                "janus": nodes,
                "meetings": len(services.meetings.running),
                "uptime_s": round(time.time() - services.started),
            },
            status_code=200 if ok else 503,
        )

    @app.post("/api/rooms", status_code=201, response_model=RoomOut, tags=["rooms"])
    async def create_room(request: Request, body: NewRoom | None = None) -> RoomOut:
        client = request.client.host if request.client else "?"
        if not limiter.allow(client):
            raise HTTPException(429, "too many rooms created; try again in a minute")
        room = await services.store.create_room(name=body.name if body else None)
        return RoomOut(
            id=room.id,
            name=room.name,
            permanent=room.permanent,
            url=f"{base_url(request)}/{room.id}",
        )

    @app.get("/api/rooms/{room_id}", response_model=RoomOut, tags=["rooms"])
    async def get_room(request: Request, room_id: str) -> RoomOut:
        room = await services.store.get_room(room_id) if len(room_id) <= 64 else None
        if room is None:
            raise HTTPException(404, "no such room")
        return RoomOut(
            id=room.id,
            name=room.name,
            permanent=room.permanent,
            url=f"{base_url(request)}/{room.id}",
            participants=services.meetings.participant_count(room.id),
        )

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        await serve_websocket(ws, settings, services.meetings)

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/", include_in_schema=False)
    async def home() -> FileResponse:
        return FileResponse(WEB / "index.html")

    @app.get("/{room_id}", include_in_schema=False)
    async def room_page(room_id: str) -> FileResponse:
        if not re.fullmatch(ROOM_ID_PATTERN, room_id):
            raise HTTPException(404, "no such page")
        return FileResponse(WEB / "room.html")

    return app
