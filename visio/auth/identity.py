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


class SessionCheck:
    """Whether the sign-in a WebSocket opened with still holds (not signed out, not expired).

    The identity of a socket is read once, at connect: this is asked again at its `join`
    and every `session_check_s` while it lives."""

    def __init__(self, token: str, store: Store) -> None:
        self.token = token
        self.store = store

    @classmethod
    def of(
        cls, connection: HTTPConnection, identity: Identity, store: Store
    ) -> SessionCheck | None:
        token = connection.cookies.get(SESSION)
        if identity.user_id is None or not token:
            return None  # a guest: no sign-in to lose
        return cls(token, store)

    async def holds(self) -> bool:
        return await self.store.session_user(self.token) is not None


async def require_user(request: Request, store: Store) -> User:
    user = await current_user(request, store)
    if user is None:
        raise HTTPException(401, "sign in first")
    return user
