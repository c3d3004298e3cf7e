"""The HTTP side: web app, REST API, health, and the signalling WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.middleware.sessions import SessionMiddleware

from visio import metrics
from visio.api import api_router
from visio.audit import purge_expired
from visio.auth.cookies import BrowserCookies
from visio.auth.csrf import CsrfGuard
from visio.auth.identity import SessionCheck, identify
from visio.auth.oidc import LOGIN_COOKIE, LOGIN_MAX_AGE_S, auth_router
from visio.captions.service import CaptionService
from visio.conference.meetings import Meetings
from visio.conference.rooms import LocalRooms, Rooms
from visio.conference.signalling import LocalRouter
from visio.conference.websocket import Router, serve_websocket
from visio.config import Settings, check_cluster, ensure_secrets
from visio.db import Store
from visio.janus.embedded import EmbeddedJanus
from visio.janus.nodes import JanusPool, NodeLoad
from visio.limits.bodies import BodyLimit
from visio.limits.callers import Limits
from visio.limits.connections import ConnectionCounts
from visio.protocol import ROOM_ID_PATTERN
from visio.proxies.addresses import parse_networks
from visio.proxies.trusted import TrustedProxies
from visio.transcripts.jobs import JobRunner, Jobs
from visio.transcripts.routes import captures_router
from visio.transcripts.service import Captures

if TYPE_CHECKING:
    from visio.cluster.cluster import Cluster
    from visio.sip.gateway import Gateway

log = logging.getLogger(__name__)
WEB = Path(__file__).parent / "web"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        # 'wasm-unsafe-eval' lets WebAssembly compile (RNNoise for noise suppression,
        # MediaPipe's segmentation for camera backgrounds); it allows no eval() of JavaScript.
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
        "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self)",
}
# On HTTPS only (public_url https://, or tls_cert): browsers then refuse plain HTTP for a
# year, so that a first http:// link cannot be downgraded by someone on the path.
HSTS = {"Strict-Transport-Security": "max-age=31536000"}
AUDIT_PURGE_EVERY_S = 3600.0


class Services:
    """Everything the server runs, started and stopped in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.sqlalchemy_url)
        self.embedded = EmbeddedJanus(settings) if settings.embedded_janus else None
        urls = [self.embedded.url] if self.embedded else list(settings.janus_urls)
        self.pool = JanusPool(
            urls, settings.janus_api_secret, settings.janus_admin_key, settings.janus_node_streams
        )
        self.jobs: Jobs
        if settings.job_queue == "procrastinate":  # `visio worker` processes run the jobs
            from visio.transcripts.queue import TranscriptionQueue

            self.jobs = TranscriptionQueue(settings, self.store)
        else:
            self.jobs = JobRunner(settings, self.store)
        self.captures = Captures(self.store, settings, self.jobs.wake)
        self.captions = CaptionService(settings, self.store)
        self.meetings = Meetings(settings, self.store, self.pool, self.captures, self.captions)
        self.limits = Limits(settings)
        self.sockets = ConnectionCounts(
            settings.max_connections_per_address, self.limits.address_factor, "websocket"
        )
        self.router: Router
        self.rooms: Rooms
        self.cluster: Cluster | None = None
        if settings.redis_url:  # several server processes share the rooms, and the limits
            from visio.cluster.cluster import Cluster
            from visio.cluster.limits import RedisBudgets

            check_cluster(settings)
            self.cluster = Cluster(settings, self.meetings, self.limits)
            self.limits.share(RedisBudgets(self.cluster.redis, self.limits.local))
            self.router = self.rooms = self.cluster
        else:
            self.router = LocalRouter(settings, self.meetings, self.limits)
            self.rooms = LocalRooms(self.meetings)
        self.gateway: Gateway | None = None
        if settings.sip_enabled:
            from visio.sip.gateway import Gateway

            self.gateway = Gateway(settings, self.store)
        self.started = time.time()
        self._audit_purge: asyncio.Task[None] | None = None

    @property
    def draining(self) -> bool:
        return self.cluster is not None and self.cluster.draining

    async def start(self) -> None:
        self._audit_purge = asyncio.create_task(self._purge_audit_hourly(), name="audit-purge")
        await self.store.migrate()
        await self.jobs.start()
        if self.embedded is not None:
            await self.embedded.start()
        await self.pool.start()
        if self.cluster is not None:
            await self.cluster.start()
        if self.gateway is not None:
            await self.gateway.start()

    async def _purge_audit_hourly(self) -> None:
        """Audit files past their retention go even when no event opens a new day's file."""
        while True:
            try:
                purge_expired(self.settings)
            except OSError as exc:
                log.warning("audit purge failed", extra={"error": str(exc)})
            await asyncio.sleep(AUDIT_PURGE_EVERY_S)

    async def observe(self) -> None:
        """Read the state the metrics show (events are counted as they happen)."""
        meetings = self.meetings
        metrics.MEETINGS.set(len(meetings.running))
        metrics.PARTICIPANTS.set(sum(len(m.participants) for m in meetings.running.values()))
        metrics.WAITING.set(sum(len(lobby) for lobby in meetings.lobbies.values()))
        loads = meetings.node_loads()
        for node in self.pool.nodes:
            load = loads.get(node.url, NodeLoad())
            metrics.NODE_UP.labels(node.url).set(1 if node.up else 0)
            metrics.NODE_DRAINING.labels(node.url).set(1 if node.draining else 0)
            metrics.NODE_STREAMS.labels(node.url).set(load.streams)
            metrics.NODE_PARTICIPANTS.labels(node.url).set(load.participants)
            if load.cpu is not None:
                metrics.NODE_CPU.labels(node.url).set(load.cpu)
        captions = self.captions.stats()
        metrics.CAPTION_MEETINGS.set(captions["meetings"])
        metrics.CAPTION_FORWARDS.set(captions["forwards"])
        metrics.CAPTION_THREADS.set(captions["threads"])
        counts = await self.store.capture_counts()
        for status in ("queued", "running", "failed", "done", "capturing"):
            metrics.JOBS.labels(status).set(counts.get(status, 0))
        if self.cluster is not None:
            metrics.BUS_DROPPED.set(self.cluster.bus.dropped)

    async def drain(self) -> None:
        """SIGTERM with several server processes: hand the rooms over before stopping."""
        if self.cluster is not None:
            await self.cluster.drain()

    async def stop(self) -> None:
        if self._audit_purge is not None:
            self._audit_purge.cancel()
        if self.cluster is not None:
            await self.cluster.drain()  # if SIGTERM did not already
            await self.cluster.close()
        if self.gateway is not None:
            await self.gateway.stop()  # its callers leave while the meetings still run
        await self.meetings.close()
        await self.jobs.stop()
        await self.pool.close()
        if self.embedded is not None:
            await self.embedded.stop()
        await self.store.close()


def metrics_allowed(request: Request, settings: Settings) -> bool:
    """With metrics_token, whoever sends it; without, the host itself only."""
    if settings.metrics_token:
        sent = request.headers.get("authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {settings.metrics_token}".encode())
    return (request.client.host if request.client else "") in ("127.0.0.1", "::1")


def same_origin(ws: WebSocket, settings: Settings) -> bool:
    """Browsers send Origin: refuse pages of other sites (their cookies would come along).

    Only the host is compared: behind a TLS proxy the server sees ws:// while the page is
    https://. Clients that send no Origin (bots, scripts) are not browsers and carry no
    victim's cookies.
    """
    origin = ws.headers.get("origin")
    if origin is None:
        return True
    allowed = {ws.headers.get("host", "")}
    if settings.public_url:
        allowed.add(urlsplit(settings.public_url).netloc)
    return urlsplit(origin).netloc in allowed


TOO_MANY_CONNECTIONS = {
    "type": "error",
    "code": "too_many_connections",
    "message": "too many connections from your network; try again later",
}


async def refuse_websocket(ws: WebSocket) -> None:
    """Past the per-address cap: said in a frame, then closed 1013 (try again later)."""
    await ws.accept()
    with contextlib.suppress(Exception):
        await ws.send_json(TOO_MANY_CONNECTIONS)
        await ws.close(1013, "too many connections")


def create_app(settings: Settings) -> FastAPI:
    ensure_secrets(settings)
    services = Services(settings)

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
    # Outermost last: cookies for every request, then the CSRF guard, then the login
    # transaction cookie that Authlib keeps its state, nonce and PKCE verifier in.
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret,
        session_cookie=LOGIN_COOKIE,
        max_age=LOGIN_MAX_AGE_S,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(CsrfGuard)
    app.add_middleware(BrowserCookies, settings=settings)
    app.add_middleware(BodyLimit)
    # Outside those: they, and everything after, see the client's address, not a proxy's.
    app.add_middleware(
        TrustedProxies,
        networks=parse_networks(settings.trusted_proxies),
        header=settings.trusted_proxy_header,
    )

    headers = {**SECURITY_HEADERS, **(HSTS if settings.https else {})}

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        for header, value in headers.items():
            response.headers.setdefault(header, value)
        return response

    @app.get("/healthz", tags=["operations"])
    async def health(request: Request) -> JSONResponse:
        loads = services.meetings.node_loads()
        nodes = [
            {
                "url": n.url,
                "up": n.up,
                "draining": n.draining,
                **loads.get(n.url, NodeLoad()).as_dict(),
            }
            for n in services.pool.nodes
        ]
        ok = any(n["up"] for n in nodes) and not services.draining
        status = "draining" if services.draining else "ok" if ok else "degraded"
        if not metrics_allowed(request, settings):  # the node addresses are not for anyone
            return JSONResponse({"status": status}, status_code=200 if ok else 503)
        return JSONResponse(
            {
                "status": status,
                "janus": nodes,
                "meetings": len(services.meetings.running),
                "captions": services.captions.stats(),
                "limits": services.limits.stats(),
                "uptime_s": round(time.time() - services.started),
                "process": services.cluster.process_id if services.cluster else None,
            },
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        if not metrics_allowed(request, settings):
            raise HTTPException(403, "metrics: send metrics_token, or ask from this host")
        await services.observe()
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(auth_router(settings, services.store))
    app.include_router(api_router(settings, services.store, services.rooms, services.limits))
    app.include_router(captures_router(settings, services.store, services.jobs))

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        if not same_origin(ws, settings):
            await ws.close(code=4003)  # before accept: the handshake gets a 403
            return
        with services.sockets.hold(ws.client.host if ws.client else None) as allowed:
            if not allowed:
                await refuse_websocket(ws)
                return
            identity = await identify(ws, services.store)
            session = SessionCheck.of(ws, identity, services.store)
            await serve_websocket(ws, settings, identity, services.router, session)

    @app.get("/.well-known/security.txt", include_in_schema=False)
    async def security_txt() -> Response:
        """RFC 9116: whom to tell about a vulnerability (docs/SECURITY.md)."""
        if not settings.security_contact:
            raise HTTPException(404, "no security contact configured (security_contact)")
        expires = datetime.now(UTC) + timedelta(days=365)
        lines = [f"Contact: {settings.security_contact}", f"Expires: {expires:%Y-%m-%dT%H:%M:%SZ}"]
        if settings.public_url:
            lines.append(f"Canonical: {settings.public_url.rstrip('/')}/.well-known/security.txt")
        lines.append("Preferred-Languages: fr, en")
        return Response("\n".join(lines) + "\n", media_type="text/plain; charset=utf-8")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    # Browser libraries from npm (visio/web/vendor/package.json), served by Visio itself: no CDN.
    vendor = WEB / "vendor" / "node_modules"
    app.mount("/vendor", StaticFiles(directory=vendor, check_dir=False), name="vendor")

    @app.get("/", include_in_schema=False)
    async def home() -> FileResponse:
        return FileResponse(WEB / "index.html")

    @app.get("/{room_id}/transcripts", include_in_schema=False)
    async def transcripts_page(room_id: str) -> FileResponse:
        if not re.fullmatch(ROOM_ID_PATTERN, room_id):
            raise HTTPException(404, "no such page")
        return FileResponse(WEB / "transcripts.html")

    @app.get("/{room_id}", include_in_schema=False)
    async def room_page(room_id: str) -> FileResponse:
        if not re.fullmatch(ROOM_ID_PATTERN, room_id):
            raise HTTPException(404, "no such page")
        return FileResponse(WEB / "room.html")

    return app


class DrainingServer(uvicorn.Server):
    """uvicorn, which on SIGTERM first hands this process's rooms over to the others
    (several server processes), then stops: clients reconnect to where their room went
    before uvicorn closes the remaining sockets. A second signal stops at once."""

    def __init__(self, config: uvicorn.Config, services: Services) -> None:
        super().__init__(config)
        self.services = services
        self._draining = False
        self._drain: asyncio.Future[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.services.cluster is None or self._draining:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(self._start_draining, sig, frame)

    def _start_draining(self, sig: int, frame: FrameType | None) -> None:
        self._drain = asyncio.ensure_future(self.services.drain())
        self._drain.add_done_callback(lambda _: super(DrainingServer, self).handle_exit(sig, frame))
