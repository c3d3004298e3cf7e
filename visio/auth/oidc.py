"""Sign-in with OpenID Connect (authorisation code + PKCE), through Authlib.

Any provider with a discovery document works (ProConnect, Keycloak, ...): set
`oidc_issuer`, `oidc_client_id` and `oidc_client_secret`. The login transaction (state,
nonce, PKCE verifier, where to go back) lives in a short-lived signed cookie; the
session itself is a random token in `visio_session`, stored hashed in the database.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from visio import audit
from visio.auth.cookies import SESSION, clear_session, set_session
from visio.config import Settings
from visio.db import Store

log = logging.getLogger(__name__)
LOGIN_COOKIE = "visio_login"
LOGIN_MAX_AGE_S = 600


def safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def verified_email(claims: dict[str, Any], trust_unverified: bool = False) -> str | None:
    """The email that rooms' members and admins are matched against, or None.

    Only an email the provider vouches for (`email_verified` the boolean true; a string
    "false" or a missing claim is not): on providers that let users set their email,
    anyone could otherwise claim a director's. `oidc_email_verified_by_issuer` trusts a
    missing claim, for a provider that only holds verified addresses. Non-ASCII
    addresses are refused: lower-casing would fold some letters into ASCII ones ("\u212a"
    into "k")."""
    email = claims.get("email")
    if not isinstance(email, str) or not email.isascii() or "@" not in email:
        return None
    flag = claims.get("email_verified")
    if flag is True or (flag is None and trust_unverified):
        return email
    return None


def _failed(request: Request, reason: str) -> None:
    audit.record("sign_in", audit.by_request(request, None), outcome="failure", reason=reason)


def auth_router(settings: Settings, store: Store) -> APIRouter:
    router = APIRouter(tags=["sign-in"])
    oauth = OAuth()
    if settings.sign_in_enabled:
        oauth.register(
            "oidc",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret or None,
            server_metadata_url=settings.oidc_issuer.rstrip("/")
            + "/.well-known/openid-configuration",
            client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
        )

    def client():  # type: ignore[no-untyped-def]
        if not settings.sign_in_enabled:
            raise HTTPException(404, "sign-in is not configured on this server")
        return oauth.create_client("oidc")

    def callback_url(request: Request) -> str:
        base = settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        return f"{base}/auth/callback"

    @router.get("/auth/login", summary="Start signing in with the identity provider")
    async def login(request: Request, next: str | None = None) -> Response:
        oidc = client()
        request.session.clear()
        request.session["next"] = safe_next(next)
        try:
            return await oidc.authorize_redirect(request, callback_url(request))
        except (httpx.HTTPError, OAuthError, ValueError) as exc:
            log.warning("identity provider unreachable", extra={"error": str(exc)})
            raise HTTPException(503, "the identity provider does not answer") from exc

    @router.get("/auth/callback", summary="Where the identity provider sends people back")
    async def callback(request: Request) -> Response:
        oidc = client()
        try:
            token = await oidc.authorize_access_token(request)
        except OAuthError as exc:
            _failed(request, exc.error or "oauth_error")
            raise HTTPException(400, f"sign-in failed: {exc.error}") from exc
        except httpx.HTTPError as exc:
            _failed(request, "provider_unreachable")
            raise HTTPException(503, "the identity provider does not answer") from exc
        claims = token.get("userinfo") or {}
        subject = claims.get("sub")
        if not subject:
            _failed(request, "no_subject")
            raise HTTPException(400, "sign-in failed: the identity provider gave no subject")
        user = await store.sign_in(
            issuer=str(claims.get("iss") or settings.oidc_issuer),
            subject=str(subject),
            email=verified_email(claims, settings.oidc_email_verified_by_issuer),
            name=str(claims.get("name") or claims.get("preferred_username") or subject),
        )
        earlier = request.cookies.get(SESSION)
        if earlier and len(earlier) <= 128:  # one browser, one sign-in: the old one ends
            await store.close_session(earlier)
        session_token = await store.open_session(user.id, settings.session_ttl_s)
        target = safe_next(request.session.pop("next", None))
        request.session.clear()
        response = RedirectResponse(target, status_code=302)
        set_session(response, session_token, settings)
        log.info("signed in", extra={"user": user.id})
        audit.record("sign_in", audit.by_request(request, user), outcome="success")
        return response

    @router.post("/auth/logout", status_code=204, summary="Sign out")
    async def logout(request: Request) -> Response:
        token = request.cookies.get(SESSION)
        if token and len(token) <= 128:
            user = await store.session_user(token)
            await store.close_session(token)
            if user is not None:
                audit.record("sign_out", audit.by_request(request, user))
        response = Response(status_code=204)
        clear_session(response, settings)
        return response

    return router
