"""Turns a request's or a WebSocket's cookies into the Identity of the person behind it."""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection

from visio.access import Identity
from visio.auth.cookies import GUEST, SESSION, well_formed
from visio.db import Store, User
from visio.proxies.addresses import address_key


async def current_user(connection: HTTPConnection, store: Store) -> User | None:
    token = connection.cookies.get(SESSION)
    if not token or len(token) > 128:
        return None
    return await store.session_user(token)


async def identify(connection: HTTPConnection, store: Store) -> Identity:
    user = await current_user(connection, store)
    guest_key = connection.cookies.get(GUEST, "")
    guest_key = guest_key if well_formed(guest_key) else None
    address = address_key(connection.client.host if connection.client else None)
    if user is None:
        return Identity(guest_key=guest_key, address=address)
    return Identity(
        user_id=user.id, email=user.email, name=user.name, guest_key=guest_key, address=address
    )


async def require_user(request: Request, store: Store) -> User:
    user = await current_user(request, store)
    if user is None:
        raise HTTPException(401, "sign in first")
    return user
