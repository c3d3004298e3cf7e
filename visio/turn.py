"""ICE servers for clients, with time-limited TURN credentials.

The credentials follow coturn's `use-auth-secret` scheme (the "TURN REST API"): the
username is `<expiry>:<user>` and the password is base64(HMAC-SHA1(secret, username)),
so coturn checks them with the shared secret alone and they expire by themselves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from visio.config import Settings


def turn_credentials(
    secret: str, user: str, ttl_s: int, now: float | None = None
) -> dict[str, str]:
    expiry = int((now if now is not None else time.time()) + ttl_s)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"username": username, "credential": base64.b64encode(digest).decode()}


def ice_servers(settings: Settings, user: str, ttl_s: int | None = None) -> list[dict[str, Any]]:
    """The STUN and TURN servers for `user`; TURN credentials valid `ttl_s` (by default
    `turn_ttl_s`)."""
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret:
        servers.append(
            {
                "urls": list(settings.turn_urls),
                **turn_credentials(settings.turn_secret, user, ttl_s or settings.turn_ttl_s),
            }
        )
    return servers
