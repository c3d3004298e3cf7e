"""The browser cookies Visio sets, and the per-request values a middleware derives.

- `visio_session`: a signed-in session (random token; only its hash is stored).
- `visio_csrf`: the double-submit CSRF token. Scripts read it (`GET /api/me`) and send it
  back in the `X-CSRF-Token` header of every state-changing request; another site can
  neither read it nor set it.
- `visio_guest`: a random key for a browser that is not signed in, so that a guest a
  moderator removed is recognised if they come straight back.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visio.config import Settings

SESSION = "visio_session"
CSRF = "visio_csrf"
GUEST = "visio_guest"
CSRF_HEADER = "x-csrf-token"
YEAR_S = 365 * 86400


def set_session(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION,
        token,
        max_age=settings.session_ttl_s,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
    )


def clear_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION, httponly=True, secure=settings.secure_cookies, samesite="lax")


class BrowserCookies:
    """Gives every HTTP request a CSRF token and a guest key, setting the cookies if new.

    The values are put in `scope["state"]` (request.state.csrf, request.state.guest_key)
    so that the first response can already return the token it sets.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = HTTPConnection(scope).cookies
        fresh: dict[str, str] = {}
        values = {}
        for name, key in ((CSRF, "csrf"), (GUEST, "guest_key")):
            value = cookies.get(name, "")
            if not well_formed(value):
                value = fresh[name] = secrets.token_urlsafe(24)
            values[key] = value
        scope.setdefault("state", {}).update(values)

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start" and fresh:
                headers = MutableHeaders(scope=message)
                for name, value in fresh.items():
                    headers.append("set-cookie", self._cookie(name, value))
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    def _cookie(self, name: str, value: str) -> str:
        parts = [f"{name}={value}", "Path=/", f"Max-Age={YEAR_S}", "SameSite=Strict"]
        if name == GUEST:
            parts.append("HttpOnly")
        if self.settings.secure_cookies:
            parts.append("Secure")
        return "; ".join(parts)


def well_formed(value: str) -> bool:
    return 16 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum()
