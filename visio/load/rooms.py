"""Rooms for a load run, made through the HTTP API like the home page makes them.

State-changing requests need the CSRF double-submit: the same random value in the
`visio_csrf` cookie and the `X-CSRF-Token` header.
"""

from __future__ import annotations

import secrets

import httpx


class RoomRefused(RuntimeError):
    pass


HINTS = {
    401: "the server lets only signed-in people create rooms: set guests_create_rooms",
    403: "the server lets only signed-in people create rooms: set guests_create_rooms",
    429: "too many rooms created from this address: list the load machine's address in "
    "limit_networks, or raise address_room_creations_per_minute",
}


async def create_room(url: str, name: str, timeout: float = 10.0) -> str:
    csrf = secrets.token_urlsafe(24)
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as http:
        try:
            response = await http.post(
                "/api/rooms",
                json={"name": name},
                headers={"X-CSRF-Token": csrf, "Cookie": f"visio_csrf={csrf}"},
            )
        except httpx.HTTPError as exc:
            raise RoomRefused(f"{url}: cannot create a room: {exc}") from None
    if response.status_code != 201:
        hint = HINTS.get(response.status_code, response.text[:200])
        raise RoomRefused(f"{url}: room creation answered {response.status_code}: {hint}")
    return str(response.json()["id"])
