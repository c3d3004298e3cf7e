"""Refuses state-changing requests that do not prove they come from Visio's own pages."""

from __future__ import annotations

import json
import secrets

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from visio.auth.cookies import CSRF, CSRF_HEADER

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


class CsrfGuard:
    """Double-submit check: the `X-CSRF-Token` header must equal the `visio_csrf` cookie."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            connection = HTTPConnection(scope)
            cookie = connection.cookies.get(CSRF, "")
            header = connection.headers.get(CSRF_HEADER, "")
            if not cookie or not secrets.compare_digest(cookie.encode(), header.encode()):
                await _refuse(send)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send) -> None:
    body = json.dumps({"detail": "missing or wrong CSRF token (X-CSRF-Token header)"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
